"""docs/api.md "Accounts and sessions": sign-up, sign-in, sessions by token and cookie, throttling."""
from __future__ import annotations

import concurrent.futures
import hashlib
import time
import uuid

import requests

from tests.contract import PASSWORD, assert_error, credentials, set_cookie_attributes, sign_in, sign_up_with_cookie
from tests.support import Api, new_username, register

USERNAME_CHARACTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"


# -- sign up -------------------------------------------------------------------

def test_sign_up_answers_201_with_the_user_a_token_and_a_session_cookie(anonymous: Api):
    username = new_username()
    response = anonymous.post("/api/users/", credentials(username))
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"user", "token"} and set(body["user"]) == {"id", "username"}
    uuid.UUID(body["user"]["id"])
    assert body["user"]["username"] == username
    assert isinstance(body["token"], str) and len(body["token"]) >= 32
    cookie = set_cookie_attributes(response)
    assert cookie["value"] == body["token"]
    bearer = Api(anonymous.base_url, token=body["token"])
    assert bearer.get("/api/session/").json() == {"user": body["user"]}
    assert anonymous.get("/api/session/").json() == {"user": body["user"]}, "the cookie signs in too"


def test_usernames_of_3_to_64_allowed_characters_are_accepted_as_given(anonymous: Api):
    suffix = uuid.uuid4().hex[:6]
    for username in ("ab" + suffix[0], "..." + suffix, "-_-" + suffix, USERNAME_CHARACTERS[:58] + suffix):
        assert 3 <= len(username) <= 64
        response = anonymous.post("/api/users/", credentials(username))
        assert response.status_code == 201, (username, response.text)
        assert response.json()["user"]["username"] == username


def test_usernames_breaking_the_rules_are_422(anonymous: Api):
    for username in ("ab", "", "x" * 65, "with space", "at@sign", "é" * 5, "ｆｕｌｌ", "tab\tname", "new\nline",
                     "trailing\n", "slash/name", "quote'name", "emoji\U0001F600", "ǅungla", "K" + "\u212a" * 3):
        for path in ("/api/users/", "/api/session/"):
            assert_error(anonymous.post(path, credentials(username)), 422, names="username")


def test_a_taken_username_is_409_case_insensitively_and_stored_as_given(server, anonymous: Api):
    username = "Mixed_Case." + uuid.uuid4().hex[:8]
    first = anonymous.post("/api/users/", credentials(username)).json()
    for variant in (username, username.lower(), username.upper(), username.swapcase()):
        assert_error(anonymous.post("/api/users/", credentials(variant, "another password")), 409,
                     code="username_taken")
    signed_in = sign_in(server.base_url, username.upper())
    assert signed_in.status_code == 200
    assert signed_in.json()["user"] == first["user"], "matched case-insensitively, stored as given"
    bearer = Api(server.base_url, token=signed_in.json()["token"])
    assert bearer.get("/api/session/").json()["user"]["username"] == username


def test_passwords_of_8_to_1024_code_points_are_accepted(server, anonymous: Api):
    for password in ("12345678", "\U0001F600" * 8, "\U0001F600" * 1024, " " * 1024):
        username = new_username()
        created = anonymous.post("/api/users/", credentials(username, password))
        assert created.status_code == 201, (len(password), created.text)
        assert sign_in(server.base_url, username, password).status_code == 200


def test_passwords_outside_8_to_1024_code_points_are_422(anonymous: Api):
    for password in ("", "1234567", "x" * 1025, "\U0001F600" * 7, "\U0001F600" * 1025):
        assert_error(anonymous.post("/api/users/", credentials(new_username(), password)), 422, names="password")


def test_missing_and_unknown_fields_are_422_naming_them(anonymous: Api):
    for path in ("/api/users/", "/api/session/"):
        assert_error(anonymous.post(path, {"username": new_username()}), 422, names="password")
        assert_error(anonymous.post(path, {"password": PASSWORD}), 422, names="username")
        assert_error(anonymous.post(path, {**credentials(new_username()), "email": "x@example.com"}), 422,
                     names="email")


def test_every_password_character_is_significant(server):
    base = "p" * 1023 + "a"
    user = register(server.base_url, password=base)
    username = user.user["username"]
    for wrong in ("p" * 1023 + "b", "b" + base[1:], "p" * 1023, base[:-1] + "A", "p" * 512 + "q" + "p" * 510 + "a"):
        assert_error(sign_in(server.base_url, username, wrong), 401)
    assert sign_in(server.base_url, username, base).status_code == 200

    composed = register(server.base_url, password="caf\u00e9 latte")
    assert_error(sign_in(server.base_url, composed.user["username"], "cafe\u0301 latte"), 401)
    assert_error(sign_in(server.base_url, composed.user["username"], "caf\u00e9 latte "), 401)
    assert_error(sign_in(server.base_url, composed.user["username"], "CAF\u00c9 LATTE"), 401)
    assert sign_in(server.base_url, composed.user["username"], "caf\u00e9 latte").status_code == 200


def test_passwords_are_stored_only_as_slow_salted_hashes(server, sql):
    one = register(server.base_url, password="same password")
    two = register(server.base_url, password="same password")
    hashes = dict(sql("SELECT username, password_hash FROM users WHERE username IN (%s, %s)",
                      (one.user["username"], two.user["username"])))
    first, second = hashes[one.user["username"]], hashes[two.user["username"]]
    assert first != second, "salted"
    for stored in (first, second):
        assert "same password" not in stored
        method = stored.split("$", 1)[0]
        assert method.startswith(("scrypt:", "pbkdf2:", "argon2", "$2")), method
        if method.startswith("scrypt:"):
            assert int(method.split(":")[1]) >= 2 ** 14, "slow"
    # Sessions too: only a hash of the token is on disk.
    stored_tokens = [row[0].tobytes() for row in sql("SELECT token_hash FROM sessions")]
    assert one.token.encode() not in stored_tokens
    assert hashlib.sha256(one.token.encode()).digest() in stored_tokens


# -- sign in -------------------------------------------------------------------

def test_sign_in_answers_200_with_the_user_a_new_token_and_a_cookie(server):
    user = register(server.base_url)
    response = sign_in(server.base_url, user.user["username"])
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"user", "token"} and body["user"] == user.user
    assert body["token"] != user.token
    assert set_cookie_attributes(response)["value"] == body["token"]
    assert Api(server.base_url, token=body["token"]).get("/api/session/").status_code == 200
    assert user.get("/api/session/").status_code == 200, "the earlier session lives on"


def test_unknown_user_and_wrong_password_get_the_same_401(server):
    user = register(server.base_url)
    wrong_password = sign_in(server.base_url, user.user["username"], "wrong password")
    unknown_user = sign_in(server.base_url, new_username(), PASSWORD)
    assert_error(wrong_password, 401)
    assert_error(unknown_user, 401)
    assert wrong_password.json() == unknown_user.json()
    assert "set-cookie" not in {name.lower() for name in wrong_password.headers}


def test_the_session_says_who_is_signed_in(server, anonymous: Api):
    user = register(server.base_url)
    response = user.get("/api/session/")
    assert response.status_code == 200 and response.json() == {"user": user.user}
    assert_error(anonymous.get("/api/session/"), 401, code="unauthorized")
    assert_error(Api(server.base_url, token="nonsense").get("/api/session/"), 401)
    assert_error(Api(server.base_url, token=user.token + "x").get("/api/session/"), 401)


def test_the_bearer_scheme_is_case_insensitive(server):
    user = register(server.base_url)
    for scheme in ("Bearer", "bearer", "BEARER"):
        response = requests.get(server.base_url + "/api/session/", headers={"Authorization": f"{scheme} {user.token}"},
                                timeout=10)
        assert response.status_code == 200, scheme


# -- sign out ------------------------------------------------------------------

def test_signing_out_revokes_a_bearer_token_at_once(server):
    user = register(server.base_url)
    other_session = Api(server.base_url, token=sign_in(server.base_url, user.user["username"]).json()["token"])
    assert user.get("/api/todos/").status_code == 200          # resolved, and maybe cached
    response = user.delete("/api/session/")
    assert response.status_code == 204 and response.content == b""
    assert_error(user.get("/api/session/"), 401)
    assert_error(user.get("/api/todos/"), 401)
    assert_error(user.post("/api/todos/", {"title": "after sign-out"}), 401)
    assert_error(user.delete("/api/session/"), 401)
    assert other_session.get("/api/session/").status_code == 200, "only that token is revoked"


def test_signing_out_revokes_the_cookie_server_side_and_clears_it(server):
    browser = sign_up_with_cookie(server.base_url)
    token = browser.http.cookies["todopy_session"]
    assert browser.get("/api/todos/").status_code == 200
    response = browser.delete("/api/session/")
    assert response.status_code == 204
    cleared = set_cookie_attributes(response)
    assert cleared["value"] in ("", '""')
    assert cleared.get("max-age") == "0" or "1970" in cleared.get("expires", "")
    assert "todopy_session" not in browser.http.cookies
    replay = Api(server.base_url)
    replay.http.cookies.set("todopy_session", token)
    assert_error(replay.get("/api/session/"), 401)
    assert_error(replay.get("/api/todos/"), 401)
    assert_error(Api(server.base_url, token=token).get("/api/todos/"), 401, code="unauthorized")


def test_signing_out_without_a_session_is_401(anonymous: Api):
    assert_error(anonymous.delete("/api/session/"), 401)


def test_a_session_deleted_by_another_client_is_revoked_promptly(server, sql):
    user = register(server.base_url)
    assert user.get("/api/todos/").status_code == 200           # now in the server's token cache
    sql("DELETE FROM sessions WHERE token_hash = %s", (hashlib.sha256(user.token.encode()).digest(),))
    deadline = time.monotonic() + 2
    while user.get("/api/session/").status_code != 401:
        assert time.monotonic() < deadline, "a revoked token kept working"
        time.sleep(0.02)


# -- cookies -------------------------------------------------------------------

def test_the_session_cookie_is_httponly_samesite_lax_path_root_and_not_secure_over_http(server):
    response = sign_in(server.base_url, register(server.base_url).user["username"])
    cookie = set_cookie_attributes(response)
    assert "httponly" in cookie
    assert cookie["samesite"].lower() == "lax"
    assert cookie["path"] == "/"
    assert "secure" not in cookie
    assert "domain" not in cookie


def test_the_session_cookie_is_secure_over_https_behind_a_trusted_proxy(start_server):
    proxied = start_server(env={"TODOPY_PROXY_HOPS": "1"})
    https = {"X-Forwarded-Proto": "https"}
    signed_up = requests.post(proxied.base_url + "/api/users/", json=credentials(new_username()), headers=https,
                              timeout=30)
    assert signed_up.status_code == 201
    cookie = set_cookie_attributes(signed_up)
    assert "secure" in cookie and "httponly" in cookie and cookie["samesite"].lower() == "lax"
    username = signed_up.json()["user"]["username"]
    assert "secure" in set_cookie_attributes(sign_in(proxied.base_url, username, **https))
    token = signed_up.json()["token"]
    signed_out = requests.delete(proxied.base_url + "/api/session/", timeout=10,
                                 headers={**https, "Authorization": f"Bearer {token}"})
    assert signed_out.status_code == 204 and "secure" in set_cookie_attributes(signed_out)
    assert "secure" not in set_cookie_attributes(sign_in(proxied.base_url, username))


def test_forwarded_proto_is_ignored_without_a_trusted_proxy(server):
    username = register(server.base_url).user["username"]
    response = sign_in(server.base_url, username, **{"X-Forwarded-Proto": "https"})
    assert "secure" not in set_cookie_attributes(response)


# -- throttling ----------------------------------------------------------------

MAX_FAILURES = 10   # TODOPY_LOGIN_MAX_FAILURES' default (README), which the shared server runs with


def fail_until_throttled(base_url: str, username: str, limit: int = 11) -> int:
    """Wrong passwords until a 429; returns how many 401s came first."""
    for attempt in range(limit):
        response = sign_in(base_url, username, "wrong password")
        if response.status_code == 429:
            return attempt
        assert_error(response, 401)
    raise AssertionError(f"no 429 after {limit} failed sign-ins")


def assert_throttled(response: requests.Response, cooldown: int = 2) -> int:
    assert_error(response, 429, code="too_many_requests")
    retry_after = response.headers["Retry-After"]
    assert retry_after.isdigit() and 1 <= int(retry_after) <= cooldown, retry_after
    return int(retry_after)


def test_failed_sign_ins_are_throttled_even_for_the_right_password_then_cool_down(server):
    user = register(server.base_url)
    bystander = register(server.base_url)
    username = user.user["username"]
    failures = fail_until_throttled(server.base_url, username)
    assert failures == MAX_FAILURES, "TODOPY_LOGIN_MAX_FAILURES failures in a row, then 429"
    wait = assert_throttled(sign_in(server.base_url, username))
    assert_throttled(sign_in(server.base_url, username.upper()))
    assert user.get("/api/session/").status_code == 200, "existing sessions are not affected"
    assert sign_in(server.base_url, bystander.user["username"]).status_code == 200, "other usernames unaffected"
    time.sleep(wait)
    deadline = time.monotonic() + 3
    while (response := sign_in(server.base_url, username)).status_code == 429:
        assert time.monotonic() < deadline, "never cooled down"
        time.sleep(0.1)
    assert response.status_code == 200


def test_unknown_usernames_are_throttled_too(server):
    username = new_username("ghost")
    assert fail_until_throttled(server.base_url, username) == MAX_FAILURES
    assert_throttled(sign_in(server.base_url, username, PASSWORD))
    assert_throttled(sign_in(server.base_url, username.upper(), PASSWORD))
    other = new_username("ghost")
    assert_error(sign_in(server.base_url, other, PASSWORD), 401)


def test_failures_count_in_a_row_so_a_success_starts_over(server):
    user = register(server.base_url)
    username = user.user["username"]
    for _ in range(2):          # 12 failures: throttled by now, were it not for the success between
        for _ in range(6):
            assert_error(sign_in(server.base_url, username, "wrong password"), 401)
        assert sign_in(server.base_url, username).status_code == 200


def test_concurrent_failed_sign_ins_get_at_most_ten_tries(server):
    user = register(server.base_url)
    username = user.user["username"]
    with concurrent.futures.ThreadPoolExecutor(max_workers=30) as pool:
        statuses = list(pool.map(lambda _: sign_in(server.base_url, username, "wrong password").status_code,
                                 range(30)))
    assert set(statuses) <= {401, 429}, statuses
    assert statuses.count(401) <= 10, f"{statuses.count(401)} password guesses were checked"
    # Every attempt was counted before its (slow) password check, so the burst locked the name at once.
    assert statuses.count(429) >= 20
