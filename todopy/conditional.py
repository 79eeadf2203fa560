"""Conditional requests on revs: ETag out, If-Match in (RFC 9110 §13.1.1, strong comparison)."""
from __future__ import annotations

import re

from werkzeug.wrappers import Request

from todopy.errors import HTTPError, NotFound, PreconditionFailed

# One entity tag of a list: W/ marks a weak tag, which never matches strongly.
_TAG = re.compile(r'\s*(W/)?"([^"]*)"\s*(?:,|$)')
MAX_REV_DIGITS = 18


def etag(rev: int) -> tuple[str, str]:
    return ("ETag", f'"{rev}"')


def if_match_revs(request: Request) -> list[int] | None:
    """The revs an If-Match header accepts: None when absent or `*` (any), else the revs of its
    strong tags (possibly none: then nothing matches and the write is refused with 412)."""
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    revs: list[int] = []
    position = 0
    header = header.strip()
    while position < len(header):
        match = _TAG.match(header, position)
        if match is None:
            return []               # malformed: matches nothing
        weak, opaque = match.groups()
        if not weak and opaque.isascii() and opaque.isdigit() and len(opaque) <= MAX_REV_DIGITS:
            revs.append(int(opaque))
        position = match.end()
    return revs


def changed(noun: str, since: str, rev: int) -> PreconditionFailed:
    """412: the resource moved on `since` (what If-Match named); its ETag is its rev now, to retry with."""
    return PreconditionFailed(f"the {noun} has changed {since}; it is now at rev {rev}", headers=[etag(rev)])


def missed(noun: str, missing: str, revs: list[int] | None, rev_now: int | None) -> HTTPError:
    """Why a conditional write matched no row: 404 (`missing`) when the resource is not there
    (`rev_now` None), else 412, If-Match named none of its revs.

    The caller asks `rev_now` after the write, in a statement of its own: only a miss pays for it."""
    if rev_now is None:
        return NotFound(missing)
    return changed(noun, describe(revs), rev_now)


def describe(revs: list[int] | None) -> str:
    """How a refused If-Match reads in a 412's message."""
    if revs:
        return "since rev " + ", ".join(str(rev) for rev in revs)
    return "or If-Match names no rev it had"
