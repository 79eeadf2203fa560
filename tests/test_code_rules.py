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
