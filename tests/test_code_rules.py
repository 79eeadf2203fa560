"""Rules the code keeps, checked on its source."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "todopy"
SQL_CALLS = {"execute", "executemany", "query_one", "query_all", "mogrify"}


def sql_built_by_formatting(node: ast.AST) -> bool:
    """An f-string, %-formatting, concatenation or .format() call producing the SQL text."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(part, ast.FormattedValue) for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mod, ast.Add)):
        return True
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"


def test_no_sql_statement_is_built_by_string_formatting():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in SQL_CALLS and node.args and sql_built_by_formatting(node.args[0])):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert offenders == [], "SQL must be a constant with parameters: " + ", ".join(offenders)


def test_the_rule_catches_what_it_should():
    bad = ast.parse('cur.execute(f"SELECT {x}")').body[0].value
    also_bad = ast.parse('cur.execute("SELECT " + x)').body[0].value
    fine = ast.parse('cur.execute(Q["get"], {"id": x})').body[0].value
    assert sql_built_by_formatting(bad.args[0]) and sql_built_by_formatting(also_bad.args[0])
    assert not sql_built_by_formatting(fine.args[0])


def imported_modules(path: Path) -> set[str]:
    """The todopy modules a file imports, anywhere in it (type-only imports count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("todopy")}


def test_no_module_imports_itself_back():
    """A cycle (such as app <-> views.base, once) makes import order matter and hides who depends on whom."""
    modules = {".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): path
               for path in PACKAGE.rglob("*.py")}
    imports = {module: imported_modules(path) & set(modules) - {module} for module, path in modules.items()}
    cycles = []
    for start in sorted(modules):
        seen, todo = set(), list(imports[start])
        while todo:
            module = todo.pop()
            if module == start:
                cycles.append(start)
                break
            if module not in seen:
                seen.add(module)
                todo.extend(imports[module])
    assert cycles == [], "modules that import themselves back: " + ", ".join(cycles)


def row_read_by_position(node: ast.AST) -> bool:
    """`row[1]`, `row[1:]`, `rows[0][0]`, `cur.fetchone()[0]`: a result row indexed instead of named."""
    if not isinstance(node, ast.Subscript):
        return False
    target = node.value
    if isinstance(target, ast.Call) and isinstance(target.func, ast.Attribute):
        return target.func.attr in {"fetchone", "query_one"}
    if isinstance(target, ast.Subscript):           # rows[0][0]
        return (isinstance(target.slice, ast.Constant) and type(target.slice.value) is int
                and isinstance(node.slice, (ast.Constant, ast.Slice)))
    name = target.id if isinstance(target, ast.Name) else target.attr if isinstance(target, ast.Attribute) else ""
    return name == "row" or name.endswith("_row")


def test_result_rows_are_read_by_column_name():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if row_read_by_position(node):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert offenders == [], "read a row's columns by name (row.rev), as its query names them: " + ", ".join(offenders)


def test_the_row_rule_catches_what_it_should():
    bad = ["row[1]", "row[1:]", "rows[0][0]", "cur.fetchone()[0]", "pool.query_one(q)[2]", "self.first_row[0]"]
    fine = ["row.rev", "rows[0].head", "headers[0]", "frames[0]", "parts[1:]", 'item["summary"][0]']
    assert all(row_read_by_position(ast.parse(code).body[0].value) for code in bad)
    assert not any(row_read_by_position(ast.parse(code).body[0].value) for code in fine)


REALTIME_MAX_LINES = 320
HTTP_MODULES = {"todopy.http", "todopy.views", "todopy.middleware", "todopy.errors.HTTPError", "werkzeug"}


def test_the_realtime_core_is_small_modules_that_know_no_http():
    """issue 23: a newcomer follows a change from the log to the socket through small modules, none of
    which speaks HTTP (the views hand streams over after the handshake) or renders HTTP errors."""
    realtime = PACKAGE / "realtime"
    too_long = {path.name: n for path in realtime.glob("*.py")
                if (n := len(path.read_text().splitlines())) > REALTIME_MAX_LINES}
    assert not too_long, f"realtime modules over {REALTIME_MAX_LINES} lines: {too_long}"
    http = {path.name: sorted(name for name in imported_modules(path) if name.startswith(tuple(HTTP_MODULES)))
            for path in realtime.glob("*.py")}
    assert not {name: found for name, found in http.items() if found}, http


def test_changes_flow_one_way_through_the_realtime_core():
    """Lower layers never import higher ones: frames <- socket <- streams; protocol <- registry <- dispatcher."""
    order = ["frames", "changes", "protocol", "subscription", "registry", "handover", "reconcile", "listener",
             "dispatcher",
             "socket", "connection", "pinger", "presence", "sync",
             "streams"]
    upward = []
    for rank, name in enumerate(order):
        imported = imported_modules(PACKAGE / "realtime" / f"{name}.py")
        upward += [f"{name} imports {higher}" for higher in order[rank + 1:] if f"todopy.realtime.{higher}" in imported]
    assert not upward, upward


def environ_key_misuses(path: Path, keys: dict[str, str]) -> list[str]:
    """A todopy environ key written as a literal, or given a second name, outside todopy/environ.py."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Constant) and node.value in keys.values():
            found.append(f"{node.lineno}: the literal {node.value!r}")
        elif isinstance(node, ast.Assign):
            value = node.value
            name = value.id if isinstance(value, ast.Name) else value.attr if isinstance(value, ast.Attribute) else ""
            if name in keys:
                found.append(f"{node.lineno}: {name} renamed")
    return found


def test_environ_keys_have_one_name_from_todopy_environ():
    from todopy import environ

    keys = {name: value for name, value in vars(environ).items() if name.isupper() and isinstance(value, str)}
    offenders = [f"{path.relative_to(PACKAGE.parent)}:{where}"
                 for path in sorted(PACKAGE.rglob("*.py")) if path.name != "environ.py"
                 for where in environ_key_misuses(path, keys)]
    assert offenders == [], "name environ keys as todopy.environ does, by import: " + ", ".join(offenders)
