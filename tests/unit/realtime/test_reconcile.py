"""reconcile.compare: the slow timer's verdict on each followed list."""
from __future__ import annotations

from collections import namedtuple

from todopy.realtime.reconcile import compare

Head = namedtuple("Head", "id rev horizon")


def test_a_list_past_its_cursor_is_due_a_pruned_one_resyncs_a_deleted_one_is_read_for_its_deletion():
    behind = compare({"ahead": 5, "level": 9, "pruned": 3, "deleted": 4},
                     {"ahead": Head("ahead", 8, 0), "level": Head("level", 9, 2), "pruned": Head("pruned", 20, 10)})
    assert sorted(behind.due) == ["ahead", "deleted"]
    assert behind.pruned == {"pruned": 20}


def test_a_horizon_at_the_cursor_loses_nothing():
    assert compare({"l": 10}, {"l": Head("l", 12, 10)}).due == ["l"]
