"""The handshake side of streams: what a resource's `websocket` method does before the realtime layer takes over."""
from __future__ import annotations

from werkzeug.wrappers import Request

from todopy.accounts import hash_token
from todopy.environ import ACCEPT_WEBSOCKET, STREAM, STREAM_PLACE, require
from todopy.errors import BadRequest, HTTPError, Unprocessable
from todopy.middleware.sessions import current_session, current_user
from todopy.realtime.socket import Socket
from todopy.realtime.connection import Opener
from todopy.realtime.streams import Streams


def parse_since(args) -> int | None:
    """`since=<rev>`: a non-negative integer, or a 422 before the upgrade."""
    raw = args.get("since")
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise Unprocessable("since must be a non-negative integer rev")
    return int(raw)


def accept(request: Request, streams: Streams) -> Socket:
    """Upgrade now: every check that answers with plain HTTP has passed. The stream this
    opens owns the connection and the admission place from here (todopy.realtime.streams),
    so nothing that may fail comes between this and starting it."""
    if not streams.accepting:
        # A graceful stop has closed every stream; one opened now (clients reconnect
        # within 250 ms) would hold the worker until the graceful timeout. Refuse it.
        raise HTTPError("the server is stopping; reconnect shortly", code="stopping", status=503)
    place = require(request.environ, STREAM_PLACE)
    upgrade = request.environ.get(ACCEPT_WEBSOCKET)
    socket = upgrade() if upgrade else None
    if socket is None:
        raise BadRequest("not a valid WebSocket handshake", code="bad_handshake")
    request.environ[STREAM] = True
    socket.on_released = place.keep()
    return socket


def opener(request: Request) -> Opener:
    user = current_user(request.environ)
    assert user is not None, "streams need a signed-in user"
    token = current_session(request.environ).token
    return Opener(user.id, hash_token(token) if token else None, request.full_path.rstrip("?"), user.username)
