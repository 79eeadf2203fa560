"""Who is asking: resolve the session cookie or bearer token to a user."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable

from werkzeug.http import dump_cookie, parse_cookie

from todopy.accounts import Accounts, User
from todopy.environ import SESSION, SET_COOKIE, USER, require

COOKIE_NAME = "todopy_session"
HANDSHAKE_POOL_WAIT = 15.0           # seconds a stream's handshake may queue for a pooled connection


@dataclasses.dataclass(frozen=True)
class Session:
    token: str | None
    via: str | None            # "cookie", "bearer" or None


def start_session(environ: dict, token: str) -> None:
    """Ask the middleware to set the session cookie on this response."""
    environ[SET_COOKIE] = token


def clear_session(environ: dict) -> None:
    environ[SET_COOKIE] = ""


def credentials(environ: dict) -> Session:
    """A bearer token wins over the cookie: scripts say explicitly who they are."""
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return Session(token.strip(), "bearer")
    cookies = environ.get("HTTP_COOKIE")
    if cookies:
        # Werkzeug's parser skips what it cannot read; http.cookies.SimpleCookie drops
        # every cookie after (or even before) one it dislikes, such as another app's
        # JSON-valued cookie on the same host, and the user would seem signed out.
        token = next((value for value in parse_cookie(_decodable(cookies)).getlist(COOKIE_NAME) if value), None)
        if token:
            return Session(token, "cookie")
    return Session(None, None)


def _decodable(header: str) -> str:
    """The Cookie header without the pairs that are not UTF-8 (werkzeug's parser raises on them).

    A cookie of another app on the same host (`theme=caf\\xe9` in latin-1) must not
    lock our users out; a session cookie that is not UTF-8 is no session (401).
    WSGI hands the header as latin-1 text, so its bytes come back exactly.
    """
    raw = header.encode("latin-1")
    try:
        raw.decode("utf-8")
        return header
    except UnicodeDecodeError:
        pass
    kept = []
    for pair in raw.split(b";"):
        try:
            pair.decode("utf-8")
        except UnicodeDecodeError:
            continue
        kept.append(pair)
    return b";".join(kept).decode("latin-1")


class SessionMiddleware:
    """Puts `todopy.session` and `todopy.user` in the environ; sets/clears the cookie on request."""

    def __init__(self, app: Callable, accounts: Accounts, *, max_age: int) -> None:
        self.app = app
        self.accounts = accounts
        self.max_age = max_age

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        session = credentials(environ)
        environ[SESSION] = session
        # A stream's handshake queues for the pool longer than a REST request: after a restart
        # thousands of clients reconnect at once, and failing them fast would only make
        # them all come back again (a thundering herd); the wait is still bounded.
        wait = HANDSHAKE_POOL_WAIT if environ.get("HTTP_UPGRADE", "").lower() == "websocket" else None
        environ[USER] = self.accounts.user_for(session.token, wait=wait) if session.token else None

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            token = environ.get(SET_COOKIE)
            if token is not None:
                headers = headers + [("Set-Cookie", self._cookie(environ, token))]
            return start_response(status, headers, exc_info)

        return self.app(environ, start)

    def _cookie(self, environ: dict, token: str) -> str:
        return dump_cookie(COOKIE_NAME, token, max_age=self.max_age if token else 0, path="/",
                           httponly=True, samesite="Lax",
                           secure=environ.get("wsgi.url_scheme") == "https")


def current_user(environ: dict) -> User | None:
    """The signed-in user, or None; fails loudly when SessionMiddleware did not run first."""
    return require(environ, USER)


def current_session(environ: dict) -> Session:
    """How the request came (its token, cookie or bearer); fails loudly when SessionMiddleware did not run first."""
    return require(environ, SESSION)
