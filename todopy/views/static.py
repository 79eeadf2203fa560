"""The TodoMVC page and its content-hashed assets, from the built bundle."""
from __future__ import annotations

import importlib.resources
import mimetypes

from werkzeug.wrappers import Request, Response

from todopy.errors import NotFound
from todopy.views.base import Resource

NO_BUNDLE = (b"<!doctype html><meta charset=utf-8><title>todopy</title>"
             b"<p>The front end is not built. Run <code>make</code> in the repository.</p>")

# The build writes each asset three times: as is, .br and .gz (static/build.mjs).
# Best first; a client's q-values only rule out (q=0), they do not reorder.
ENCODINGS = (("br", ".br"), ("gzip", ".gz"))
# Only the files the page names are served: never the precompressed twins by
# their own names, never source maps (they stay out of dist/ anyway).
NOT_SERVED = (".br", ".gz", ".map")


def bundle_dir():
    """Built files, installed as package data at todopy/assets (from static/dist)."""
    return importlib.resources.files("todopy") / "assets"


class Index(Resource):
    public = True

    def get(self, request: Request) -> Response:
        page = bundle_dir() / "index.html"
        body = page.read_bytes() if page.is_file() else NO_BUNDLE
        # The page names hashed assets, so it must be revalidated; they need not.
        return Response(body, content_type="text/html; charset=utf-8", headers=[("Cache-Control", "no-cache")])


class Asset(Resource):
    public = True

    def get(self, request: Request, filename: str) -> Response:
        if "/" in filename or filename.startswith(".") or filename.endswith(NOT_SERVED):
            raise NotFound("no such asset")
        folder = bundle_dir() / "assets"
        asset = folder / filename
        try:
            found = asset.is_file()
        except (OSError, ValueError):
            found = False   # a name the file system refuses (too long, NUL): no such asset either
        if not found:
            raise NotFound("no such asset")
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type.endswith("javascript"):
            content_type += "; charset=utf-8"
        headers = [("Cache-Control", "public, max-age=31536000, immutable"), ("Vary", "Accept-Encoding")]
        accepted = request.accept_encodings
        for coding, suffix in ENCODINGS:
            variant = folder / (filename + suffix)
            if accepted.quality(coding) > 0 and variant.is_file():
                headers.append(("Content-Encoding", coding))
                return Response(variant.read_bytes(), content_type=content_type, headers=headers)
        return Response(asset.read_bytes(), content_type=content_type, headers=headers)
