"""Fast tests of pure logic, laid out like the package: no server, no database."""
