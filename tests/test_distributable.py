"""The schema stays distributable by list (docs/design.md, "Beyond one PostgreSQL").

Sharded by list with Citus, a table is either distributed by its list (its primary
key, like every unique key, must then hold the distribution column), a reference
table copied to every node, or one row per node. Every table must say which; every
per-list table's primary key holds its list; every query over per-list tables names
the list it is about, or is listed here as one that spans lists, with the reason.
"""
from __future__ import annotations

import re
from pathlib import Path

from todopy.sqlfiles import queries, sql_dir

# Distributed by list: the table and its distribution column (the list's id).
PER_LIST = {"lists": "id", "todos": "list_id", "changes": "list_id", "memberships": "list_id",
            "changes_pending": "list_id", "capture_lists": "list_id"}
# Copied to every node: small, read on every request, written rarely.
# retired_ids too: every node must refuse an id that was retired on any.
REFERENCE = {"users", "sessions", "login_throttle", "retired_ids"}
# Distributed by user: a user's own records, read and written by their requests alone.
PER_USER = {"idempotency_keys": "user_id"}
# One row per node: each node's own bookkeeping (its log's pruning horizon, its ringer).
PER_NODE = {"changelog_horizon", "ringer_lease", "schema_migrations"}
# Queries over per-list tables that do not name one list, and why that is right.
SPANNING = {
    ("accounts", "user_by_name"): "a user's personal list, found by its owner (sharded: kept on the user's row)",
    ("accounts", "session_user"): "a user's personal list, found by its owner (sharded: kept on the user's row)",
    ("changes", "ring"): "the ringer's tick reads what committed on its node: one ringer per worker node",
    ("changes", "ring_recent"): "a new ringer's look at its node's recent changes",
    ("lists", "of_user"): "the lists stream: a user's lists span shards (one query per shard, merged)",
    ("writes", "wrote"): "this transaction's own changes, found by its xid (on the node it ran on)",
}
TABLE = re.compile(r"\b(?:FROM|JOIN|UPDATE|INTO)\s+(\w+)\b", re.IGNORECASE)
LIST_PARAMETERS = {"list", "lists", "list_id"}


def test_every_table_is_per_list_reference_or_per_node(sql):
    tables = {name for (name,) in sql("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                                      " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')")}
    unclassified = tables - set(PER_LIST) - REFERENCE - PER_NODE - set(PER_USER)
    assert not unclassified, f"say how these tables are distributed (and in docs/design.md): {unclassified}"


def test_every_per_list_table_carries_its_list_in_its_primary_key(sql):
    keys = dict(sql("SELECT c.relname, array_agg(a.attname::text ORDER BY a.attnum)"
                    "  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid"
                    "  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(k.conkey)"
                    " WHERE k.contype = 'p' GROUP BY c.relname"))
    for table, column in PER_LIST.items():
        assert column in keys.get(table, []), f"{table}'s primary key {keys.get(table)} lacks {column}"


def test_every_query_over_per_list_tables_names_its_list():
    named = 0
    for module in sorted(f.name[:-4] for f in (sql_dir() / "queries").iterdir() if f.name.endswith(".sql")):
        for name, text in queries(module).items():
            code = re.sub(r"--[^\n]*", "", text)
            if not set(TABLE.findall(code)) & set(PER_LIST):
                continue
            parameters = set(re.findall(r"%\((\w+)\)s", code))
            # A list named by its id: `lists.id = %(id)s` names the list too.
            if parameters & LIST_PARAMETERS or re.search(r"\b(?:l\.)?id\s*=\s*%\(id\)s", code) and "lists" in code:
                named += 1
                assert (module, name) not in SPANNING, f"{module}.{name} names its list: drop it from SPANNING"
                continue
            assert (module, name) in SPANNING, (
                f"{module}.{name} reads or writes per-list tables without naming the list; name it, or add it "
                "to SPANNING with the reason it must span lists")
    assert named > 20, "the scan found too few queries: is it still reading sql/queries?"


def test_the_design_names_every_tables_distribution():
    design = (Path(__file__).resolve().parent.parent / "docs" / "design.md").read_text(encoding="utf-8")
    section = design.split("## Beyond one PostgreSQL", 1)[-1]
    for table in [*PER_LIST, *REFERENCE, *PER_NODE]:
        assert f"`{table}`" in section, f"docs/design.md's sharding section does not name {table}"
