"""Writes in their list's order: the writer named to the capture, the revs read back once assigned.

A list's revs are assigned at commit, under the list's lock, by the capture
(sql/0009_revs_at_commit.sql), which also decides there whether the writer still
holds the role the write needs: a removal, a downgrade or a sign-out that
committed first refuses it, whenever the request's body arrived. So a write is
one transaction, sent as one message (one round trip): name the writer, write,
assign the revs now (`SET CONSTRAINTS ALL IMMEDIATE`), read back what was written.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Mapping, Sequence

import psycopg2.errors

from todopy.access import NO_SUCH_LIST, Writer
from todopy.db import ConnectionPool, NamedRowCursor, Row
from todopy.conditional import changed
from todopy.errors import Conflict, Forbidden, NotFound, Unauthorized
from todopy.sqlfiles import queries

WRITES_SQL = queries("writes")
SIGNED_OUT = "the session was signed out or expired; sign in again"
LIST_MOVED_ON = "TP412"     # SQLSTATE of expect_list_rev (sql/0011_idempotency.sql): a bulk write's If-Match failed
# Quotas the database keeps at commit (constraints of sql/), and what the client is told.
MAX_TODOS_PER_LIST = 5_000         # lists_todo_limit
LIMITS = {"lists_todo_limit": f"this list has the most todos a list may have ({MAX_TODOS_PER_LIST}); "
                              "delete some first"}


def write(pool: ConnectionPool, writer: Writer, statement: str, params: Mapping[str, Any],
          read_back: str | None = None, *, checks: Sequence[str] = ()) -> list[Row]:
    """Run `statement` as `writer`; the rows of `read_back`, run after the revs are assigned
    and after `checks` (statements that may still refuse the write); by default one row
    when the write changed something, none when it did not."""
    # The revs are assigned (and the writer's access checked) before the message ends: inside
    # a larger transaction (an idempotent write's) a refusal still comes here.
    parts = [WRITES_SQL["as_writer"], statement, WRITES_SQL["assign_revs"], *checks,
             WRITES_SQL["wrote"] if read_back is None else read_back]
    with refusals():
        return pool.script(parts, {**params, **_named(writer)})


@contextlib.contextmanager
def transaction(pool: ConnectionPool, writer: Writer) -> Iterator[NamedRowCursor]:
    """A write of several statements that must see each other's effects (lock, then count):
    a transaction of its own, its writer named first, refused at commit like `write`."""
    with refusals(), pool.cursor() as cur:
        cur.execute(WRITES_SQL["as_writer"], _named(writer))
        yield cur
        cur.execute(WRITES_SQL["assign_revs"])


def _named(writer: Writer) -> dict[str, str]:
    return {"writer": writer.user_id, "session": writer.session.hex() if writer.session else ""}


@contextlib.contextmanager
def refusals() -> Iterator[None]:
    """The capture's refusals at commit, as the errors the contract gives for them."""
    try:
        yield
    except psycopg2.errors.InsufficientPrivilege as error:
        if error.diag.message_detail == "signed_out":
            raise Unauthorized(SIGNED_OUT) from None
        if error.diag.message_detail == "role":
            raise Forbidden(error.diag.message_primary or "your role in this list does not allow this") from None
        raise NotFound(NO_SUCH_LIST) from None
    except psycopg2.errors.ForeignKeyViolation:
        raise NotFound(NO_SUCH_LIST) from None      # the list was deleted meanwhile
    except psycopg2.errors.CheckViolation as error:
        message = LIMITS.get(error.diag.constraint_name or "")
        if message is None:
            raise
        raise Conflict(message, code="limit_reached") from None
    except psycopg2.Error as error:
        if error.pgcode != LIST_MOVED_ON:
            raise
        rev = int(error.diag.message_detail or 0)
        raise changed("list", "since the rev If-Match named", rev) from None
