"""Two tabs, two users, lost access and small screens (issue 20 item 3, issue 22's defects).

The outbox shared by a user's tabs (one sender at a time, one Idempotency-Key per
write), writes the server refused kept and offered back, role changes said and
edits kept, notices that pile up, what screen readers hear, a phone and dark mode.
"""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Route, expect

from tests.browser import CHROMIUM, CHROMIUM_ARGS, axe_violations, browser, serious, slow_fetch, tabs  # noqa: F401
from tests.support import Api, register

LIST = "/api/todos/"
SHOTS = Path("/tmp/shots")


def titles(api: Api, path: str = LIST) -> list[str]:
    return [todo["title"] for todo in api.get(path).json()["todos"]]


def by_title(api: Api, path: str = LIST) -> dict[str, dict]:
    return {todo["title"]: todo for todo in api.get(path).json()["todos"]}


def shared_list(owner: Api, guest: Api, title: str, role: str = "editor") -> dict:
    made = owner.post("/api/lists/", {"title": title}).json()
    assert owner.put(f"/api/lists/{made['id']}/members/{guest.user['username']}/", {"role": role}).status_code == 201
    return made


def open_list(tab, title: str) -> None:
    tab.page.get_by_role("navigation", name="Your lists").get_by_role("link", name=title, exact=True).click()
    expect(tab.page.locator(".list-bar .list-title")).to_have_text(title)
    expect(tab.status).to_have_attribute("data-status", "live")


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


# -- issue 20, item 3: one outbox, two tabs ----------------------------------------------------


@pytest.mark.parametrize("lock", ["web-locks", "lease"])
def test_two_tabs_send_each_queued_write_once_and_a_later_completion_survives(server, tabs, alice, lock):
    """Tab A's answers are lost for a while (its writes land, it hears 503); the user completes
    X and clears completed in A; tab B, opened meanwhile, sends; the user completes Y in B; when
    A's answers come back, nothing A queued is sent after Y's completion: Y survives. With the
    Web Locks API, and with the localStorage lease a browser without it gets."""
    alice.create_todo("X")
    alice.create_todo("Y")
    a = tabs(server, alice)
    if lock == "lease":
        a.context.add_init_script("Object.defineProperty(Navigator.prototype, 'locks', {get: () => undefined})")
    page_a = a.open()
    expect(a.labels).to_have_text(["X", "Y"])
    sent: list[tuple[str, str, str | None]] = []        # (method, path, Idempotency-Key), from both tabs
    a.context.on("request", lambda r: r.method in ("PATCH", "DELETE") and sent.append(
        (r.method, urlsplit(r.url).path + ("?" + urlsplit(r.url).query if urlsplit(r.url).query else ""),
         r.headers.get("idempotency-key"))))

    lossy = {"on": True}

    def lose_the_answer(route: Route) -> None:
        if route.request.method not in ("PATCH", "DELETE") or not lossy["on"]:
            return route.fallback()
        route.fetch()                                    # the write lands...
        route.fulfill(status=503, json={"error": {"code": "unavailable", "message": "lost"}})  # ...its answer does not

    page_a.route(re.compile(r"/api/todos/"), lose_the_answer)
    a.item("X").locator(".toggle").click()
    expect(a.item("X")).to_have_class(re.compile(r"\bcompleted\b"))
    page_a.click(".clear-completed")
    expect(a.item("X")).to_have_count(0)
    expect(page_a.locator(".session-bar")).not_to_have_attribute("data-unsent", "0")

    # Tab B: the same browser (one IndexedDB outbox), a page of its own.
    page_b = a.context.new_page()
    page_b.goto("/")
    expect(page_b.locator(".session-bar .status")).to_have_attribute("data-status", "live")
    assert page_b.evaluate("!!navigator.locks") == (lock == "web-locks")
    expect(page_b.locator(".todo-list li label")).to_have_text(["Y"])
    expect(page_b.locator(".session-bar")).to_have_attribute("data-unsent", "0", timeout=15_000)
    # A sees B's progress while its own answers are still being lost: nothing left to send.
    expect(page_a.locator(".session-bar")).to_have_attribute("data-unsent", "0")
    expect(page_a.locator(".todo-list li.pending")).to_have_count(0)
    page_b.locator(".todo-list li", has_text="Y").locator(".toggle").click()
    expect(page_b.locator(".session-bar")).to_have_attribute("data-unsent", "0")
    assert by_title(alice)["Y"]["completed"] is True

    # A's answers come back: it must not send its queue again.
    lossy["on"] = False
    expect(page_a.locator(".session-bar")).to_have_attribute("data-unsent", "0", timeout=15_000)
    page_a.wait_for_timeout(1500)                         # any late replay would have gone by now
    assert titles(alice) == ["Y"]
    assert by_title(alice)["Y"]["completed"] is True
    expect(a.labels).to_have_text(["Y"])

    # Every write went with a key; a key is one write (all its attempts), never two.
    assert sent and all(key for _, _, key in sent), sent
    writes = {}
    for method, path, key in sent:
        writes.setdefault(key, set()).add((method, path))
    assert all(len(requests) == 1 for requests in writes.values()), writes
    clears = [key for method, path, key in sent if method == "DELETE" and path.endswith("?completed=true")]
    assert len(set(clears)) == 1, sent
    y_completed = next(i for i, (m, p, _) in enumerate(sent) if m == "PATCH" and p.endswith(
        by_title(alice)["Y"]["id"] + "/"))
    assert all(not (m == "DELETE" and p.endswith("?completed=true")) for m, p, _ in sent[y_completed:]), sent


@pytest.mark.parametrize("lock", ["web-locks", "lease"])
def test_two_tabs_never_send_at_once(server, tabs, alice, lock):
    """Both tabs queue writes at the same moment, over and over: the server never has two of
    them in flight at once (one sender, in order), and every write lands."""
    for i in range(16):
        alice.create_todo(f"t{i:02d}")
    a = tabs(server, alice)
    if lock == "lease":
        a.context.add_init_script("Object.defineProperty(Navigator.prototype, 'locks', {get: () => undefined})")
    a.context.add_init_script(slow_fetch(60))
    page_a = a.open()
    page_b = a.context.new_page()
    page_b.goto("/")
    expect(page_b.locator(".session-bar .status")).to_have_attribute("data-status", "live")
    for page in (page_a, page_b):
        expect(page.locator(".todo-list li")).to_have_count(16)
    flight = {"now": 0, "peak": 0}

    def started(request) -> None:
        if request.method == "PATCH":
            flight["now"] += 1
            flight["peak"] = max(flight["peak"], flight["now"])

    def ended(request) -> None:
        if request.method == "PATCH":
            flight["now"] -= 1

    a.context.on("request", started)
    a.context.on("requestfinished", ended)
    a.context.on("requestfailed", ended)
    click = "i => document.querySelectorAll('.todo-list .toggle')[i].click()"
    for i in range(0, 16, 2):
        page_a.evaluate(click, i)
        page_b.evaluate(click, i + 1)
        page_a.wait_for_timeout(15)
    for page in (page_a, page_b):
        expect(page.locator(".session-bar")).to_have_attribute("data-unsent", "0", timeout=20_000)
    assert flight["peak"] == 1, flight
    assert all(todo["completed"] for todo in alice.list_todos()["todos"])


# -- issue 22, defect 1: offline work kept when access is lost ------------------------------------


def test_offline_writes_to_a_list_one_loses_are_kept_and_offered_back(server, tabs, alice, bob):
    trip = shared_list(alice, bob, "Trip")
    path = f"/api/lists/{trip['id']}/todos/"
    alice.post(path, {"title": "passports"})
    guest = tabs(server, bob)
    page = guest.open()
    open_list(guest, "Trip")
    expect(guest.labels).to_have_text(["passports"])

    guest.context.set_offline(True)
    expect(guest.status).to_have_attribute("data-status", "offline")
    for title in ("sunscreen", "maps", "a hat"):
        guest.add(title)
    guest.item("passports").locator(".toggle").click()
    expect(page.locator(".session-bar")).to_have_attribute("data-unsent", "4")
    # The queue is shown: what each write will do, and in which list.
    page.click(".session-bar .unsent")
    queue = page.locator(".session-bar .queue li")
    expect(queue).to_have_text(["Add “sunscreen” (Trip)", "Add “maps” (Trip)", "Add “a hat” (Trip)",
                                "Mark “passports” as completed (Trip)"])
    shot(page, "offline-queue.png")
    assert serious(axe_violations(page)) == []
    page.click(".session-bar .unsent")
    assert alice.delete(f"/api/lists/{trip['id']}/members/{bob.user['username']}/").status_code == 204
    guest.context.set_offline(False)

    refused = page.locator("section.refused")
    expect(refused.locator("li")).to_have_count(4, timeout=15_000)
    expect(page.locator(".session-bar")).to_have_attribute("data-unsent", "0")
    for text in ("Add “sunscreen”", "Add “maps”", "Add “a hat”", "Mark “passports” as completed"):
        expect(refused.locator("li", has_text=text)).to_have_count(1)
    expect(refused.locator("li").first).to_contain_text("In “Trip”")
    # Offered back to a list one can still write to, never to none.
    expect(refused.locator("select[name=target]").first).to_have_value("personal")
    assert titles(alice, path) == ["passports"]
    shot(page, "refused-writes.png")
    violations = axe_violations(page)
    assert serious(violations) == [], violations
    page.emulate_media(color_scheme="dark")
    page.wait_for_timeout(500)                      # todomvc's colour transitions
    shot(page, "refused-writes-dark.png")
    assert serious(axe_violations(page)) == []
    page.emulate_media(color_scheme="light")

    # Kept through a reload, and offered back: added to the personal list.
    page.reload()
    expect(refused.locator("li")).to_have_count(4)
    entry = refused.locator("li", has_text="Add “maps”")
    entry.get_by_role("combobox", name="Add to list").select_option(label="Todos")
    entry.get_by_role("button", name="Add as a todo").click()
    expect(refused.locator("li")).to_have_count(3)
    guest.saved()
    assert titles(bob) == ["maps"]
    guest.context.grant_permissions(["clipboard-read", "clipboard-write"])
    refused.locator("li", has_text="Add “a hat”").get_by_role("button", name="Copy text").click()
    page.wait_for_function("async () => (await navigator.clipboard.readText()) === 'a hat'")
    # Dismissed by keyboard: focus moves to the next entry, not to the page's body.
    refused.locator("li", has_text="Add “a hat”").get_by_role("button", name="Dismiss").focus()
    page.keyboard.press("Enter")
    expect(refused.locator("li")).to_have_count(2)
    page.wait_for_function("() => document.activeElement.matches('section.refused li button')", timeout=5000)


# -- issue 22, defect 2: made a viewer while editing -------------------------------------------------


def test_an_edit_in_progress_survives_being_made_a_viewer(server, tabs, alice, bob):
    trip = shared_list(alice, bob, "Trip")
    alice.post(f"/api/lists/{trip['id']}/todos/", {"title": "passports"})
    guest = tabs(server, bob)
    page = guest.open()
    open_list(guest, "Trip")
    guest.item("passports").locator("label").dblclick()
    edit = page.locator(".todo-list li.editing .edit")
    edit.fill("passports and visas")
    assert alice.put(f"/api/lists/{trip['id']}/members/{bob.user['username']}/", {"role": "viewer"}).status_code == 200

    expect(page.locator(".notice.info")).to_contain_text("Your role in “Trip” is now viewer")
    expect(page.locator(".todo-list li.editing")).to_have_count(0)
    expect(page.locator("section.refused li")).to_contain_text("passports and visas")
    expect(page.locator(".notice")).not_to_contain_text("does not allow")
    assert titles(alice, f"/api/lists/{trip['id']}/todos/") == ["passports"]


# -- issue 22, defect 3: long titles -------------------------------------------------------------------


def test_a_title_cannot_be_typed_past_the_servers_limit(server, tabs, alice):
    tab = tabs(server, alice)
    page = tab.open()
    page.fill(".new-todo", "y" * 600)
    assert len(page.input_value(".new-todo")) == 512
    page.press(".new-todo", "Enter")
    expect(tab.labels).to_have_text(["y" * 512])
    tab.saved()
    assert titles(alice) == ["y" * 512]
    tab.labels.first.dblclick()
    page.locator(".todo-list li.editing .edit").fill("z" * 700)
    assert len(page.input_value(".todo-list li.editing .edit")) == 512


# -- issue 22, defect 5: several notices; a title of ours replaced -------------------------------------


def test_every_conflict_is_shown_and_a_replaced_title_is_said(server, tabs, alice):
    one, two = alice.create_todo("one"), alice.create_todo("two")
    tab = tabs(server, alice)
    page = tab.open()
    tab.context.set_offline(True)
    for todo, mine in ((one, "my one"), (two, "my two")):
        tab.item(todo["title"]).locator("label").dblclick()
        page.locator(".todo-list li.editing .edit").fill(mine)
        page.press(".todo-list li.editing .edit", "Enter")
    for todo, theirs in ((one, "their one"), (two, "their two")):
        assert alice.patch(f"{LIST}{todo['id']}/", {"title": theirs}).status_code == 200
    tab.context.set_offline(False)
    conflicts = page.locator(".notice.conflict")
    expect(conflicts).to_have_count(2, timeout=15_000)
    expect(conflicts.nth(0)).to_contain_text("“my one”")
    expect(conflicts.nth(1)).to_contain_text("“my two”")
    conflicts.nth(1).get_by_role("button", name="Use my title").click()
    tab.saved()
    assert sorted(titles(alice)) == ["my two", "their one"]

    # Someone else's "Use my title" replaces ours: we are told, with both titles.
    assert alice.patch(f"{LIST}{two['id']}/", {"title": "theirs again"}).status_code == 200
    expect(page.locator(".notice.info")).to_contain_text("Your title “my two” was replaced elsewhere by “theirs again”")


# -- issue 22, defect 8: headings, announcements ---------------------------------------------------------


def test_headings_in_order_and_others_adds_and_deletes_are_announced(server, tabs, alice):
    gone = alice.create_todo("to go")
    tab = tabs(server, alice)
    page = tab.open()
    levels = page.evaluate("[...document.querySelectorAll('h1, h2, h3')].map(h => Number(h.tagName[1]))")
    assert levels[0] == 1 and all(b - a <= 1 for a, b in zip(levels, levels[1:])), levels
    heard = page.locator(".heard[aria-live=polite]")
    alice.create_todo("from elsewhere")
    expect(heard).to_have_text("Added “from elsewhere”")
    assert alice.delete(f"{LIST}{gone['id']}/").status_code == 204
    expect(heard).to_have_text("Deleted “to go”")
    tab.add("mine")                                            # our own add is not news
    tab.saved()
    expect(heard).to_have_text("Deleted “to go”")


# -- issue 22, defect 7: a phone, dark mode, 24 px targets -------------------------------------------------


def test_phone_layout_dark_mode_and_target_sizes(server, browser, alice):  # noqa: F811
    for i in range(12):
        alice.create_todo(f"todo {i}", completed=i % 3 == 0)
    for i in range(3):
        alice.post("/api/lists/", {"title": f"list {i}"})
    for scheme in ("light", "dark"):
        context = browser.new_context(base_url=server.base_url, viewport={"width": 375, "height": 667},
                                      color_scheme=scheme, has_touch=True, is_mobile=True)
        try:
            page = context.new_page()
            page.goto("/")                               # signed out: the sign-in screen
            expect(page.locator("section.auth")).to_be_visible()
            page.click("button[name=signin]")            # an error, tied to its fields
            expect(page.locator(".auth-error")).to_be_visible()
            shot(page, f"phone-sign-in-{scheme}.png")
            assert serious(axe_violations(page)) == [], scheme
            context.add_cookies([{"name": "todopy_session", "value": alice.token, "url": server.base_url}])
            page.goto("/")
            expect(page.locator(".session-bar .status")).to_have_attribute("data-status", "live")
            expect(page.locator(".todo-list li")).to_have_count(12)
            shot(page, f"phone-{scheme}.png")
            # The lists fold behind one button; the new-todo field stays high up.
            toggle = page.locator("nav.lists .lists-toggle")
            expect(toggle).to_be_visible()
            expect(page.locator("nav.lists a").first).to_be_hidden()
            box = page.locator(".new-todo").bounding_box()
            assert box["y"] + box["height"] < 260, box
            fitting = page.evaluate("[...document.querySelectorAll('.todo-list li')]"
                                    ".filter(li => li.getBoundingClientRect().bottom <= innerHeight).length")
            assert fitting >= 7, fitting
            for selector in ("button.signout", ".clear-completed", ".lists-toggle", ".filters a >> nth=0"):
                size = page.locator(selector).bounding_box()
                assert size["width"] >= 24 and size["height"] >= 24, (selector, size)
            if scheme == "dark":
                background = page.evaluate("getComputedStyle(document.body).backgroundColor")
                assert background == "rgb(18, 18, 18)", background
            violations = axe_violations(page)
            assert serious(violations) == [], (scheme, violations)
            toggle.click()
            expect(page.locator("nav.lists a")).to_have_count(4)
            expect(page.locator("nav.lists a").first).to_be_visible()
            assert serious(axe_violations(page)) == [], scheme
            page.locator("nav.lists a", has_text="list 1").click()
            expect(page.locator(".list-bar .list-title")).to_have_text("list 1")
            expect(page.locator("nav.lists a").first).to_be_hidden()
        finally:
            context.close()


# -- undo ------------------------------------------------------------------------------------------------------


def test_undo_delete_clear_toggle_all_and_rename_with_ordinary_guarded_writes(server, tabs, alice):
    a, b, c = (alice.create_todo(t) for t in ("a", "b", "c"))
    tab = tabs(server, alice)
    page = tab.open()
    bar = page.locator(".undo-bar[role=status]")
    undo = bar.get_by_role("button", name="Undo")

    # A delete comes back as itself: same id, same title.
    tab.item("b").hover()
    tab.item("b").locator(".destroy").click()
    expect(bar).to_contain_text("Deleted “b”.")
    shot(page, "undo-notice.png")
    assert serious(axe_violations(page)) == []
    page.emulate_media(color_scheme="dark")
    page.wait_for_timeout(500)                      # todomvc's colour transitions
    shot(page, "undo-notice-dark.png")
    assert serious(axe_violations(page)) == []
    page.emulate_media(color_scheme="light")
    tab.saved()
    assert titles(alice) == ["a", "c"]
    undo.click()
    expect(bar).to_have_count(0)
    tab.saved()
    assert by_title(alice)["b"]["id"] == b["id"]
    expect(tab.labels).to_have_count(3)
    expect(tab.item("b")).to_have_attribute("data-id", b["id"])
    # Its place is the server's to keep (created_time): printed, not asserted here.
    print(f"\norder after undoing a delete (server's): {titles(alice)}")

    # Toggle all, undone by Ctrl+Z (outside any field).
    page.click("label[for=toggle-all]")
    expect(bar).to_contain_text("Marked 3 todos as completed.")
    tab.saved()
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("Control+z")
    expect(bar).to_have_count(0)
    tab.saved()
    assert [t["completed"] for t in alice.list_todos()["todos"]] == [False, False, False]

    # Clear completed: the cleared todos come back completed, with their ids.
    tab.item("c").locator(".toggle").click()
    tab.saved()
    page.click(".clear-completed")
    expect(bar).to_contain_text("Deleted “c”.")
    tab.saved()
    undo.click()
    tab.saved()
    assert by_title(alice)["c"] == {**by_title(alice)["c"], "id": c["id"], "completed": True}

    # A rename, undone.
    tab.item("a").locator("label").dblclick()
    page.locator(".todo-list li.editing .edit").fill("a!")
    page.press(".todo-list li.editing .edit", "Enter")
    expect(bar).to_contain_text("Renamed “a” to “a!”.")
    tab.saved()
    undo.click()
    tab.saved()
    assert by_title(alice)["a"]["id"] == a["id"]

    # Undo never overwrites a newer change made elsewhere: it says so instead.
    tab.item("a").locator("label").dblclick()
    page.locator(".todo-list li.editing .edit").fill("mine")
    page.press(".todo-list li.editing .edit", "Enter")
    tab.saved()
    assert alice.patch(f"{LIST}{a['id']}/", {"title": "theirs"}).status_code == 200
    expect(tab.item("theirs")).to_have_count(1)
    expect(page.locator(".notice.info")).to_contain_text("Your title “mine” was replaced elsewhere by “theirs”")
    undo.click()
    expect(page.locator(".notice.info", has_text="Not undone")).to_contain_text("changed elsewhere since")
    tab.saved()
    assert by_title(alice)["theirs"]["id"] == a["id"]

    # The offer goes by itself after ~10 s.
    tab.item("theirs").hover()
    tab.item("theirs").locator(".destroy").click()
    expect(bar).to_be_visible()
    expect(bar).to_have_count(0, timeout=12_000)
    tab.saved()
    assert sorted(titles(alice)) == ["b", "c"]


# -- offline start: the service worker ---------------------------------------------------------------------------


def test_the_page_opens_offline_and_with_the_server_down(start_server, browser):  # noqa: F811
    served = start_server()
    user = register(served.base_url)
    # The page registers the worker the server serves at /sw.js.
    chromium = browser.browser_type.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        context = chromium.new_context(base_url=served.base_url)
        context.add_cookies([{"name": "todopy_session", "value": user.token, "url": served.base_url}])
        page = context.new_page()
        page.goto("/")
        status = page.locator(".session-bar .status")
        expect(status).to_have_attribute("data-status", "live")
        assert page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        page.reload()
        expect(status).to_have_attribute("data-status", "live")
        assert page.evaluate("!!navigator.serviceWorker.controller")

        # Offline: the page opens, and a write waits in the queue, shown.
        context.set_offline(True)
        page.reload()
        expect(status).to_have_attribute("data-status", "offline")
        page.fill(".new-todo", "written offline")
        page.press(".new-todo", "Enter")
        expect(page.locator(".todo-list li.pending label")).to_have_text(["written offline"])
        expect(page.locator(".session-bar .unsent")).to_have_text("1 change not saved yet")
        context.set_offline(False)
        expect(page.locator(".session-bar")).to_have_attribute("data-unsent", "0", timeout=15_000)
        assert titles(user) == ["written offline"]

        # The server down: the page still opens, as the last user, with their queue.
        assert served.stop() == 0
        page.reload()
        expect(page.locator("section.todoapp")).to_be_visible()
        expect(status).not_to_have_attribute("data-status", "live")
        page.fill(".new-todo", "written while down")
        page.press(".new-todo", "Enter")
        expect(page.locator(".session-bar")).to_have_attribute("data-unsent", "1")
        expect(page.locator(".session-bar .unsent")).to_have_text("1 change not saved yet")
        context.close()
    finally:
        chromium.close()
