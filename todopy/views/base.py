"""The resource-class contract: one instance per class, one method per verb, access checked in one place."""
from __future__ import annotations

import dataclasses
from typing import Any

from werkzeug.wrappers import Request

from todopy import access, idempotency
from todopy.db import ConnectionPool, Row
from todopy.environ import ACCEPT_WEBSOCKET, STREAM_PLACE
from todopy.errors import Forbidden, HTTPError, MethodNotAllowed, NotFound, Unauthorized
from todopy.http import Reply
from todopy.accounts import User, hash_token
from todopy.middleware.sessions import current_session, current_user
from todopy.services import Services

VERBS = ("get", "post", "put", "patch", "delete")
WEBSOCKET = "websocket"
SIGN_IN_FIRST = "sign in first: send a session cookie or 'Authorization: Bearer <token>'"


class Resource:
    """Serves one URL: `get/post/put/patch/delete(request, **url_values)`, and
    `websocket(request, **url_values)` for an upgrade request. HEAD is served by
    `get`; any other verb is a 405 naming the allowed ones.

    Secure by default: a resource needs a signed-in user unless it sets `public`; a
    signed-in user's streams are admitted (todopy/admission.py) and their writes
    checked against their write budget (todopy/budget.py) here too.
    A resource under a list (`in_list`) gets the user's access to it (`grant`) among
    its values; the role each verb needs comes from `role_for`, and `dispatch` checks
    it for every verb, REST and stream alike, before the handler runs.
    """

    public = False
    in_list = False
    missing = "no such resource"      # the 404's message when `exists` says no

    def __init__(self, services: Services) -> None:
        self.services = services

    @classmethod
    def allowed_methods(cls) -> list[str]:
        """The methods this resource answers, as a 405's `Allow` names them (and the OpenAPI document)."""
        allowed = [verb.upper() for verb in VERBS if hasattr(cls, verb)]
        if "GET" in allowed:
            allowed.append("HEAD")
        return allowed

    def publish(self, rows: list[Row]) -> None:
        """Hand a write's own log rows (read back as todos.sql's `written` reads them) to this
        process's streams once its transaction commits: they need not wait for a ring and a read."""
        dispatcher = self.services.dispatcher
        self.services.pool.after_commit(lambda: dispatcher.committed(rows))

    def role_for(self, verb: str, grant: access.ListAccess, values: dict[str, Any]) -> str:
        """The least role `verb` needs here: reading and streaming need a member, writing an editor."""
        return access.VIEWER if verb in ("get", WEBSOCKET) else access.EDITOR

    def exists(self, verb: str, grant: access.ListAccess, values: dict[str, Any]) -> bool:
        """Whether the thing addressed inside the list exists: a missing one is a 404 even for
        a member whose role would not allow the verb (404 comes before 403)."""
        return True

    def dispatch(self, request: Request, values: dict[str, Any]) -> Reply | None:
        user = current_user(request.environ)
        if user is None and not self.public:
            raise Unauthorized(SIGN_IN_FIRST)
        if request.environ.get(ACCEPT_WEBSOCKET) and hasattr(self, WEBSOCKET):
            verb = WEBSOCKET
        else:
            verb = "get" if request.method == "HEAD" else request.method.lower()
        if self.in_list:
            assert user is not None
            values["grant"] = access.resolve(self.services.pool, user, _list_id(values), _session_of(request))
        handler = getattr(self, verb, None) if verb in (*VERBS, WEBSOCKET) else None
        if handler is None:
            raise MethodNotAllowed(self.allowed_methods())
        if self.in_list:
            grant = values["grant"]
            if not grant.allows(self.role_for(verb, grant, values)):
                if not self.exists(verb, grant, values):
                    raise NotFound(self.missing)
                raise Forbidden(f"your role in this list ({grant.role}) does not allow this")
        if user is not None and not self.public:
            if verb == WEBSOCKET:
                # The stream keeps the place until its connection closes (views/streaming.py);
                # a handshake refused before the upgrade gives it back here.
                with self.services.admission.admit(user.id) as place:
                    request.environ[STREAM_PLACE] = place
                    return handler(request, **values)
            if verb != "get":
                self.services.budget.check(user.id)     # the handler spends what it changed
        if self.public or not idempotency.applies(request):
            return handler(request, **values)
        assert user is not None
        try:
            key = idempotency.key_of(request)
        except HTTPError:
            # A refused body or key loses to a 404 (the contract's precedence), as in the handlers.
            if self.in_list and not self.exists(verb, values["grant"], values):
                raise NotFound(self.missing) from None
            raise

        def write(pool: ConnectionPool) -> Reply:
            # This resource's class, its queries bound to the key's transaction.
            pinned = type(self)(dataclasses.replace(self.services, pool=pool))
            return getattr(pinned, verb)(request, **values)

        return idempotency.perform(self.services.pool, self.services.settings, request, user.id, key, write)


def signed_in(request: Request) -> User:
    """The request's user, where `dispatch` has already refused anonymous requests."""
    user = current_user(request.environ)
    if user is None:
        raise Unauthorized(SIGN_IN_FIRST)
    return user


def writer_of(request: Request) -> access.Writer:
    """The request's user and session, as a write names them to the capture."""
    return access.Writer(signed_in(request).id, _session_of(request))


def _session_of(request: Request) -> bytes | None:
    """The hash of the token the request came with (as sessions are stored), or None."""
    token = current_session(request.environ).token
    return hash_token(token) if token else None


def _list_id(values: dict[str, Any]) -> str | None:
    list_id = values.pop("list_id", None)
    return None if list_id is None else str(list_id)
