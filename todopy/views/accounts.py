"""/api/users/ and /api/session/: sign up, sign in, who am I, sign out."""
from __future__ import annotations

from werkzeug.wrappers import Request

from todopy import validation
from todopy.errors import Unauthorized
from todopy.http import Reply, json_response, no_content, read_json_object
from todopy.middleware.sessions import clear_session, current_session, current_user, start_session
from todopy.representations import user_json
from todopy.views.base import Resource


def _credentials(request: Request) -> dict[str, str]:
    return validation.fields(read_json_object(request), validation.CREDENTIAL_FIELDS,
                             required={"username", "password"})


class Users(Resource):
    public = True

    def post(self, request: Request) -> Reply:
        body = _credentials(request)
        user, token = self.services.accounts.register(body["username"], body["password"], request.remote_addr or "")
        start_session(request.environ, token)
        return json_response({"user": user_json(user), "token": token}, 201)


class SessionResource(Resource):
    """/api/session/: sign in, who am I, sign out (the session dataclass is middleware.sessions.Session)."""

    public = True

    def post(self, request: Request) -> Reply:
        body = _credentials(request)
        user, token = self.services.accounts.sign_in(body["username"], body["password"], request.remote_addr or "")
        start_session(request.environ, token)
        return json_response({"user": user_json(user), "token": token})

    def get(self, request: Request) -> Reply:
        user = current_user(request.environ)
        if user is None:
            raise Unauthorized("not signed in")
        return json_response({"user": user_json(user)})

    def delete(self, request: Request) -> Reply:
        session = current_session(request.environ)
        if current_user(request.environ) is None or session.token is None:     # a user comes with a token
            raise Unauthorized("not signed in")
        self.services.accounts.sign_out(session.token)
        clear_session(request.environ)
        return no_content()
