"""Shared lists over REST: personal lists, client-chosen ids, members, and the role matrix."""
from __future__ import annotations

import uuid

import pytest

from tests.support import Api, new_list, register, share


# -- lists ---------------------------------------------------------------------------

def test_every_user_has_a_personal_list_behind_api_todos(alice: Api):
    (personal,) = alice.get("/api/lists/").json()["lists"]
    assert personal["personal"] is True and personal["title"] == "Todos" and personal["role"] == "owner"
    todo = alice.create_todo("in the personal list")
    listed = alice.get(f"/api/lists/{personal['id']}/todos/").json()
    assert listed["todos"] == [todo] and listed["rev"] == todo["rev"]
    assert alice.get(f"/api/lists/{personal['id']}/").json()["rev"] == todo["rev"]


def test_create_a_list_and_read_it(alice: Api):
    response = alice.post("/api/lists/", {"title": "  Groceries  "})
    assert response.status_code == 201
    created = response.json()
    assert created["title"] == "Groceries" and created["role"] == "owner" and created["personal"] is False
    assert response.headers["Location"] == f"/api/lists/{created['id']}/"
    got = alice.get(f"/api/lists/{created['id']}/")
    assert got.json() == created and got.headers["ETag"] == f'"{created["rev"]}"'
    assert [lst["id"] for lst in alice.get("/api/lists/").json()["lists"]][1:] == [created["id"]]
    todo = alice.post(f"/api/lists/{created['id']}/todos/", {"title": "milk"})
    assert todo.status_code == 201
    assert todo.headers["Location"] == f"/api/lists/{created['id']}/todos/{todo.json()['id']}/"
    assert alice.list_todos()["todos"] == []          # not in the personal list


def test_a_client_chosen_id_makes_creation_safe_to_retry(alice: Api, bob: Api):
    list_id = str(uuid.uuid4())
    first = alice.post("/api/lists/", {"title": "Trip", "id": list_id})
    again = alice.post("/api/lists/", {"title": "Trip (retried)", "id": list_id})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == list_id and again.json() == first.json()
    assert len(alice.get("/api/lists/").json()["lists"]) == 2
    taken = bob.post("/api/lists/", {"title": "Mine", "id": list_id})
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "id_taken"

    todo_id = str(uuid.uuid4())
    created = alice.post("/api/todos/", {"title": "once", "id": todo_id})
    retried = alice.post("/api/todos/", {"title": "once", "id": todo_id})
    assert (created.status_code, retried.status_code) == (201, 200)
    assert retried.json() == created.json() and len(alice.list_todos()["todos"]) == 1
    elsewhere = alice.post(f"/api/lists/{list_id}/todos/", {"title": "same id, other list", "id": todo_id})
    assert elsewhere.status_code == 409 and elsewhere.json()["error"]["code"] == "id_taken"
    by_bob = bob.post("/api/todos/", {"title": "bob's", "id": todo_id})
    assert by_bob.status_code == 409 and by_bob.json()["error"]["code"] == "id_taken"
    assert alice.get(f"/api/lists/{list_id}/todos/").json()["todos"] == []


@pytest.mark.parametrize("bad", ["not-a-uuid", 7, None, ""])
def test_a_client_chosen_id_must_be_a_uuid(alice: Api, bad):
    for path in ("/api/todos/", "/api/lists/"):
        response = alice.post(path, {"title": "x", "id": bad})
        assert response.status_code == 422 and "id" in response.json()["error"]["message"]


def test_renaming_takes_a_rev_and_if_match_guards_it(alice: Api):
    lst = new_list(alice)
    renamed = alice.patch(f"/api/lists/{lst['id']}/", {"title": "Food"}, headers={"If-Match": f'"{lst["rev"]}"'})
    assert renamed.status_code == 200
    assert renamed.json()["title"] == "Food" and renamed.json()["rev"] == lst["rev"] + 1
    stale = alice.patch(f"/api/lists/{lst['id']}/", {"title": "Drinks"}, headers={"If-Match": f'"{lst["rev"]}"'})
    assert stale.status_code == 412 and f"has changed since rev {lst['rev']}" in stale.json()["error"]["message"]
    assert alice.get(f"/api/lists/{lst['id']}/").json()["title"] == "Food"
    # Sent back whole, the read-only fields are ignored.
    whole = {**renamed.json(), "title": "Drinks", "role": "viewer", "personal": True}
    assert alice.patch(f"/api/lists/{lst['id']}/", whole).json()["role"] == "owner"


def test_deleting_a_list_deletes_its_todos_and_the_personal_list_stays(alice: Api):
    lst = new_list(alice)
    alice.post(f"/api/lists/{lst['id']}/todos/", {"title": "gone with it"})
    assert alice.delete(f"/api/lists/{lst['id']}/").status_code == 204
    assert alice.get(f"/api/lists/{lst['id']}/").status_code == 404
    assert alice.get(f"/api/lists/{lst['id']}/todos/").status_code == 404
    personal = alice.get("/api/lists/").json()["lists"][0]
    refused = alice.delete(f"/api/lists/{personal['id']}/")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "owner_stays"


# -- members -------------------------------------------------------------------------

def test_members_are_added_changed_listed_and_removed(alice: Api, bob: Api, server):
    carol = register(server.base_url)
    lst = new_list(alice)
    path = f"/api/lists/{lst['id']}/members/"
    added = alice.put(f"{path}{bob.user['username'].upper()}/", {"role": "viewer"})
    assert added.status_code == 201 and added.json() == {"user": bob.user, "role": "viewer"}
    changed = alice.put(f"{path}{bob.user['username']}/", {"role": "editor"})
    assert changed.status_code == 200 and changed.json()["role"] == "editor"
    assert alice.put(f"{path}{bob.user['username']}/", {"role": "editor"}).status_code == 200
    share(alice, lst["id"], carol, "viewer")
    members = alice.get(path).json()["members"]
    assert members[0] == {"user": alice.user, "role": "owner"}
    assert sorted((m["user"]["id"], m["role"]) for m in members[1:]) == sorted(
        [(bob.user["id"], "editor"), (carol.user["id"], "viewer")])
    assert bob.get("/api/lists/").json()["lists"][1]["role"] == "editor"

    assert alice.put(f"{path}nobody_here/", {"role": "viewer"}).status_code == 404
    owner_role = alice.put(f"{path}{alice.user['username']}/", {"role": "viewer"})
    assert owner_role.status_code == 409 and owner_role.json()["error"]["code"] == "owner_stays"
    assert alice.put(f"{path}{bob.user['username']}/", {"role": "owner"}).status_code == 422
    leave = alice.delete(f"{path}{alice.user['username']}/")
    assert leave.status_code == 409 and leave.json()["error"]["code"] == "owner_stays"

    assert carol.delete(f"{path}{carol.user['username']}/").status_code == 204      # leaves
    assert carol.get(f"/api/lists/{lst['id']}/").status_code == 404
    assert alice.delete(f"{path}{bob.user['username']}/").status_code == 204       # removed
    assert bob.get(f"/api/lists/{lst['id']}/todos/").status_code == 404
    assert alice.delete(f"{path}{bob.user['username']}/").status_code == 404       # not a member any more
    assert [m["role"] for m in alice.get(path).json()["members"]] == ["owner"]


# -- the role matrix ------------------------------------------------------------------

ROUTES = [
    # (method, path template, body, {role: expected status})
    ("GET", "/api/lists/{lid}/", None, {"owner": 200, "editor": 200, "viewer": 200}),
    ("PATCH", "/api/lists/{lid}/", {"title": "renamed"}, {"owner": 200, "editor": 200, "viewer": 403}),
    ("GET", "/api/lists/{lid}/members/", None, {"owner": 200, "editor": 200, "viewer": 200}),
    ("PUT", "/api/lists/{lid}/members/{newcomer}/", {"role": "viewer"}, {"owner": 201, "editor": 403, "viewer": 403}),
    ("DELETE", "/api/lists/{lid}/members/{other}/", None, {"owner": 204, "editor": 403, "viewer": 403}),
    ("GET", "/api/lists/{lid}/todos/", None, {"owner": 200, "editor": 200, "viewer": 200}),
    ("POST", "/api/lists/{lid}/todos/", {"title": "new"}, {"owner": 201, "editor": 201, "viewer": 403}),
    ("PATCH", "/api/lists/{lid}/todos/", {"completed": True}, {"owner": 200, "editor": 200, "viewer": 403}),
    ("DELETE", "/api/lists/{lid}/todos/?completed=true", None, {"owner": 200, "editor": 200, "viewer": 403}),
    ("GET", "/api/lists/{lid}/todos/{tid}/", None, {"owner": 200, "editor": 200, "viewer": 200}),
    ("PUT", "/api/lists/{lid}/todos/{tid}/", {"title": "t", "completed": True},
     {"owner": 200, "editor": 200, "viewer": 403}),
    ("PATCH", "/api/lists/{lid}/todos/{tid}/", {"title": "patched"}, {"owner": 200, "editor": 200, "viewer": 403}),
    ("DELETE", "/api/lists/{lid}/todos/{tid}/", None, {"owner": 204, "editor": 204, "viewer": 403}),
    ("DELETE", "/api/lists/{lid}/", None, {"owner": 204, "editor": 403, "viewer": 403}),
]


@pytest.fixture
def people(server, alice: Api) -> dict[str, Api]:
    """The owner (alice), an editor, a viewer, a stranger, a member to remove and a newcomer."""
    return {"owner": alice, **{name: register(server.base_url)
                               for name in ("editor", "viewer", "stranger", "other", "newcomer")}}


def shared_list(people: dict[str, Api]) -> dict:
    lst = new_list(people["owner"], "Shared")
    for name, role in (("editor", "editor"), ("viewer", "viewer"), ("other", "viewer")):
        share(people["owner"], lst["id"], people[name], role)
    return lst


def state(owner: Api, list_id: str) -> tuple:
    """Everything a refused request must leave unchanged."""
    return (owner.get(f"/api/lists/{list_id}/").json(), owner.get(f"/api/lists/{list_id}/members/").json(),
            owner.get(f"/api/lists/{list_id}/todos/").json())


@pytest.mark.parametrize("role", ["owner", "editor", "viewer", "stranger"])
def test_role_matrix(people, role):
    """Every list route and verb, as each role: the contract's status, and nothing changed on refusal."""
    owner = people["owner"]
    for method, template, body, expected in ROUTES:
        lst = shared_list(people)
        todo = owner.post(f"/api/lists/{lst['id']}/todos/", {"title": "t"}).json()
        owner.patch(f"/api/lists/{lst['id']}/todos/{todo['id']}/", {"completed": True})
        path = template.format(lid=lst["id"], tid=todo["id"], newcomer=people["newcomer"].user["username"],
                               other=people["other"].user["username"])
        before = state(owner, lst["id"])
        response = people[role].request(method, path, json_body=body)
        want = expected.get(role, 404)
        assert response.status_code == want, (method, path, response.text)
        if want >= 400:
            assert response.json()["error"]["code"] == {403: "forbidden", 404: "not_found"}[want]
            assert state(owner, lst["id"]) == before, f"a refused {method} {template} changed something"


def test_a_stranger_gets_404_for_lists_that_never_existed_too(alice: Api):
    ghost = uuid.uuid4()
    for path in (f"/api/lists/{ghost}/", f"/api/lists/{ghost}/todos/", f"/api/lists/{ghost}/members/",
                 f"/api/lists/{ghost}/todos/{uuid.uuid4()}/"):
        assert alice.get(path).status_code == 404, path


def test_precedence_404_before_403_and_405_before_403(people):
    lst = shared_list(people)
    viewer = people["viewer"]
    missing = viewer.patch(f"/api/lists/{lst['id']}/todos/{uuid.uuid4()}/", {"title": "x"})
    assert missing.status_code == 404
    assert viewer.post(f"/api/lists/{lst['id']}/", {"title": "x"}).status_code == 405
    # 403 before the body's 415/400/422.
    bad_body = viewer.request("POST", f"/api/lists/{lst['id']}/todos/", data=b"not json",
                              headers={"Content-Type": "text/plain"})
    assert bad_body.status_code == 403
    unknown = viewer.put(f"/api/lists/{lst['id']}/members/nobody_here/", {"role": "viewer"})
    assert unknown.status_code == 404


# -- limits -----------------------------------------------------------------------------

def test_a_full_list_refuses_more_todos_and_writes_nothing(alice: Api, sql):
    from todopy.writes import MAX_TODOS_PER_LIST
    sql("INSERT INTO todos (list_id, title) SELECT personal_list(%s), 't' FROM generate_series(1, %s)",
        (alice.user["id"], MAX_TODOS_PER_LIST - 1))
    assert alice.post("/api/todos/", {"title": "the last one"}).status_code == 201
    rev = alice.list_todos()["rev"]
    refused = alice.post("/api/todos/", {"title": "one too many"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "limit_reached"
    assert str(MAX_TODOS_PER_LIST) in refused.json()["error"]["message"]
    after = alice.list_todos()
    assert after["rev"] == rev and len(after["todos"]) == MAX_TODOS_PER_LIST


def test_a_user_in_too_many_lists_cannot_create_more(alice: Api, sql):
    from todopy.views.lists import MAX_LISTS_PER_USER
    sql("INSERT INTO lists (owner, title) SELECT %s, 'l' || n FROM generate_series(1, %s) n",
        (alice.user["id"], MAX_LISTS_PER_USER - 1))
    refused = alice.post("/api/lists/", {"title": "one too many"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "limit_reached"
    assert len(alice.get("/api/lists/").json()["lists"]) == MAX_LISTS_PER_USER


def test_a_full_list_refuses_more_members(alice: Api, server, sql):
    from todopy.views.lists import MAX_MEMBERS_PER_LIST
    lst = new_list(alice)
    sql("WITH made AS (INSERT INTO users (username, password_hash) SELECT 'm' || n || %s, 'x'"
        " FROM generate_series(1, %s) n RETURNING id)"
        " INSERT INTO memberships (list_id, user_id, role) SELECT %s, id, 'viewer' FROM made",
        (uuid.uuid4().hex[:8], MAX_MEMBERS_PER_LIST - 1, lst["id"]))
    newcomer = register(server.base_url)
    refused = alice.put(f"/api/lists/{lst['id']}/members/{newcomer.user['username']}/", {"role": "viewer"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "limit_reached"
    assert len(alice.get(f"/api/lists/{lst['id']}/members/").json()["members"]) == MAX_MEMBERS_PER_LIST
