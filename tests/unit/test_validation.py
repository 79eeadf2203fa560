"""todopy.validation: every field's rule, and the order in which a body's problems are reported."""
from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from todopy import validation
from todopy.errors import Unprocessable


def refusal(check, value) -> str:
    with pytest.raises(Unprocessable) as refused:
        check(value)
    assert refused.value.status == 422
    return refused.value.message


def test_a_title_is_trimmed_and_must_be_one_to_512_characters_of_text():
    assert validation.title("  Buy milk \n") == "Buy milk"
    assert validation.title("é" * 512) == "é" * 512
    assert refusal(validation.title, "   ") == "title must not be empty"
    assert refusal(validation.title, "x" * 513) == "title must be at most 512 characters, got 513"
    assert refusal(validation.title, 5) == "title must be a string"
    assert refusal(validation.title, None) == "title must be a string"
    assert "NUL" in refusal(validation.title, "a\x00b")
    assert "lone surrogate" in refusal(validation.title, "a\ud800b")


@given(st.one_of(st.text(), st.integers(), st.none(), st.booleans(), st.lists(st.text(max_size=3))))
def test_any_title_is_either_stored_as_clean_text_or_refused_with_422(value):
    try:
        text = validation.title(value)
    except Unprocessable:
        return
    assert isinstance(value, str) and text == value.strip() and 1 <= len(text) <= validation.MAX_TITLE
    assert "\x00" not in text and text.encode("utf-8").decode("utf-8") == text


def test_completed_is_a_json_boolean_only():
    assert validation.completed(True) is True and validation.completed(False) is False
    for value in (1, 0, "true", None):
        assert refusal(validation.completed, value) == "completed must be true or false"


def test_a_client_id_is_a_uuid_in_its_canonical_form():
    value = uuid.uuid4()
    assert validation.client_id(str(value).upper()) == str(value)
    assert validation.client_id(value.hex) == str(value)
    assert refusal(validation.client_id, "not-a-uuid").startswith("id must be a UUID")
    assert refusal(validation.client_id, 12) == "id must be a UUID string"


def test_roles_usernames_and_passwords():
    assert validation.member_role("editor") == "editor" and validation.member_role("viewer") == "viewer"
    assert "one owner" in refusal(validation.member_role, "owner")
    assert validation.username("a_b.c-9") == "a_b.c-9"
    for name in ("ab", "x" * 65, "has space", "ünï"):
        assert refusal(validation.username, name).startswith("username must be 3 to 64 characters")
    assert validation.password("8 chars!") == "8 chars!"
    for password in ("short", "x" * 1025):
        assert refusal(validation.password, password) == "password must be 8 to 1024 characters"


def test_fields_refuses_unknown_then_missing_then_bad_values():
    checkers = validation.NEW_TODO_FIELDS
    with pytest.raises(Unprocessable) as unknown:
        validation.fields({"colour": "red", "completed": "no"}, checkers, required={"title"})
    assert (unknown.value.code, unknown.value.message) == ("unknown_field", "colour is not a known field")
    with pytest.raises(Unprocessable) as missing:
        validation.fields({"completed": "no"}, checkers, required={"title"})
    assert (missing.value.code, missing.value.message) == ("missing_field", "title is required")
    with pytest.raises(Unprocessable) as bad:
        validation.fields({"title": "x", "completed": "no"}, checkers, required={"title"})
    assert bad.value.code == "invalid" and bad.value.message == "completed must be true or false"


def test_fields_checks_what_is_sent_and_passes_over_what_it_may_ignore():
    body = {"title": " x ", "rev": 9, "created_time": "then"}
    assert validation.fields(body, validation.TODO_FIELDS, ignored=validation.READ_ONLY_TODO_FIELDS) == {"title": "x"}


def test_a_boolean_query_parameter_is_true_false_or_absent():
    assert validation.bool_param({}, "completed") is None
    assert validation.bool_param({"completed": "true"}, "completed") is True
    assert validation.bool_param({"completed": "false"}, "completed") is False
    for raw in ("True", "1", "", "yes"):
        assert refusal(lambda value: validation.bool_param({"completed": value}, "completed"), raw) == (
            "query parameter completed must be true or false")
