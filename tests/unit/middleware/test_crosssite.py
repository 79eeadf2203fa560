"""CrossSiteMiddleware: a cookie-signed request that writes (or opens a stream) must come from our origin."""
from __future__ import annotations

import pytest

from todopy.accounts import User
from todopy.errors import Forbidden
from todopy.middleware.crosssite import CrossSiteMiddleware, origin_of
from todopy.environ import SESSION, USER
from todopy.middleware.sessions import Session

ALICE = User("u1", "alice", "l1")
ALLOWED = ("https://App.Example/",)


def app(environ, start_response):
    return [b"served"]


def request(method: str = "POST", *, origin: str | None = None, referer: str | None = None,
            via: str | None = "cookie", user: User | None = ALICE, websocket: bool = False) -> dict:
    environ = {"REQUEST_METHOD": method, "wsgi.url_scheme": "http", "HTTP_HOST": "todo.test:8000",
               SESSION: Session("token" if via else None, via), USER: user}
    if origin is not None:
        environ["HTTP_ORIGIN"] = origin
    if referer is not None:
        environ["HTTP_REFERER"] = referer
    if websocket:
        environ["HTTP_UPGRADE"] = "WebSocket"
    return environ


def served(environ: dict) -> bool:
    try:
        return CrossSiteMiddleware(app, ALLOWED)(environ, None) == [b"served"]
    except Forbidden as refused:
        assert refused.status == 403 and refused.code == "cross_site"
        return False


@pytest.mark.parametrize("url, origin", [
    ("https://Example.COM/path?q=1", "https://example.com"),
    ("http://localhost:8000", "http://localhost:8000"),
    ("  http://a.test/  ", "http://a.test"),
    ("/relative/path", None), ("example.com", None), ("", None), ("http://[::1", None),
])
def test_the_origin_of_a_url(url, origin):
    assert origin_of(url) == origin


@pytest.mark.parametrize("origin", ["http://todo.test:8000", "HTTP://TODO.TEST:8000/", "https://app.example"])
def test_our_own_origin_and_allowed_ones_may_write(origin):
    assert served(request(origin=origin))


@pytest.mark.parametrize("origin", ["http://evil.test", "https://todo.test:8000", "http://todo.test", "null"])
def test_any_other_origin_may_not(origin):
    assert not served(request(origin=origin))
    assert not served(request("DELETE", origin=origin))
    assert not served(request("GET", origin=origin, websocket=True))     # a stream reads with the cookie too


def test_without_origin_the_referer_decides_and_an_unreadable_one_counts_as_foreign():
    assert served(request(referer="http://todo.test:8000/#/lists"))
    assert not served(request(referer="http://evil.test/page"))
    assert not served(request(referer="not a url"))
    assert served(request())                         # neither header: not a browser's cross-site request


def test_what_is_not_checked_safe_methods_tokens_and_strangers():
    assert served(request("GET", origin="http://evil.test"))
    assert served(request("OPTIONS", origin="http://evil.test"))
    assert served(request(origin="http://evil.test", via="bearer"))   # a script's token is not ambient
    assert served(request(origin="http://evil.test", user=None))      # no one signed in: nothing to abuse
