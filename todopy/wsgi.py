"""For running under your own gunicorn: `gunicorn -k todopy.server.Worker todopy.wsgi:application`.

Needs DATABASE_URL (run `todopy migrate` first); `todopy serve` does all this for you.
"""
import os

from todopy.app import create_app
from todopy.settings import Settings

application = create_app(Settings.from_env(), os.environ["DATABASE_URL"])
application.start()
