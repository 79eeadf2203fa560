"""todopy: a framework-less realtime TodoMVC server (Werkzeug, gevent, PostgreSQL)."""

__version__ = "0.1.0"
