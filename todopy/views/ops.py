"""Operations: /healthz, /metrics, /api/openapi.json."""
from __future__ import annotations

from werkzeug.wrappers import Request, Response

from todopy.errors import HTTP_STATUSES, DatabaseUnavailable, error_document
from todopy.http import Reply, json_response
from todopy.views.base import Resource


class Health(Resource):
    public = True

    def get(self, request: Request) -> Reply:
        try:
            self.services.pool.execute("SELECT 1")
        except DatabaseUnavailable as error:
            return self._unavailable("database", f"database unreachable: {error.message}")
        if not self.services.dispatcher.listening:
            return self._unavailable("listener", "change listener is not connected to the database; "
                                                 "streams are paused and will catch up when it reconnects")
        return json_response({"status": "ok"}, headers=[("Cache-Control", "no-store")])

    @staticmethod
    def _unavailable(part: str, message: str) -> Reply:
        """The database, or the listener's connection to it, is away: answered as the error table says."""
        return json_response({"status": "unavailable", **error_document(f"{part}_unavailable", message)},
                             HTTP_STATUSES[DatabaseUnavailable], [("Cache-Control", "no-store")])


class MetricsResource(Resource):
    """/metrics: the registry (todopy.metrics.Metrics) in Prometheus text format."""

    public = True

    def get(self, request: Request) -> Reply:
        return Response(self.services.metrics.render(), content_type="text/plain; version=0.0.4; charset=utf-8",
                        headers=[("Cache-Control", "no-store")])


class OpenAPI(Resource):
    """/api/openapi.json: built once from the routes (todopy/openapi.py) and handed in with the services."""

    public = True

    def get(self, request: Request) -> Reply:
        return json_response(self.services.api_description)
