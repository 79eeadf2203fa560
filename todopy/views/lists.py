"""/api/lists/...: the user's lists, one list, its members; REST and the lists stream."""
from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request

from todopy import access, validation, writes
from todopy.access import ListAccess
from todopy.conditional import etag, if_match_revs, missed
from todopy.db import Row
from todopy.errors import Conflict, HTTPError, NotFound
from todopy.http import Reply, json_response, no_content, read_json_object
from todopy.views.base import signed_in, writer_of
from todopy.representations import list_json, member_json
from todopy.sqlfiles import queries
from todopy.views import creating, streaming
from todopy.views.base import Resource

LISTS_SQL = queries("lists")
IDS_SQL = queries("ids")
# Lists a user may belong to (their own and those shared with them) and members a list
# may have: far above what a person juggles, low enough that a lists stream's re-read
# and a members page stay one small query each.
MAX_LISTS_PER_USER = 100
MAX_MEMBERS_PER_LIST = 50
COLLECTION = "/api/lists/"
OWNER_STAYS = "the owner stays with their list: it cannot be left, nor its owner's role changed"


class Lists(Resource):
    """The lists the user is a member of; create one; stream them."""

    def get(self, request: Request) -> Reply:
        user = signed_in(request)
        rows = self.services.pool.query_all(LISTS_SQL["of_user"], {"user": user.id})
        return json_response({"lists": [list_json(row) for row in rows]})

    def post(self, request: Request) -> Reply:
        user = signed_in(request)
        body = validation.fields(read_json_object(request), validation.NEW_LIST_FIELDS, required={"title"})
        params = {"user": user.id, "id": body.get("id"), "title": body["title"], "max_lists": MAX_LISTS_PER_USER}

        def create() -> Row | None:
            with writes.transaction(self.services.pool, writer_of(request)) as cur:
                cur.execute(LISTS_SQL["lock_user"], params)
                cur.execute(LISTS_SQL["create"], params)
                return cur.fetchone()

        row = creating.attempt(create)
        if row is not None:
            self.services.budget.spend(user.id, 1)
            return creating.created(list_json(row), COLLECTION)
        if params["id"] is not None:
            found = self.services.pool.query_one(LISTS_SQL["find"], params)
            if found is not None or self.services.pool.query_one(IDS_SQL["retired"], params) is not None:
                return creating.existing(found, list_json, COLLECTION)
        # Nothing has the id (or none was chosen): the user's lists are at the limit.
        raise Conflict(f"you are a member of the most lists one may have ({MAX_LISTS_PER_USER}); "
                       "delete or leave some first", code="limit_reached")

    def websocket(self, request: Request) -> None:
        opener = streaming.opener(request)
        self.services.streams.lists_stream(streaming.accept(request, self.services.streams), opener)


class OneList(Resource):
    """One list: read, rename (editors), delete (its owner)."""

    in_list = True

    def role_for(self, verb: str, grant: ListAccess, values: dict[str, Any]) -> str:
        return {"get": access.VIEWER, "patch": access.EDITOR}.get(verb, access.OWNER)

    def get(self, request: Request, grant: ListAccess) -> Reply:
        seen = access.read_list_as_seen(self.services.pool, grant)
        return json_response(seen, headers=[etag(seen["rev"])])

    def patch(self, request: Request, grant: ListAccess) -> Reply:
        body = validation.fields(read_json_object(request), validation.LIST_FIELDS, required={"title"},
                                 ignored=validation.READ_ONLY_LIST_FIELDS)
        key = {"list": grant.list_id, "if_revs": if_match_revs(request)}
        rows = writes.write(self.services.pool, grant.writer, LISTS_SQL["rename"],
                            {**key, "title": body["title"], "role": grant.role}, LISTS_SQL["renamed"])
        if not rows:
            raise self._missed(key)
        self.services.budget.spend(grant.user.id, 1)
        renamed = list_json(rows[0])
        return json_response(renamed, headers=[etag(renamed["rev"])])

    def delete(self, request: Request, grant: ListAccess) -> Reply:
        seen = access.read_list_as_seen(self.services.pool, grant)
        if seen["personal"]:
            raise Conflict("a personal list cannot be deleted; " + OWNER_STAYS, code="owner_stays")
        key = {"list": grant.list_id, "if_revs": if_match_revs(request)}
        if not writes.write(self.services.pool, grant.writer, LISTS_SQL["delete"], key):
            raise self._missed(key)
        self.services.budget.spend(grant.user.id, 1)
        return no_content()

    def _missed(self, key: dict[str, Any]) -> HTTPError:
        """A conditional write on the list matched no row: 404 if the list is gone, else 412."""
        row = self.services.pool.query_one(LISTS_SQL["rev"], key)
        return missed("list", access.NO_SUCH_LIST, key["if_revs"], None if row is None else row.rev)


class Members(Resource):
    """Who is in a list, owner first."""

    in_list = True

    def get(self, request: Request, grant: ListAccess) -> Reply:
        rows = self.services.pool.query_all(LISTS_SQL["members"], {"list": grant.list_id})
        return json_response({"members": [member_json(row, row.role) for row in rows]})


class Member(Resource):
    """One member: the owner adds people and sets their role; the owner removes them, or they leave."""

    in_list = True
    missing = "no such member"

    def role_for(self, verb: str, grant: ListAccess, values: dict[str, Any]) -> str:
        if verb == "delete" and values["username"].lower() == grant.user.username.lower():
            return access.VIEWER            # anyone may leave
        return access.OWNER

    def exists(self, verb: str, grant: ListAccess, values: dict[str, Any]) -> bool:
        user = self._user(values["username"])
        if user is None:
            return False
        if verb == "put":
            return True             # adding someone: the user exists, that is enough
        key = {"list": grant.list_id, "user": user.id}
        return self.services.pool.query_one(LISTS_SQL["member_role"], key) is not None

    def put(self, request: Request, grant: ListAccess, username: str) -> Reply:
        user = self._existing_user(username)
        body = validation.fields(read_json_object(request), validation.MEMBER_FIELDS, required={"role"})
        params = {"list": grant.list_id, "user": user.id, "role": body["role"]}
        # One transaction: the list's row, then the user's, locked before counting, so
        # concurrent adds count each other (docs/design.md, "Invariants").
        with writes.transaction(self.services.pool, grant.writer) as cur:
            cur.execute(LISTS_SQL["lock_list"], params)
            if cur.fetchone() is None:
                raise NotFound(access.NO_SUCH_LIST)
            cur.execute(LISTS_SQL["lock_user"], params)
            if cur.fetchone() is None:
                raise NotFound("no such user")        # the account was deleted meanwhile
            cur.execute(LISTS_SQL["member_counts"], params)
            counts = cur.fetchone()
            assert counts is not None
            if counts.role == access.OWNER:
                raise Conflict(OWNER_STAYS, code="owner_stays")
            if counts.role is None and counts.members >= MAX_MEMBERS_PER_LIST:
                raise Conflict(f"this list has the most members a list may have ({MAX_MEMBERS_PER_LIST})",
                               code="limit_reached")
            if counts.role is None and counts.lists >= MAX_LISTS_PER_USER:
                raise Conflict(f"{user.username} is a member of the most lists one may have "
                               f"({MAX_LISTS_PER_USER}); they may leave one first", code="limit_reached")
            cur.execute(LISTS_SQL["put_member"], params)
            row = cur.fetchone()
        if row is None:
            return json_response(member_json(user, body["role"]), 200)     # already that role
        self.services.budget.spend(grant.user.id, 1)
        return json_response(member_json(user, body["role"]), 201 if row.added else 200)

    def delete(self, request: Request, grant: ListAccess, username: str) -> Reply:
        user = self._existing_user(username)
        key = {"list": grant.list_id, "user": user.id}
        if not writes.write(self.services.pool, grant.writer, LISTS_SQL["remove_member"], key):
            if self.services.pool.query_one(LISTS_SQL["member_role"], key) is None:
                raise NotFound(self.missing)
            raise Conflict(OWNER_STAYS, code="owner_stays")
        self.services.budget.spend(grant.user.id, 1)
        return no_content()

    def _user(self, username: str) -> Row | None:
        """The user (id, username) of this name, or None."""
        if not validation.USERNAME.fullmatch(username):
            return None
        return self.services.pool.query_one(LISTS_SQL["user_by_name"], {"username": username})

    def _existing_user(self, username: str) -> Row:
        user = self._user(username)
        if user is None:
            raise NotFound("no such user")
        return user
