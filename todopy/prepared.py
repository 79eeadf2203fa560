"""Server-side prepared statements for the fixed queries: what psycopg2 would otherwise send as text every time.

psycopg2 sends each statement as text, and PostgreSQL parses and plans it on every
call; for the hot path's one-row statements that is much of the database's work
per request. A single-statement query from `sql/queries/` is instead prepared once
per connection (`PREPARE name AS ...`, its `%(param)s` placeholders turned into
`$1, $2, ...`) and then run as `EXECUTE name(...)`, with the values adapted by
psycopg2 as usual. What cannot be prepared (several statements, a parameter whose
type PostgreSQL cannot infer) runs as plain text, as before.

This replaces psycopg2's plain `cursor.execute(sql, params)` for pooled single
statements only (never inside a transaction: a refused PREPARE would abort it);
tests/test_prepared.py runs every named query both ways and compares.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
from collections.abc import Mapping    # not typing's: isinstance() against its alias is several times slower
from typing import Any, Sequence

import psycopg2
import psycopg2.extensions

_PARAM = re.compile(r"%\((\w+)\)s")
_COMMENT = re.compile(r"--[^\n]*")         # the queries' own comments hold no SQL and no string literals


class Connection(psycopg2.extensions.connection):
    """A connection that remembers which statements it has prepared (or failed to)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prepared: dict[str, str] = {}      # name -> its EXECUTE, with each parameter's type
        self.unpreparable: set[str] = set()
        # What execute_script sends, composed once here: scripts are the code's own queries, a fixed few.
        self.scripts: dict[tuple[str, ...], Script] = {}


@dataclasses.dataclass(frozen=True)
class Statement:
    name: str
    prepare: str                 # PREPARE name AS <the query with $n placeholders>
    params: tuple[str, ...]      # the named parameters, in $n order


@dataclasses.dataclass(frozen=True)
class Script:
    text: str                    # the statements' EXECUTEs (or texts), as one message
    params: tuple[str, ...]      # the named parameters, in the order of the message's placeholders


@functools.lru_cache(maxsize=512)
def statement(sql: str) -> Statement | None:
    """The prepared form of `sql`, or None when it is not one statement with named parameters only."""
    body = _COMMENT.sub("", sql).strip().rstrip(";")
    if ";" in body or "%s" in body:
        return None
    names: list[str] = []

    def placeholder(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    text = _PARAM.sub(placeholder, body).replace("%%", "%")
    name = "todopy_" + hashlib.sha1(sql.encode()).hexdigest()[:16]
    return Statement(name, f"PREPARE {name} AS {text}", tuple(names))


def execute(cur: psycopg2.extensions.cursor, sql: str, params: Mapping[str, Any] | None) -> None:
    """Run `sql` with `params` on an autocommit cursor, prepared when it can be."""
    text, st = _runnable(cur, sql, params)
    if st is None:
        cur.execute(text, params)
    else:
        cur.execute(text, [params[name] for name in st.params] if params is not None else [])


def execute_script(cur: psycopg2.extensions.cursor, statements: Sequence[str], params: Mapping[str, Any]) -> None:
    """Run several statements as one message (one round trip, one implicit transaction),
    each prepared when it can be; the cursor holds the last one's rows."""
    conn = cur.connection
    scripts: dict[tuple[str, ...], Script] = conn.scripts if isinstance(conn, Connection) else {}
    key = tuple(statements)
    script = scripts.get(key)
    if script is None:
        script = scripts[key] = _compose(cur, statements, params)   # its statements are prepared now
    cur.execute(script.text, [params[name] for name in script.params])


def _compose(cur: psycopg2.extensions.cursor, statements: Sequence[str], params: Mapping[str, Any]) -> Script:
    texts: list[str] = []
    names: list[str] = []
    for sql in statements:
        text, st = _runnable(cur, sql, params)
        if st is not None:
            names.extend(st.params)
        elif _PARAM.search(sql):        # left as text, its named placeholders cannot join positional ones
            raise ValueError(f"a statement of a script must be preparable or take no parameters: {sql[:60]}")
        texts.append(text)
    return Script(";\n".join(texts), tuple(names))


def _runnable(cur: psycopg2.extensions.cursor, sql: str,
              params: Mapping[str, Any] | None) -> tuple[str, Statement | None]:
    """What to send for `sql` on this connection: its EXECUTE once prepared (preparing it now if
    it is new) and the statement, whose `params` order the values; else the text itself and None."""
    conn = cur.connection
    if not isinstance(conn, Connection):
        return sql, None
    st = statement(sql) if params is None or isinstance(params, Mapping) else None
    if st is None or st.name in conn.unpreparable:
        return sql, None
    run = conn.prepared.get(st.name)
    if run is None:
        try:
            cur.execute(st.prepare)
        except psycopg2.ProgrammingError:        # e.g. a parameter of unknown type: run it as text
            conn.unpreparable.add(st.name)
            return sql, None
        # EXECUTE's arguments are coerced only as assignments would be, and psycopg2 sends
        # a list of strings as text[]: each argument is cast to the type PREPARE inferred.
        cur.execute("SELECT parameter_types::text[] FROM pg_prepared_statements WHERE name = %s", (st.name,))
        (types,) = cur.fetchone() or (None,)       # any cursor's row: a tuple, named or not
        types = types or []
        run = conn.prepared[st.name] = (f"EXECUTE {st.name}({', '.join(f'%s::{t}' for t in types)})"
                                        if types else f"EXECUTE {st.name}")
    return run, st
