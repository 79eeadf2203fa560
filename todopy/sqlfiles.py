"""SQL kept in .sql files shipped with the package: migrations and named queries."""
from __future__ import annotations

import functools
import importlib.resources
import re
from importlib.resources.abc import Traversable

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def sql_dir() -> Traversable:
    """The `sql/` directory, installed as package data at `todopy/sql`."""
    return importlib.resources.files("todopy") / "sql"


def migrations() -> list[tuple[str, str]]:
    """(name, text) of every numbered migration, in order."""
    files = [f for f in sql_dir().iterdir() if re.match(r"^\d{4}_.*\.sql$", f.name)]
    return [(f.name, f.read_text(encoding="utf-8")) for f in sorted(files, key=lambda f: f.name)]


@functools.cache
def queries(module: str) -> dict[str, str]:
    """The named queries of `sql/queries/<module>.sql`, split on `-- name: <name>` lines.

    A module keeps them as `<MODULE>_SQL = queries("<module>")`: `TODOS_SQL["get"]` names its file."""
    text = (sql_dir() / "queries" / f"{module}.sql").read_text(encoding="utf-8")
    parts = _NAME.split(text)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2])}
