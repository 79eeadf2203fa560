"""Presence's pure parts: the board that merges every process's reports, and the client frame's rules."""
from __future__ import annotations

import json

import pytest

from todopy.realtime.presence import Board, _payloads, parse_client_frame

TODO = "6a1f0c2e-0000-4000-8000-000000000001"


def test_a_user_in_several_tabs_on_several_processes_is_shown_once_editing_what_any_tab_edits():
    board = Board(timeout=30)
    assert board.report("p1", "l1", (("bob", None),), now=0)
    assert board.report("p2", "l1", (("alice", None), ("bob", TODO)), now=0)
    assert board.view("l1") == [{"username": "alice", "editing": None}, {"username": "bob", "editing": TODO}]
    assert board.view("l2") == []


def test_a_report_of_nobody_removes_the_process_from_the_list_at_once():
    board = Board(timeout=30)
    board.report("p1", "l1", (("bob", None),), now=0)
    assert board.report("p1", "l1", (), now=1)
    assert board.view("l1") == []
    assert not board.report("p1", "l1", (), now=2)            # nothing was there: no change


def test_the_same_report_again_only_refreshes_it():
    board = Board(timeout=30)
    board.report("p1", "l1", (("bob", None),), now=0)
    assert not board.report("p1", "l1", (("bob", None),), now=20)
    assert board.expire(now=45) == set()                       # refreshed at 20: kept until 50
    assert board.expire(now=51) == {"l1"} and board.view("l1") == []


def test_a_process_not_heard_within_the_timeout_is_forgotten_others_stay():
    board = Board(timeout=30)
    board.report("dead", "l1", (("bob", None),), now=0)
    board.report("live", "l1", (("carol", None),), now=25)
    assert board.expire(now=31) == {"l1"}
    assert board.view("l1") == [{"username": "carol", "editing": None}]


@pytest.mark.parametrize("text,role,expected", [
    ('{"type": "presence", "editing": null}', "viewer", (True, None)),
    (f'{{"type": "presence", "editing": "{TODO}"}}', "editor", (True, TODO)),
    (f'{{"type": "presence", "editing": "{TODO}"}}', "owner", (True, TODO)),
    (f'{{"type": "presence", "editing": "{TODO}"}}', "viewer", (True, None)),     # viewers edit nothing
    ('{"type": "presence"}', "editor", (False, None)),
    ('{"type": "presence", "editing": null, "list": "x"}', "editor", (False, None)),
    ('{"type": "presence", "editing": "not-a-uuid"}', "editor", (False, None)),
    (f'{{"type": "presence", "editing": "{TODO.upper()}"}}', "editor", (False, None)),
    ('{"type": "presence", "editing": 7}', "editor", (False, None)),
    ('["presence"]', "editor", (False, None)),
    ("not json", "editor", (False, None)),
    ('{"type": "change", "editing": null}', "editor", (False, None)),
])
def test_a_client_frame_counts_only_when_it_is_exactly_a_presence_frame(text, role, expected):
    assert parse_client_frame(text, role) == expected


def test_an_announcement_too_big_for_one_notification_is_split_and_loses_nothing():
    lists = {f"{n:08d}-0000-4000-8000-000000000000": tuple((f"user{u:03d}", TODO) for u in range(10))
             for n in range(40)}
    payloads = _payloads("p1", lists)
    assert len(payloads) > 1 and all(len(p) <= 8000 for p in payloads)
    merged: dict = {}
    for payload in payloads:
        message = json.loads(payload)
        assert message["p"] == "p1"
        merged.update(message["lists"])
    assert merged == {list_id: [list(person) for person in people] for list_id, people in lists.items()}
