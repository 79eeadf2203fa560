"""Plain WSGI middleware, one class per module, composed in todopy.app.create_app."""
