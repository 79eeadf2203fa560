"""The realtime protocol: messages encoded once, close codes with their reasons, and the SQL side of the
ringer's channels held to the same constants."""
from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from tests.unit.realtime.rows import CREATED, frame_json, title_change, todo_change
from todopy.realtime import protocol
from todopy.realtime.protocol import Close, Moved

SQL = Path(__file__).resolve().parents[3] / "sql"


def test_a_change_frame_is_the_change_message_and_is_encoded_once_per_op():
    change = todo_change("update", True, False)
    frame = protocol.change_frame(change, "insert")
    assert protocol.change_frame(change, "insert") is frame
    assert frame_json(frame) == {
        "type": "change", "op": "insert", "rev": 7, "by": "alice",
        "todo": {"id": "t1", "title": "milk", "completed": True, "created_time": CREATED.isoformat(), "rev": 7}}
    assert frame_json(protocol.change_frame(change, "delete"))["op"] == "delete"


def test_a_title_message_carries_the_list_as_its_member_sees_it():
    frame = protocol.title_frame(title_change("Groceries"), {"id": "l1", "title": "Old", "role": "viewer"})
    assert frame_json(frame) == {
        "type": "list", "list": {"id": "l1", "title": "Groceries", "role": "viewer", "rev": 7}, "rev": 7, "by": "alice"}


def test_a_change_by_a_database_writer_that_did_not_say_names_no_author():
    assert frame_json(protocol.change_frame(todo_change("insert", False, by=None), "insert"))["by"] is None


def test_sync_messages():
    assert frame_json(protocol.ready(3)) == {"type": "ready", "rev": 3}
    assert frame_json(protocol.ready()) == {"type": "ready"}
    assert frame_json(protocol.todos_snapshot({"todos": [], "rev": 2})) == {"type": "snapshot", "todos": [], "rev": 2}
    assert frame_json(protocol.lists_change("delete", {"id": "l1"})) == {
        "type": "change", "op": "delete", "list": {"id": "l1"}}


def test_every_close_code_has_a_reason_that_fits_a_close_frame():
    for code in Close:
        assert code.reason and len(code.reason.encode()) <= 123, code


moved = st.builds(Moved, st.uuids().map(str), st.integers(0, 2**53), st.booleans(),
                  st.lists(st.uuids().map(str), max_size=3).map(tuple))


@given(st.lists(moved, max_size=200))
def test_a_ring_reads_back_as_encoded_or_says_everything_past_the_limit(lists):
    payload = protocol.encode_ring(lists)
    if payload == protocol.EVERYTHING:
        assert protocol.parse_ring(payload) is None
    else:
        assert len(payload) <= protocol.RING_PAYLOAD_LIMIT
        assert protocol.parse_ring(payload) == lists


def test_the_heartbeat_ring_names_no_list():
    assert protocol.parse_ring("[]") == []


def test_the_sql_rings_on_the_channels_and_with_the_limits_the_code_reads():
    ring = (SQL / "queries" / "changes.sql").read_text()
    tick = ring[ring.index("-- name: ring\n"):ring.index("-- name: ring_recent")]
    assert re.search(r"pg_notify\('(\w+)', CASE WHEN length\(payload\.lists\) <= (\d+) THEN payload\.lists "
                     r"ELSE '(.)' END\)", tick).groups() == (
        protocol.RING_CHANNEL, str(protocol.RING_PAYLOAD_LIMIT), protocol.EVERYTHING)
    assert "json_build_array(list_id, rev, meta, users)" in tick      # the order Moved reads
    renew = (SQL / "queries" / "ringer.sql").read_text()
    assert f"pg_notify('{protocol.RING_CHANNEL}', '[]')" in renew
    assert f"\nLISTEN {protocol.DOORBELL_CHANNEL}\n" in renew
    assert f"pg_notify('{protocol.SESSIONS_CHANNEL}', " in (SQL / "0004_login_throttle.sql").read_text()
    # The doorbell is rung by the capture's count of a transaction's first change, as the migration
    # that defines that function last has it.
    counts = [path for path in sorted(SQL.glob("0*.sql")) if "FUNCTION capture_count" in path.read_text()]
    assert f"pg_notify('{protocol.DOORBELL_CHANNEL}', list::text)" in counts[-1].read_text(), counts[-1].name
    assert protocol.parse_doorbell("0b5e6c2e-8f0e-4bb4-9d0a-2f1d9f3c7a11") == "0b5e6c2e-8f0e-4bb4-9d0a-2f1d9f3c7a11"
    assert protocol.parse_doorbell("") is None
