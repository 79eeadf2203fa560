"""docs/api.md "Todos": the REST routes, against the real server, each test with fresh users."""
from __future__ import annotations

import threading
import time
from typing import Callable

import pytest

from tests.contract import assert_error, random_todo_path, sign_up_with_cookie, todo_keys
from tests.support import Api, register

# Every character Python's str.strip removes, up to U+3000 (the last white space code point).
WHITE_SPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())


def path_of(todo: dict) -> str:
    return f"/api/todos/{todo['id']}/"


def etag_of(todo: dict) -> str:
    return f'"{todo["rev"]}"'


# -- authentication ------------------------------------------------------------

TODO_ROUTES = [("GET", "/api/todos/"), ("POST", "/api/todos/"), ("PATCH", "/api/todos/"),
               ("DELETE", "/api/todos/?completed=true"), ("PUT", "/api/todos/"),
               ("GET", "/api/todos/?completed=true"), ("GET", "{todo}"), ("PUT", "{todo}"), ("PATCH", "{todo}"),
               ("DELETE", "{todo}"), ("POST", "{todo}"), ("GET", "/api/todos/not-a-uuid/"),
               ("GET", "/api/todos"), ("GET", "/api/todos/nothing/here")]


def test_every_todos_route_and_method_is_401_without_valid_credentials(alice: Api, anonymous: Api):
    todo = alice.create_todo("private")
    revoked = register(alice.base_url)
    assert revoked.delete("/api/session/").status_code == 204
    callers = {"no token": anonymous, "bad token": Api(alice.base_url, token="not-a-token"),
               "revoked token": revoked}
    answers = {}
    for name, caller in callers.items():
        for method, path in TODO_ROUTES:
            answers[name, method, path] = caller.request(method, path.format(todo=path_of(todo)),
                                                         json_body={"title": "x", "completed": True})
    wrong = {key: response.status_code for key, response in answers.items() if response.status_code != 401}
    assert not wrong
    for response in answers.values():
        assert_error(response, 401, code="unauthorized")
    assert alice.get(path_of(todo)).json() == todo


def test_a_bad_or_revoked_session_cookie_is_401(server):
    bad = Api(server.base_url)
    bad.http.cookies.set("todopy_session", "not-a-token")
    assert_error(bad.get("/api/todos/"), 401)
    browser = sign_up_with_cookie(server.base_url)
    token = browser.http.cookies["todopy_session"]
    assert browser.delete("/api/session/").status_code == 204
    replay = Api(server.base_url)
    replay.http.cookies.set("todopy_session", token)
    for method in ("GET", "POST", "PATCH"):
        assert_error(replay.request(method, "/api/todos/", json_body={"completed": True}), 401)


# -- create --------------------------------------------------------------------

def test_create_answers_201_with_location_and_the_todo(alice: Api):
    response = alice.post("/api/todos/", {"title": "buy milk"})
    assert response.status_code == 201
    todo = response.json()
    todo_keys(todo)
    assert todo["title"] == "buy milk" and todo["completed"] is False
    assert response.headers["Location"] == f"/api/todos/{todo['id']}/"
    fetched = alice.get(response.headers["Location"])
    assert fetched.status_code == 200 and fetched.json() == todo


def test_create_may_set_completed(alice: Api):
    assert alice.post("/api/todos/", {"title": "done", "completed": True}).json()["completed"] is True


INVALID_CREATES = [
    ({}, "title"), ({"completed": True}, "title"), ({"title": "x", "colour": "red"}, "colour"),
    ({"title": 5}, "title"), ({"title": None}, "title"), ({"title": ["x"]}, "title"),
    ({"title": "x", "completed": "true"}, "completed"), ({"title": "x", "completed": 1}, "completed"),
    ({"title": "x", "completed": None}, "completed"), ({"title": ""}, "title"), ({"title": "x" * 513}, "title"),
]


def test_create_refuses_invalid_fields_with_422_naming_the_field(alice: Api):
    for body, field in INVALID_CREATES:
        assert_error(alice.post("/api/todos/", body), 422, names=field)
    assert alice.list_todos()["todos"] == []


# -- titles --------------------------------------------------------------------

def test_titles_are_trimmed_like_str_strip_on_every_write(alice: Api):
    assert len(WHITE_SPACE) > 20 and "\u3000" in WHITE_SPACE and "\u00a0" in WHITE_SPACE
    padded = WHITE_SPACE + "a  b\u3000c" + WHITE_SPACE
    todo = alice.create_todo(padded)
    assert todo["title"] == padded.strip() == "a  b\u3000c"
    assert alice.put(path_of(todo), {"title": "\t put \n", "completed": False}).json()["title"] == "put"
    assert alice.patch(path_of(todo), {"title": "\u2003patch\u2029"}).json()["title"] == "patch"
    # Not white space for str.strip, so kept: zero-width space and the byte order mark.
    assert alice.create_todo("\u200bx\ufeff")["title"] == "\u200bx\ufeff"


def test_a_title_of_only_white_space_is_422(alice: Api):
    todo = alice.create_todo("keep")
    assert_error(alice.post("/api/todos/", {"title": WHITE_SPACE}), 422, names="title")
    assert_error(alice.put(path_of(todo), {"title": " \n ", "completed": True}), 422, names="title")
    assert_error(alice.patch(path_of(todo), {"title": "\u3000"}), 422, names="title")
    assert alice.get(path_of(todo)).json() == todo


def test_titles_count_code_points_up_to_512_after_trimming(alice: Api):
    emoji = "\U0001F600" * 512
    assert alice.create_todo(emoji)["title"] == emoji
    assert alice.create_todo("  " + "x" * 512 + "  ")["title"] == "x" * 512
    combining = "e\u0301" * 256                      # 512 code points, 256 user-perceived characters
    assert alice.create_todo(combining)["title"] == combining
    assert_error(alice.post("/api/todos/", {"title": emoji + "\U0001F600"}), 422, names="title")
    assert_error(alice.post("/api/todos/", {"title": combining + "e"}), 422, names="title")
    assert_error(alice.post("/api/todos/", {"title": "x" * 513}), 422, names="title")
    assert len(alice.list_todos()["todos"]) == 3


# -- list ----------------------------------------------------------------------

def test_list_is_oldest_first_with_a_rev_covering_every_todo(alice: Api):
    created = [alice.create_todo(f"todo {i}", completed=i % 2 == 0) for i in range(5)]
    listing = alice.list_todos()
    assert set(listing) == {"todos", "rev"}
    assert listing["todos"] == created
    for todo in listing["todos"]:
        todo_keys(todo)
    assert listing["rev"] >= max(todo["rev"] for todo in created)


def test_list_filters_on_completed(alice: Api):
    created = [alice.create_todo(f"todo {i}", completed=i in (1, 3)) for i in range(5)]
    assert alice.list_todos("?completed=true")["todos"] == [created[1], created[3]]
    assert alice.list_todos("?completed=false")["todos"] == [created[0], created[2], created[4]]


def test_a_bad_completed_parameter_is_422(alice: Api):
    todo = alice.create_todo("unchanged", completed=True)
    for query in ("?completed=yes", "?completed=", "?completed=True", "?completed=1", "?completed=%00"):
        assert_error(alice.get("/api/todos/" + query), 422, names="completed")
        assert_error(alice.patch("/api/todos/" + query, {"completed": False}), 422, names="completed")
        assert_error(alice.delete("/api/todos/" + query), 422, names="completed")
    assert alice.list_todos()["todos"] == [todo]


def test_an_empty_list_still_has_a_rev(alice: Api):
    listing = alice.list_todos()
    assert listing["todos"] == [] and isinstance(listing["rev"], int) and listing["rev"] >= 0


# -- toggle all ----------------------------------------------------------------

def test_toggle_all_changes_and_returns_only_the_todos_that_differ(alice: Api):
    done = alice.create_todo("done", completed=True)
    open_ = [alice.create_todo(f"open {i}") for i in range(3)]
    response = alice.patch("/api/todos/", {"completed": True})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"todos", "rev"}
    assert [todo["id"] for todo in body["todos"]] == [todo["id"] for todo in open_]
    assert all(todo["completed"] for todo in body["todos"])
    revs = [todo["rev"] for todo in body["todos"]]
    assert len(set(revs)) == 3 and min(revs) > max(todo["rev"] for todo in open_)
    assert body["rev"] >= max(revs)
    listing = alice.list_todos()
    assert listing["todos"][0] == done, "an unchanged todo keeps its rev"
    assert listing["todos"][1:] == body["todos"]

    again = alice.patch("/api/todos/", {"completed": True}).json()
    assert again["todos"] == [] and again["rev"] >= body["rev"]


def test_toggle_all_honours_the_completed_filter(alice: Api):
    done = [alice.create_todo(f"done {i}", completed=True) for i in range(2)]
    active = alice.create_todo("active")
    nothing = alice.patch("/api/todos/?completed=true", {"completed": True}).json()
    assert nothing["todos"] == []
    reopened = alice.patch("/api/todos/?completed=true", {"completed": False}).json()
    assert [todo["id"] for todo in reopened["todos"]] == [todo["id"] for todo in done]
    assert alice.patch("/api/todos/?completed=true", {"completed": True}).json()["todos"] == []
    assert alice.get(path_of(active)).json() == active
    assert not any(todo["completed"] for todo in alice.list_todos()["todos"])


def test_toggle_all_refuses_bad_bodies_with_422(alice: Api):
    todo = alice.create_todo("unchanged")
    for body, field in (({}, "completed"), ({"completed": "true"}, "completed"), ({"completed": None}, "completed"),
                        ({"completed": True, "title": "x"}, "title")):
        assert_error(alice.patch("/api/todos/", body), 422, names=field)
    assert alice.get(path_of(todo)).json() == todo


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def bulk_is_atomic(alice: Api, sql, write: Callable[[], object]) -> list[tuple[int, int]]:
    """While `write` runs, every concurrent list sees all of the bulk change or none of it."""
    sql("INSERT INTO todos (list_id, title) SELECT personal_list(%s), 'bulk ' || i FROM generate_series(1, 300) AS i",
        (alice.user["id"],))
    seen: list[tuple[int, int]] = []
    stop = threading.Event()

    def watch() -> None:
        reader = Api(alice.base_url, alice.token)
        while not stop.is_set():
            todos = reader.list_todos()["todos"]
            seen.append((len(todos), sum(todo["completed"] for todo in todos)))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        wait_until(lambda: len(seen) >= 2)
        write()
        count = len(seen)
        wait_until(lambda: len(seen) >= count + 2)
    finally:
        stop.set()
        watcher.join()
    return seen


def test_toggle_all_is_atomic(alice: Api, sql):
    seen = bulk_is_atomic(alice, sql, lambda: alice.patch("/api/todos/", {"completed": True}))
    assert set(seen) <= {(300, 0), (300, 300)}, set(seen)
    assert (300, 0) in seen and (300, 300) in seen


def test_clear_completed_is_atomic(alice: Api, sql):
    def write() -> None:
        alice.patch("/api/todos/", {"completed": True})
        assert alice.delete("/api/todos/?completed=true").json()["deleted"] == 300
    seen = bulk_is_atomic(alice, sql, write)
    assert set(seen) <= {(300, 0), (300, 300), (0, 0)}, set(seen)
    assert (0, 0) in seen


# -- clear completed -----------------------------------------------------------

def test_clear_completed_deletes_only_completed_and_counts_them(alice: Api):
    keep = alice.create_todo("keep")
    for i in range(3):
        alice.create_todo(f"done {i}", completed=True)
    before = alice.list_todos()["rev"]
    response = alice.delete("/api/todos/?completed=true")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"deleted", "rev"} and body["deleted"] == 3
    assert body["rev"] >= before + 3, "each deleted row takes a rev"
    assert alice.list_todos()["todos"] == [keep]
    assert alice.delete("/api/todos/?completed=true").json()["deleted"] == 0


def test_delete_all_without_completed_true_is_422(alice: Api):
    todos = [alice.create_todo("a"), alice.create_todo("b", completed=True)]
    for query in ("", "?completed=false", "?other=true"):
        assert_error(alice.delete("/api/todos/" + query), 422, names="completed")
    assert alice.list_todos()["todos"] == todos


# -- one todo ------------------------------------------------------------------

def test_get_one_has_an_etag_of_its_rev(alice: Api):
    todo = alice.create_todo("etag")
    response = alice.get(path_of(todo))
    assert response.status_code == 200 and response.json() == todo
    assert response.headers["ETag"] == etag_of(todo)


def test_put_replaces_both_fields(alice: Api):
    todo = alice.create_todo("old")
    response = alice.put(path_of(todo), {"title": "new", "completed": True})
    assert response.status_code == 200
    updated = response.json()
    assert updated == {**todo, "title": "new", "completed": True, "rev": updated["rev"]}
    assert updated["rev"] > todo["rev"]
    assert alice.get(path_of(todo)).json() == updated


def test_put_requires_both_fields(alice: Api):
    todo = alice.create_todo("unchanged")
    for body, field in (({"title": "only"}, "completed"), ({"completed": True}, "title"), ({}, "title"),
                        ({"id": todo["id"], "rev": todo["rev"]}, "title")):
        assert_error(alice.put(path_of(todo), body), 422, names=field)
    assert alice.get(path_of(todo)).json() == todo


def test_patch_changes_any_of_the_fields(alice: Api):
    todo = alice.create_todo("old")
    titled = alice.patch(path_of(todo), {"title": "new"}).json()
    assert (titled["title"], titled["completed"]) == ("new", False)
    done = alice.patch(path_of(todo), {"completed": True}).json()
    assert (done["title"], done["completed"]) == ("new", True)
    both = alice.patch(path_of(todo), {"title": "both", "completed": False}).json()
    assert (both["title"], both["completed"]) == ("both", False)
    assert todo["rev"] < titled["rev"] < done["rev"] < both["rev"]
    assert {titled["id"], done["id"], both["id"], titled["created_time"], both["created_time"]} == {
        todo["id"], todo["created_time"]}


def test_patch_with_nothing_to_change_is_422(alice: Api):
    todo = alice.create_todo("unchanged")
    assert_error(alice.patch(path_of(todo), {}), 422)
    assert_error(alice.patch(path_of(todo), {"id": todo["id"], "rev": 1, "created_time": "x"}), 422)
    assert alice.get(path_of(todo)).json() == todo


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_read_only_fields_are_ignored_so_a_whole_todo_can_be_sent_back(alice: Api, method):
    todo = alice.create_todo("mine")
    other = alice.create_todo("other")
    sent = {**todo, "title": "edited", "completed": True}
    response = alice.request(method, path_of(todo), json_body=sent)
    assert response.status_code == 200, response.text
    assert response.json()["title"] == "edited" and response.json()["id"] == todo["id"]
    forged = {"id": other["id"], "rev": 1, "created_time": "1999-01-01T00:00:00+00:00",
              "title": "forged ids", "completed": False}
    result = alice.request(method, path_of(todo), json_body=forged).json()
    assert result["id"] == todo["id"] and result["created_time"] == todo["created_time"]
    assert result["rev"] > response.json()["rev"]
    assert alice.get(path_of(other)).json() == other


INVALID_UPDATES = [
    ({"title": "x", "completed": True, "owner": "someone"}, "owner"), ({"title": "x", "completed": "true"}, "completed"),
    ({"title": 1, "completed": True}, "title"), ({"title": "x", "completed": 0}, "completed"),
    ({"title": None, "completed": True}, "title"), ({"title": "x", "completed": None}, "completed"),
    ({"title": "x" * 513, "completed": True}, "title"), ({"title": "", "completed": True}, "title"),
]


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_put_and_patch_refuse_invalid_fields_with_422_naming_the_field(alice: Api, method):
    todo = alice.create_todo("unchanged")
    for body, field in INVALID_UPDATES:
        assert_error(alice.request(method, path_of(todo), json_body=body), 422, names=field)
    assert alice.get(path_of(todo)).json() == todo


def test_delete_one_answers_204_and_it_is_gone(alice: Api):
    todo = alice.create_todo("doomed")
    response = alice.delete(path_of(todo))
    assert response.status_code == 204 and response.content == b""
    assert_error(alice.get(path_of(todo)), 404)
    assert_error(alice.delete(path_of(todo)), 404)


def test_an_unknown_todo_is_404_for_every_method(alice: Api):
    path = random_todo_path()
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        assert_error(alice.request(method, path, json_body={"title": "x", "completed": True}), 404,
                     code="not_found")
    assert_error(alice.get("/api/todos/not-a-uuid/"), 404)


# -- If-Match ------------------------------------------------------------------

CONDITIONAL_WRITES = [("PUT", {"title": "new", "completed": True}), ("PATCH", {"completed": True}), ("DELETE", None)]


def test_if_match_with_the_current_rev_succeeds(alice: Api):
    for method, body in CONDITIONAL_WRITES:
        todo = alice.create_todo("current")
        for header in (etag_of(todo), "*"):
            response = alice.request(method, path_of(todo), json_body=body, headers={"If-Match": header})
            assert response.status_code == (204 if method == "DELETE" else 200), (method, response.text)
            if method != "DELETE":
                assert response.headers["ETag"] == etag_of(response.json())
                todo = response.json()
            else:
                break


def test_if_match_with_a_stale_rev_is_412_and_changes_nothing(alice: Api):
    for method, body in CONDITIONAL_WRITES:
        todo = alice.create_todo("old")
        stale = etag_of(todo)
        current = alice.patch(path_of(todo), {"title": "changed by someone else"}).json()
        for unmatchable in (stale, '"0"', "garbage", '"1", "2"'):
            response = alice.request(method, path_of(todo), json_body=body, headers={"If-Match": unmatchable})
            assert_error(response, 412, code="precondition_failed")
        assert response.headers["ETag"] == etag_of(current), "a 412 tells the current rev"
        assert alice.get(path_of(todo)).json() == current


def test_if_match_on_someone_elses_todo_is_404_not_412(alice: Api, bob: Api):
    todo = alice.create_todo("alice's")
    for method in ("PUT", "PATCH", "DELETE"):
        response = bob.request(method, path_of(todo), json_body={"title": "x", "completed": True},
                               headers={"If-Match": '"1"'})
        assert_error(response, 404)


# -- revs ----------------------------------------------------------------------

def test_revs_increase_on_every_change_and_a_list_rev_covers_them(alice: Api, sql):
    seen: list[int] = []
    todo = alice.create_todo("rev")
    seen.append(todo["rev"])
    seen.append(alice.put(path_of(todo), {"title": "rev 2", "completed": False}).json()["rev"])
    seen.append(alice.patch(path_of(todo), {"completed": True}).json()["rev"])
    seen.append(alice.patch("/api/todos/", {"completed": False}).json()["todos"][0]["rev"])
    other = alice.create_todo("second")
    seen.append(other["rev"])
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    # Nothing else writes to this list: every change took the next rev, and the list's rev is
    # exactly the last one, the head of its change log.
    assert seen == list(range(seen[0], seen[0] + 5))
    listing = alice.list_todos()
    (head,) = sql("SELECT max(rev) FROM changes WHERE list_id = personal_list(%s)", (alice.user["id"],))[0]
    assert listing["rev"] == seen[-1] == head
    assert all(listing["rev"] >= item["rev"] for item in listing["todos"])
    assert alice.delete(path_of(other)).status_code == 204
    assert alice.list_todos()["rev"] == seen[-1] + 1, "a delete takes the next rev too"


# -- isolation -----------------------------------------------------------------

def test_another_users_todo_is_404_for_every_method_and_never_listed(alice: Api, bob: Api):
    mine = alice.create_todo("alice's secret")
    done = alice.create_todo("alice's done", completed=True)
    for method, body in (("GET", None), ("PUT", {"title": "x", "completed": True}), ("PATCH", {"title": "x"}),
                         ("DELETE", None)):
        assert_error(bob.request(method, path_of(mine), json_body=body), 404, code="not_found")
    bob.create_todo("bob's")
    assert [todo["title"] for todo in bob.list_todos()["todos"]] == ["bob's"]
    assert bob.list_todos("?completed=true")["todos"] == []
    assert alice.list_todos()["todos"] == [mine, done]


def test_bulk_writes_never_touch_another_users_todos(alice: Api, bob: Api):
    open_ = alice.create_todo("alice open")
    done = alice.create_todo("alice done", completed=True)
    bob.create_todo("bob open")
    bob.create_todo("bob done", completed=True)
    toggled = bob.patch("/api/todos/", {"completed": True}).json()
    assert [todo["title"] for todo in toggled["todos"]] == ["bob open"]
    reopened = bob.patch("/api/todos/", {"completed": False}).json()
    assert [todo["title"] for todo in reopened["todos"]] == ["bob open", "bob done"]
    bob.patch("/api/todos/", {"completed": True})
    assert bob.delete("/api/todos/?completed=true").json()["deleted"] == 2
    assert alice.list_todos()["todos"] == [open_, done]
