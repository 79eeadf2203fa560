"""Hostile input never yields a 500, and what is accepted round-trips exactly."""
from __future__ import annotations

import json
import re

from tests.contract import assert_error, send_raw, sign_up_with_cookie
from tests.support import PASSWORD, Api, new_username

SQL_INJECTIONS = [
    "'; DROP TABLE todos; --", "' OR '1'='1", "\" OR \"\"=\"", "1; SELECT pg_sleep(10)", "$$; SELECT 1; $$",
    "%(owner)s", "%s %s %s", "%%", "{owner}", "\\", "\\'", "'); DELETE FROM users; --", "E'\\x00'",
    "admin'--", "\\N", "NULL",
]
UNICODE_TITLES = [
    "שלום עולם", "مرحبا بالعالم", "\u202eevil\u202c", "e\u0301 a\u0308 n\u0303", "Z\u0351\u0352\u0353\u0354o",
    "\U0001F468\u200D\U0001F469\u200D\U0001F467\u200D\U0001F466 family", "\U0001F3F3\uFE0F\u200D\U0001F308",
    "日本語のタイトル", "\U0001D54F\U0001D560\U0001D568", "\u00ad\u200b\u2060", "tab\tinside", "new\nline inside",
]


def test_sql_injection_titles_round_trip_exactly(alice: Api, bob: Api):
    bob_todo = bob.create_todo("bob's")
    created = [alice.create_todo(title) for title in SQL_INJECTIONS]
    assert [todo["title"] for todo in created] == SQL_INJECTIONS
    assert alice.list_todos()["todos"] == created
    for todo in created:
        assert alice.get(f"/api/todos/{todo['id']}/").json() == todo
        patched = alice.patch(f"/api/todos/{todo['id']}/", {"title": todo["title"] + " '--"}).json()
        assert patched["title"] == todo["title"] + " '--"
    assert bob.list_todos()["todos"] == [bob_todo]


def test_sql_injection_credentials_are_refused_or_round_trip(server, anonymous: Api):
    for name in SQL_INJECTIONS + ["x' OR 1=1 --", "a b c", "a;b"]:
        for path in ("/api/users/", "/api/session/"):
            response = anonymous.post(path, {"username": name, "password": PASSWORD})
            if re.fullmatch(r"[A-Za-z0-9_.-]{3,64}", name):     # "NULL" is a fine name
                assert response.status_code in (200, 201) and response.json()["user"]["username"] == name
            else:
                assert_error(response, 422, names="username")
    username = new_username()
    for password in ("' OR '1'='1", "'); DROP TABLE users; --", "%(password)s"):
        created = anonymous.post("/api/users/", {"username": username + str(len(password)), "password": password})
        assert created.status_code == 201, created.text
        signed_in = anonymous.post("/api/session/", {"username": username + str(len(password)),
                                                     "password": password})
        assert signed_in.status_code == 200
        wrong = anonymous.post("/api/session/", {"username": username + str(len(password)), "password": "' OR 1=1 --"})
        assert_error(wrong, 401)


def test_unicode_titles_round_trip_exactly_as_escapes_and_as_raw_utf8(alice: Api):
    for title in UNICODE_TITLES:
        escaped = alice.post("/api/todos/", {"title": title}).json()
        raw = send_raw(alice, "POST", "/api/todos/", json.dumps({"title": title}, ensure_ascii=False).encode())
        assert raw.status_code == 201
        assert escaped["title"] == raw.json()["title"] == title.strip()
    titles = [todo["title"] for todo in alice.list_todos()["todos"]]
    assert titles == [title.strip() for title in UNICODE_TITLES for _ in (1, 2)]
    listing = alice.get("/api/todos/")
    assert listing.headers["Content-Type"] == "application/json; charset=utf-8"
    assert "שלום עולם".encode() in listing.content, "served as UTF-8"


def test_surrogate_pairs_decode_to_one_code_point(alice: Api):
    response = send_raw(alice, "POST", "/api/todos/", b'{"title": "\\ud83d\\ude00"}')
    assert response.status_code == 201 and response.json()["title"] == "\U0001F600"


def test_nul_characters_are_422(alice: Api, anonymous: Api):
    todo = alice.create_todo("unchanged")
    for body in (b'{"title": "a\\u0000b"}', b'{"title": "\\u0000"}'):
        assert_error(send_raw(alice, "POST", "/api/todos/", body), 422, names="title")
        assert_error(send_raw(alice, "PATCH", f"/api/todos/{todo['id']}/", body), 422, names="title")
    for field, credentials in (("username", {"username": "ab\x00cd", "password": PASSWORD}),
                               ("password", {"username": "nul_user", "password": "correct\x00horse"})):
        for path in ("/api/users/", "/api/session/"):
            assert_error(anonymous.post(path, credentials), 422, names=field)
    # A raw control character inside a JSON string is not JSON at all.
    assert_error(send_raw(alice, "POST", "/api/todos/", b'{"title": "a\x00b"}'), 400)
    assert alice.list_todos()["todos"] == [todo]


def test_lone_surrogates_are_422(alice: Api, anonymous: Api):
    todo = alice.create_todo("unchanged")
    for escape in (b"\\ud800", b"\\udfff", b"x\\ud83d", b"\\ude00\\ud83d"):
        body = b'{"title": "' + escape + b'"}'
        assert_error(send_raw(alice, "POST", "/api/todos/", body), 422, names="title")
        assert_error(send_raw(alice, "PUT", f"/api/todos/{todo['id']}/", body[:-1] + b', "completed": true}'), 422,
                     names="title")
    assert_error(send_raw(anonymous, "POST", "/api/users/", b'{"username": "abc\\ud800", "password": "12345678"}'),
                 422, names="username")
    assert_error(send_raw(anonymous, "POST", "/api/users/", b'{"username": "abcdef", "password": "1234567\\ud800"}'),
                 422, names="password")
    assert_error(send_raw(alice, "POST", "/api/todos/", b'{"title": "x", "\\ud800": 1}'), 422)
    assert alice.list_todos()["todos"] == [todo]


def test_odd_numbers_are_422_and_non_json_literals_400(alice: Api):
    for number in (b"1e400", b"-1e400", b"1e-400", b"0", b"1.0", b"9" * 4000, b"-" + b"9" * 5000, b"9" * 20000):
        for body in (b'{"title": "x", "completed": ' + number + b"}", b'{"title": ' + number + b"}"):
            assert_error(send_raw(alice, "POST", "/api/todos/", body), 422)
    for literal in (b"NaN", b"Infinity", b"-Infinity", b"nan", b"undefined", b"True", b"0x10", b"+1", b".5", b"01"):
        assert_error(send_raw(alice, "POST", "/api/todos/", b'{"title": "x", "completed": ' + literal + b"}"), 400)
    assert alice.list_todos()["todos"] == []


def test_deeply_nested_json_is_refused_cleanly(alice: Api):
    hundred_thousand = b'{"title": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert_error(send_raw(alice, "POST", "/api/todos/", hundred_thousand), 413)
    within_limit = b'{"title": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    assert_error(send_raw(alice, "POST", "/api/todos/", within_limit), 400)
    objects = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
    assert_error(send_raw(alice, "POST", "/api/todos/", objects), 400)
    assert alice.list_todos()["todos"] == []


def test_ten_thousand_character_titles_are_422(alice: Api):
    for title in ("x" * 10_000, "\U0001F600" * 10_000, " " * 10_000 + "x"):
        response = send_raw(alice, "POST", "/api/todos/", json.dumps({"title": title}, ensure_ascii=False).encode())
        if title.strip() == "x":
            assert response.status_code == 201 and response.json()["title"] == "x"
        else:
            assert_error(response, 422, names="title")


def test_wrong_json_types_instead_of_objects_and_fields(alice: Api, anonymous: Api):
    todo = alice.create_todo("unchanged")
    not_text = [[], ["x"], 1, 1.5, 0, True, False, None, {"nested": "object"}]
    for value in not_text:
        assert_error(alice.post("/api/todos/", {"title": value}), 422, names="title")
        assert_error(anonymous.post("/api/users/", {"username": value, "password": PASSWORD}), 422,
                     names="username")
        assert_error(anonymous.post("/api/session/", {"username": "someone", "password": value}), 422,
                     names="password")
    for value in [[], [True], "x", "true", "false", 1, 0, 1.0, None, {"value": True}]:
        assert_error(alice.patch(f"/api/todos/{todo['id']}/", {"completed": value}), 422, names="completed")
        assert_error(alice.patch("/api/todos/", {"completed": value}), 422, names="completed")
    assert alice.list_todos()["todos"] == [todo]


def test_invalid_utf8_is_400(alice: Api, anonymous: Api):
    for garbage in (b"\xff\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\x80"):
        assert_error(send_raw(alice, "POST", "/api/todos/", b'{"title": "' + garbage + b'"}'), 400)
        assert_error(send_raw(anonymous, "POST", "/api/users/",
                              b'{"username": "abc", "password": "' + garbage * 8 + b'"}'), 400)
    utf16 = json.dumps({"title": "utf-16"}).encode("utf-16")
    assert_error(send_raw(alice, "POST", "/api/todos/", utf16), 400)
    assert alice.list_todos()["todos"] == []


def test_hostile_credentials_in_headers_are_401(server):
    junk = ["' OR 1=1 --", "x" * 8000, "\\u0000", "Bearer", "%00", "a b c"]
    for token in junk:
        bearer = Api(server.base_url, token=token)
        assert_error(bearer.get("/api/todos/"), 401)
        cookie = Api(server.base_url)
        assert_error(cookie.get("/api/todos/", headers={"Cookie": f"todopy_session={token[:4000]}"}), 401)
    for authorization in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Token abc", "bearer"):
        assert_error(Api(server.base_url).get("/api/session/", headers={"Authorization": authorization}), 401)


def test_a_session_cookie_survives_junk_cookies_of_other_apps_on_the_same_host(server):
    browser = sign_up_with_cookie(server.base_url)
    token = browser.http.cookies["todopy_session"]
    for others in ('prefs={"theme":"dark"}', 'a=b c', 'x="unterminated', 'a=b;;', "empty=", "=novalue",
                   "weird=\\", "todopy_session=; other=1"):
        for cookie in (f"{others}; todopy_session={token}", f"todopy_session={token}; {others}"):
            if others.startswith("todopy_session=") and cookie.startswith("todopy_session"):
                continue
            response = Api(server.base_url).get("/api/session/", headers={"Cookie": cookie})
            assert response.status_code == 200, (cookie, response.text)
            assert response.json()["user"] == browser.user


def test_hostile_paths_and_queries_are_4xx(alice: Api):
    for path in ("/api/todos/%ff/", "/api/todos/..%2f..%2fusers/", "/api/todos/?completed=%ff",
                 "/api/%2e%2e/users/", "/api/todos/\u00e9/"):
        response = alice.get(path)
        assert 400 <= response.status_code < 500, (path, response.status_code)
        assert_error(response, response.status_code)
