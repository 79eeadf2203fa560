"""The WSGI application: routing to resource classes, wrapped in plain WSGI middleware."""
from __future__ import annotations

import gevent
from typing import Callable, Iterable
from urllib.parse import quote, urlsplit

from werkzeug.exceptions import HTTPException as WerkzeugHTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import RequestRedirect
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import get_path_info

from todopy import maintenance, openapi
from todopy.accounts import Accounts
from todopy.admission import StreamAdmission, raise_open_files_limit
from todopy.budget import WriteBudget
from todopy.db import ConnectionPool
from todopy.environ import ENDPOINT
from todopy.errors import NotFound, Unauthorized
from todopy.http import JSON_CONTENT_TYPE
from todopy.representations import dumps
from todopy.fastpaths import AccessLog
from todopy.metrics import Metrics
from todopy.middleware.access_log import AccessLogMiddleware
from todopy.middleware.crosssite import CrossSiteMiddleware
from todopy.middleware.errors import ErrorMiddleware
from todopy.middleware.security import SecurityHeadersMiddleware
from todopy.middleware.sessions import SessionMiddleware, current_user
from todopy.realtime.dispatcher import Dispatcher
from todopy.realtime.ringer import Ringer
from todopy.realtime.presence import Presence
from todopy.realtime.protocol import PRESENCE_CHANNEL
from todopy.realtime.streams import Streams
from todopy.routes import PRIVATE_PREFIXES, ROUTES, url_map
from todopy.services import Services
from todopy.settings import Settings
from todopy.views.base import SIGN_IN_FIRST

QUERY_SAFE = "!$&'()*+,;=:@/?%~"     # RFC 3986 query characters besides unreserved ones, and '%'


class Router:
    """Matches the URL in the one Map and dispatches to that route's resource instance."""

    def __init__(self, services: Services) -> None:
        # Rules name no host, scheme or method: matching needs only the path, so one adapter
        # serves every request. Only a redirect needs the request's own URL (see `_redirect`).
        self.adapter = url_map.bind("localhost")
        # One instance per resource class, whichever routes it serves.
        self.resources = {route.resource: route.resource(services) for route in ROUTES}

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        try:
            # Upgrades are served by the same rules: resources decide (`websocket` method).
            # The endpoint is the Route itself (todopy/routes.py).
            route, values = self.adapter.match(get_path_info(environ), websocket=False)
        except RequestRedirect:
            self._refuse_strangers(environ)
            return self._redirect(environ, start_response)
        except WerkzeugHTTPException:
            self._refuse_strangers(environ)
            raise NotFound("no such resource") from None
        environ[ENDPOINT] = route.name
        # werkzeug's match returns a dict, typed as a Mapping.
        response = self.resources[route.resource].dispatch(Request(environ), values)  # type: ignore[arg-type]
        if response is None:  # a stream ran to its end; the socket is already closed
            return []
        return response(environ, start_response)

    @staticmethod
    def _refuse_strangers(environ: dict) -> None:
        """A path under the private prefixes that matches no route is still a 401 without a
        signed-in user: a stranger learns nothing about which ids exist (401 comes before 404)."""
        path = get_path_info(environ) + "/"
        if current_user(environ) is None and path.startswith(PRIVATE_PREFIXES):
            raise Unauthorized(SIGN_IN_FIRST)

    def _redirect(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        """A missing trailing slash: 308 keeps the method, body and query string.

        The Location is relative (RFC 9110 allows it): built from the Host header it
        would send a client wherever that header pointed, and behind a proxy it would
        name the proxy's upstream instead of the public origin.
        """
        try:
            self.adapter.match(get_path_info(environ), websocket=False)
        except RequestRedirect as redirect:
            # The adapter is bound to a placeholder host: only the path of its URL is ours.
            location = environ.get("SCRIPT_NAME", "") + urlsplit(redirect.new_url).path
            query = environ.get("QUERY_STRING", "")
            if query:
                # WSGI gives the query as latin-1 text of its bytes: the same bytes go back,
                # percent-encoded where a URI may not carry them (existing escapes are kept).
                location += "?" + quote(query.encode("latin-1"), safe=QUERY_SAFE)
            response = Response(dumps({"redirect": location}), status=308,
                                headers=[("Location", location)], content_type=JSON_CONTENT_TYPE)
            return response(environ, start_response)
        except WerkzeugHTTPException:
            pass
        raise NotFound("no such resource")


class TodoApp:
    """The WSGI callable plus the background work its process runs (listener, pinger, housekeeping)."""

    def __init__(self, wsgi: Callable, services: Services) -> None:
        self.wsgi = wsgi
        self.services = services
        self.settings = services.settings
        self._started = False

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        return self.wsgi(environ, start_response)

    def start(self) -> None:
        """Start this process's listener, pinger and housekeeping greenlets (once)."""
        if self._started:
            return
        self._started = True
        self.services.dispatcher.start()
        self.services.ringer.start()
        self.services.streams.start()
        if self.services.streams.presence is not None:
            self.services.streams.presence.start()
        gevent.spawn(maintenance.run_forever, self.services.pool, self.settings, self.settings.housekeeping_interval)

    def shutdown(self, code: int) -> None:
        """Close every stream with `code` (1001 on graceful stop) and stop listening."""
        self.services.ringer.stop()
        self.services.dispatcher.shutdown(code)


def create_app(settings: Settings, dsn: str) -> TodoApp:
    """Build the app and its collaborators; nothing connects until `start()` or a request."""
    metrics = Metrics()
    pool = ConnectionPool(dsn, settings.pool_size, timeout=settings.db_timeout,
                statement_timeout_ms=settings.statement_timeout_ms,
                idle_in_transaction_ms=settings.idle_in_transaction_timeout_ms)
    accounts = Accounts(pool, settings)
    dispatcher = Dispatcher(dsn, pool, accounts, metrics, on_reconnect=pool.discard_idle,
                            reconcile_interval=settings.reconcile_interval, ring_silence=settings.ring_silence,
                            stream_queue_size=settings.stream_queue_size)
    ringer = Ringer(dsn, metrics, lease=settings.ringer_lease)
    # Presence rides the dispatcher's LISTEN connection: one more channel, its own handler.
    presence = Presence(pool, timeout=settings.presence_timeout)
    dispatcher.channel_hooks[PRESENCE_CHANNEL] = presence.heard
    streams = Streams(dispatcher, pool, settings, metrics, presence=presence)
    # Per process: each worker raises its own limit and counts its own streams.
    admission = StreamAdmission.for_descriptors(settings.max_streams_per_user, raise_open_files_limit(),
                                                settings.fd_reserve, metrics.streams_refused)
    budget = WriteBudget(settings.write_burst, settings.write_rate, metrics.writes_refused)
    services = Services(settings, pool, accounts, dispatcher, ringer, streams, metrics, admission, budget,
                        openapi.document())
    # Each layer is handed the next one's bound __call__, not the object: CPython runs a call
    # of a Python method in the same C frame, but calls an object through a C recursion. (It
    # was memory per stream while streams parked inside the request, before they ran in
    # greenlets of their own: todopy/realtime/streams.py.)
    wsgi: Callable = Router(services).__call__
    wsgi = CrossSiteMiddleware(wsgi, settings.allowed_origins).__call__
    wsgi = SessionMiddleware(wsgi, accounts, max_age=settings.session_ttl).__call__
    wsgi = ErrorMiddleware(wsgi).__call__
    wsgi = SecurityHeadersMiddleware(wsgi).__call__
    wsgi = AccessLogMiddleware(wsgi, metrics, AccessLog(settings.log_format)).__call__
    if settings.proxy_hops:
        wsgi = ProxyFix(wsgi, x_for=settings.proxy_hops, x_proto=settings.proxy_hops,
                        x_host=settings.proxy_hops, x_port=settings.proxy_hops).__call__
    return TodoApp(wsgi, services)
