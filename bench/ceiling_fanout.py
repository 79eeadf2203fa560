"""The fan-out ceiling: a bare gevent-websocket server that sends one frame to every socket on a trigger.

    python -m bench.ceiling_fanout PORT

A WebSocket on any path gets a `ready` frame, then one text frame per
`POST /broadcast`, written to every connected socket by the request that
triggered it. No database, no queues, no per-stream filtering: what one gevent
process can broadcast; todopy's fan-out is reported as a share of it.
"""
from __future__ import annotations

import socket
import sys

from gevent.pywsgi import WSGIServer
from geventwebsocket.handler import WebSocketHandler

READY = '{"type":"ready","rev":1}'
FRAME = ('{"type":"change","op":"update","todo":{"id":"5f0c2a8e-3b1d-4c6e-9a7f-2d8b1e4c6a90","title":"fanout 1",'
         '"completed":false,"created_time":"2025-01-01T00:00:00.000000+00:00","rev":1},"rev":1}')
clients: set = set()


class NoDelayHandler(WebSocketHandler):
    """As todopy's handler: Nagle off, so each frame leaves at once."""

    def handle(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().handle()


def app(environ: dict, start_response) -> list[bytes]:
    ws = environ.get("wsgi.websocket")
    if ws is not None:
        clients.add(ws)
        try:
            ws.send(READY)
            while ws.receive() is not None:
                pass
        finally:
            clients.discard(ws)
        return []
    if environ["PATH_INFO"] == "/broadcast" and environ["REQUEST_METHOD"] == "POST":
        sent = 0
        for ws in list(clients):
            try:
                ws.send(FRAME)
                sent += 1
            except Exception:
                clients.discard(ws)
        body = b'{"sent":%d}' % sent
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    start_response("404 Not Found", [("Content-Length", "0")])
    return []


if __name__ == "__main__":
    WSGIServer(("127.0.0.1", int(sys.argv[1])), app, handler_class=NoDelayHandler, log=None).serve_forever()
