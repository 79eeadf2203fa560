"""If-Match on revs (RFC 9110 §13.1.1): which revs a header accepts, compared strongly."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.wrappers import Request

from todopy.conditional import MAX_REV_DIGITS, describe, etag, if_match_revs


def revs_of(header: str | None) -> list[int] | None:
    return if_match_revs(Request({} if header is None else {"HTTP_IF_MATCH": header}))


@pytest.mark.parametrize("header, revs", [
    (None, None),                                  # unconditional
    ("*", None), (" * ", None),                   # any current rev
    ('"5"', [5]),
    ('"5", "7"', [5, 7]), ('"5","7"', [5, 7]), (' "5" ,\t"7" ', [5, 7]),
    ('W/"5"', []),                                 # weak: never matches strongly
    ('W/"5", "6"', [6]),
    ('"abc"', []), ('"5", "x1"', [5]),             # tags that are no rev of ours match nothing
    ('"\uff15"', []),                              # a fullwidth digit is no ASCII digit
    ('"' + "9" * MAX_REV_DIGITS + '"', [int("9" * MAX_REV_DIGITS)]),
    ('"' + "9" * (MAX_REV_DIGITS + 1) + '"', []),  # past bigint: no rev can be it
    ("5", []), ('"5', []), ('"5" "6"', []), ("", []),   # malformed: matches nothing
])
def test_the_revs_an_if_match_header_accepts(header, revs):
    assert revs_of(header) == revs


@given(st.lists(st.integers(min_value=0, max_value=10 ** MAX_REV_DIGITS - 1), min_size=1, max_size=5),
       st.sampled_from([",", ", ", " ,\t"]))
def test_strong_tags_of_revs_read_back_as_those_revs(revs, separator):
    assert revs_of(separator.join(f'"{rev}"' for rev in revs)) == revs


@given(st.text())
def test_any_header_gives_a_list_of_revs_or_none_and_never_raises(header):
    revs = revs_of(header)
    assert revs is None or all(isinstance(rev, int) and 0 <= rev < 10 ** MAX_REV_DIGITS for rev in revs)


def test_an_etag_names_a_rev_as_a_strong_tag_and_a_412_says_which_revs_were_asked():
    assert etag(12) == ("ETag", '"12"') and revs_of(etag(12)[1]) == [12]
    assert describe([3, 4]) == "since rev 3, 4"
    assert describe([]) == "or If-Match names no rev it had"
