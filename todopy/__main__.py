from todopy.cli import main

raise SystemExit(main())
