"""401 for /api/todos/... without a signed-in user."""
from __future__ import annotations

from typing import Callable, Iterable

from todopy.errors import Unauthorized
from todopy.middleware.sessions import current_user

PROTECTED_PREFIX = "/api/todos"


class AuthMiddleware:
    def __init__(self, app: Callable, prefix: str = PROTECTED_PREFIX) -> None:
        self.app = app
        self.prefix = prefix

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        protected = path == self.prefix or path.startswith(self.prefix + "/")
        if protected and current_user(environ) is None:
            raise Unauthorized("sign in first: send a session cookie or 'Authorization: Bearer <token>'")
        return self.app(environ, start_response)
