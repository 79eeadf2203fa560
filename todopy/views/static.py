"""The TodoMVC page and its content-hashed assets, from the built bundle."""
from __future__ import annotations

import importlib.resources
from pathlib import Path

from werkzeug.exceptions import NotFound as NoSuchFile
from werkzeug.utils import send_from_directory
from werkzeug.wrappers import Request, Response

from todopy.errors import NotFound
from todopy.views.base import Resource

NO_BUNDLE = (b"<!doctype html><meta charset=utf-8><title>todopy</title>"
             b"<p>The front end is not built. Run <code>make</code> in the repository.</p>")

# The build writes each asset three times: as is, .br and .gz (static/build.mjs).
# Best first; a client's q-values only rule out (q=0), they do not reorder.
ENCODINGS = (("br", ".br"), ("gzip", ".gz"))
# Only the files the page names are served: never the precompressed twins by
# their own names, never source maps (they stay out of dist/ anyway), never hidden files.
NOT_SERVED = (".br", ".gz", ".map")
ONE_YEAR = 365 * 24 * 3600


def bundle_dir() -> Path:
    """Built files, installed as package data at todopy/assets (from static/dist), as a directory."""
    package = importlib.resources.files("todopy")
    if not isinstance(package, Path):
        raise RuntimeError("todopy must be installed as files (not zipped) to serve its front end")
    return package / "assets"


class Index(Resource):
    public = True

    def get(self, request: Request) -> Response:
        page = bundle_dir() / "index.html"
        body = page.read_bytes() if page.is_file() else NO_BUNDLE
        # The page names hashed assets, so it must be revalidated; they need not.
        return Response(body, content_type="text/html; charset=utf-8", headers=[("Cache-Control", "no-cache")])


class ServiceWorker(Resource):
    """The app shell's service worker (static/src/sw.js). Served from the root, since a worker
    controls only the pages under the folder its script comes from; revalidated every time,
    as browsers do with workers anyway, so a new release reaches every tab."""

    public = True

    def get(self, request: Request) -> Response:
        script = bundle_dir() / "sw.js"
        if not script.is_file():
            raise NotFound("the front end is not built")
        return Response(script.read_bytes(), content_type="text/javascript; charset=utf-8",
                        headers=[("Cache-Control", "no-cache")])


class Asset(Resource):
    """A hashed asset by werkzeug's `send_from_directory` (safe_join, ETag, conditional and range
    requests), precompressed when the client accepts it, cached for good: its name changes with it."""

    public = True

    def get(self, request: Request, filename: str) -> Response:
        if filename.startswith(".") or filename.endswith(NOT_SERVED):
            raise NotFound("no such asset")
        accepted = request.accept_encodings
        for coding, suffix in [*((c, s) for c, s in ENCODINGS if accepted.quality(c) > 0), (None, "")]:
            try:
                # Type and charset come from the asset's own name, whichever variant is sent.
                response = send_from_directory(bundle_dir() / "assets", filename + suffix, request.environ,
                                               download_name=filename, max_age=ONE_YEAR)
            except NoSuchFile:
                continue
            response.cache_control.immutable = True
            response.vary.add("Accept-Encoding")
            if coding is not None:
                response.content_encoding = coding
            return response
        raise NotFound("no such asset")
