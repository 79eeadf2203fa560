"""The REST ceiling: a bare gevent pywsgi WSGI app answering a fixed small JSON.

    python -m bench.ceiling_rest PORT

What one gevent process on this machine can answer with no routing, middleware,
auth or database: todopy's REST figures are reported as a share of it.
"""
from __future__ import annotations

import socket
import sys

from gevent.pywsgi import WSGIHandler, WSGIServer

BODY = (b'{"id":"5f0c2a8e-3b1d-4c6e-9a7f-2d8b1e4c6a90","title":"a todo","completed":false,'
        b'"created_time":"2025-01-01T00:00:00.000000+00:00","rev":1}')
HEADERS = [("Content-Type", "application/json; charset=utf-8"), ("Content-Length", str(len(BODY)))]


class NoDelayHandler(WSGIHandler):
    """As todopy's handler: Nagle off, or keep-alive clients wait ~40 ms per response."""

    def handle(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().handle()


def app(environ: dict, start_response) -> list[bytes]:
    start_response("200 OK", HEADERS)
    return [BODY]


if __name__ == "__main__":
    WSGIServer(("127.0.0.1", int(sys.argv[1])), app, handler_class=NoDelayHandler, log=None).serve_forever()
