"""The front end when the network or the server misbehaves, and for keyboard and screen-reader users.

Optimistic writes, the IndexedDB outbox (offline, reload while unreachable),
a blocked WebSocket (polling), 412 handling, keyboard-only use, axe-core, and
the timings issue 12 asks for (reported; asserted only loosely).
"""
from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

from playwright.sync_api import expect

from tests.browser import (BLOCK_WEBSOCKETS, act_until_painted, axe_violations, browser,  # noqa: F401
                           click_until_painted, serious, slow_fetch, tabs, wait_painted)
from tests.support import Api

LIST = "/api/todos/"


def titles(api: Api) -> list[str]:
    return [todo["title"] for todo in api.list_todos()["todos"]]


def by_title(api: Api) -> dict[str, dict]:
    return {todo["title"]: todo for todo in api.list_todos()["todos"]}


def answered(tab, method: str, path: str = LIST) -> list[int]:
    """Statuses of the responses the server gave to this page's `method` requests on `path`."""
    return [r.status for r in tab.responses if r.request.method == method and urlsplit(r.url).path == path]


# -- optimistic writes -------------------------------------------------------------------


def test_writes_paint_before_a_slow_server_answers(server, tabs, alice):
    alice.create_todo("toggle me")
    tab = tabs(server, alice)
    tab.page.add_init_script(slow_fetch(400))
    page = tab.page
    held = []   # the session check, held back until the loading state has been seen
    page.route("**/api/session/", lambda route: held.append(route))
    with page.expect_request("**/api/session/"):
        page.goto("/")
    # While the session is asked for: a loading state, not a blank page.
    expect(page.locator(".app-loading[role=status]")).to_contain_text("Loading")
    assert len(held) == 1
    held[0].continue_()
    page.unroute("**/api/session/")
    expect(tab.status).to_have_attribute("data-status", "live")
    expect(tab.labels).to_have_text(["toggle me"])

    delays = []
    for completed in (True, False, True):
        state = "" if completed else "!"
        predicate = f"() => {state}document.querySelector('.todo-list li').classList.contains('completed')"
        delays.append(click_until_painted(page, ".todo-list .toggle", predicate))
        tab.saved()
    print(f"\ntoggle painted after (ms, server answering in >= 400 ms): {[round(d) for d in delays]}")
    assert max(delays) < 100, delays
    assert by_title(alice)["toggle me"]["completed"] is True

    # An edit shows the new title at once, not the old one until the echo.
    tab.item("toggle me").locator("label").dblclick()
    page.locator(".todo-list li.editing .edit").fill("renamed")
    enter = ("() => document.querySelector('.todo-list li.editing .edit')"
             ".dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true}))")
    painted = act_until_painted(page, enter, "() => document.querySelector('.todo-list li label').textContent === 'renamed'"
                                " && !document.querySelector('.todo-list li.editing')")
    print(f"edit painted after {painted:.0f} ms")
    assert painted < 100, painted   # the new title at once, not the old one until the echo
    tab.saved()
    assert titles(alice) == ["renamed"]


def test_toggle_all_with_1000_todos(server, tabs, alice):
    for i in range(1000):
        alice.create_todo(f"todo {i:04d}")
    tab = tabs(server, alice)
    page = tab.open()
    expect(tab.items).to_have_count(1000, timeout=20_000)

    timings = {}
    for state in ("completed", "active"):
        count = "document.querySelectorAll('.todo-list li.completed').length"
        done = f"() => {count} === 1000" if state == "completed" else f"() => {count} === 0"
        painted = click_until_painted(page, "#toggle-all", done)
        started = time.time() * 1000 - painted
        settled = wait_painted(page, "() => !document.querySelector('.todo-list li.pending')"
                                     " && document.querySelector('.session-bar').dataset.unsent === '0'",
                               timeout=30_000)
        timings[state] = (painted, settled - started)
    print("\ntoggle all, 1,000 todos (ms): "
          + "; ".join(f"to {s}: painted {p:.0f}, server's 1,000 changes applied {a:.0f}" for s, (p, a) in timings.items()))
    assert all(todo["completed"] is False for todo in alice.list_todos()["todos"])
    assert len(answered(tab, "PATCH")) == 2
    # Reported, not asserted tightly (two busy cores); a re-render per change frame took ~1.6 s.
    assert max(p for p, _ in timings.values()) < 1500, timings


# -- offline and unreachable -----------------------------------------------------------------


def test_offline_write_is_shown_kept_and_sent_exactly_once(server, tabs, alice, artifacts):
    alice.create_todo("from before")
    tab = tabs(server, alice)
    page = tab.open()
    expect(tab.labels).to_have_text(["from before"])

    # Both checkbox images came with the page: a todo completed offline keeps its checkbox.
    images = {urlsplit(r.url).path.split("-")[0] for r in tab.responses if r.url.endswith(".svg") and r.ok}
    assert {"/assets/toggle", "/assets/favicon"} <= images
    assert len([r for r in tab.responses if "/assets/toggle-" in r.url and r.ok]) == 2
    tab.context.set_offline(True)
    status = tab.status
    expect(status).to_have_attribute("data-status", "offline")
    expect(status).to_contain_text("Offline")
    expect(page.locator(".session-bar [role=status]")).to_have_count(1)
    tab.add("written offline")
    tab.item("from before").locator(".toggle").click()
    expect(tab.item("written offline")).to_have_class(re.compile(r"\bpending\b"))
    expect(tab.item("from before")).to_have_class(re.compile(r"\bcompleted\b"))
    expect(page.locator(".session-bar .unsent")).to_have_text("2 changes not saved yet")
    expect(page.locator(".notice")).to_have_count(0)   # nothing failed: it waits
    page.screenshot(path=str(artifacts / "offline-state.png"), full_page=True)
    assert titles(alice) == ["from before"]
    assert not by_title(alice)["from before"]["completed"]
    assert answered(tab, "POST") == []
    # What cannot wait in the outbox fails plainly, and the notice goes by itself once back.
    page.fill("nav.lists input[name=new-list]", "made offline")
    page.press("nav.lists input[name=new-list]", "Enter")
    expect(page.locator(".notice.app-error")).to_contain_text("Could not reach the server")

    tab.context.set_offline(False)
    expect(page.locator(".notice")).to_have_count(0)
    tab.saved()
    expect(status).to_have_attribute("data-status", "live")
    assert titles(alice) == ["from before", "written offline"]
    assert by_title(alice)["from before"]["completed"]
    assert answered(tab, "POST") == [201], "sent once, after reconnecting"
    expect(tab.labels).to_have_text(["from before", "written offline"])


def test_unsent_write_survives_a_reload_while_the_server_is_unreachable(server, tabs, alice):
    tab = tabs(server, alice)
    page = tab.page
    # Every /api/ request (and stream) fails while `down`; the page's own files still load.
    down = {"api": False}
    page.route(re.compile(r"/api/"), lambda route: route.abort("internetdisconnected") if down["api"]
               else route.continue_())
    page.route_web_socket(re.compile(r"/api/"), lambda ws: ws.close(code=1011) if down["api"]
                          else ws.connect_to_server())
    tab.open()
    tab.add("first, saved")
    tab.saved()

    # The server unreachable before the write: the browser's offline switch alone races a request
    # already on its way (under load, one reached the server and only its answer was lost).
    down["api"] = True
    tab.context.set_offline(True)
    tab.add("queued, then reloaded")
    expect(page.locator(".session-bar .unsent")).to_have_text("1 change not saved yet")
    tab.context.set_offline(False)
    page.reload()
    # The same user's workspace, from this browser's memory, with the write still pending.
    expect(page.locator(".session-bar .user")).to_contain_text(alice.user["username"])
    expect(tab.item("queued, then reloaded")).to_have_class(re.compile(r"\bpending\b"))
    expect(page.locator(".session-bar .unsent")).to_have_text("1 change not saved yet")
    assert titles(alice) == ["first, saved"]

    down["api"] = False
    tab.saved(timeout=20_000)
    expect(tab.status).to_have_attribute("data-status", "live", timeout=20_000)
    expect(tab.labels).to_have_text(["first, saved", "queued, then reloaded"])
    assert titles(alice) == ["first, saved", "queued, then reloaded"]
    assert answered(tab, "POST") == [201, 201], "each sent once: the queued one after the reload"


def test_blocked_stream_falls_back_to_polling_and_writes_still_show(server, tabs, alice):
    alice.create_todo("already there")
    tab = tabs(server, alice)
    page = tab.page
    page.add_init_script(BLOCK_WEBSOCKETS)
    page.goto("/")
    expect(tab.status).to_have_attribute("data-status", "unavailable", timeout=15_000)
    expect(tab.status).to_contain_text("Live updates unavailable")
    expect(tab.labels).to_have_text(["already there"])   # loaded over REST

    tab.add("added without a stream")
    expect(tab.labels).to_have_text(["already there", "added without a stream"])
    tab.saved()
    assert titles(alice) == ["already there", "added without a stream"]
    assert answered(tab, "POST") == [201]

    # Someone else's write arrives by polling, without duplicating ours.
    alice.create_todo("from elsewhere")
    expect(tab.labels).to_have_text(["already there", "added without a stream", "from elsewhere"], timeout=15_000)
    tab.item("from elsewhere").locator(".toggle").click()
    tab.saved()
    assert by_title(alice)["from elsewhere"]["completed"]
    expect(page.locator(".notice")).to_have_count(0)


# -- lost updates: retried when harmless, shown when real ----------------------------------------


def test_edit_during_a_toggle_elsewhere_is_retried_silently(server, tabs, alice):
    todo = alice.create_todo("original")
    tab = tabs(server, alice)
    page = tab.open()
    tab.item("original").locator("label").dblclick()
    edit = page.locator(".todo-list li.editing .edit")
    expect(edit).to_be_focused()

    assert alice.patch(f"{LIST}{todo['id']}/", {"completed": True}).status_code == 200
    expect(tab.items.first).to_have_class(re.compile(r"\bcompleted\b"))
    edit.fill("edited while toggled")
    edit.press("Enter")
    tab.saved()
    assert answered(tab, "PATCH", f"{LIST}{todo['id']}/") == [412, 200]   # refused, then retried on the new rev
    assert list(by_title(alice)) == ["edited while toggled"]
    assert by_title(alice)["edited while toggled"]["completed"] is True   # the toggle elsewhere is kept
    expect(page.locator(".notice")).to_have_count(0)
    expect(tab.labels).to_have_text(["edited while toggled"])


def test_real_conflict_keeps_the_users_text_and_offers_it(server, tabs, alice):
    todo = alice.create_todo("original")
    tab = tabs(server, alice)
    page = tab.open()
    tab.item("original").locator("label").dblclick()
    edit = page.locator(".todo-list li.editing .edit")
    assert alice.patch(f"{LIST}{todo['id']}/", {"title": "theirs"}).status_code == 200
    edit.fill("mine")
    edit.press("Enter")
    notice = page.locator(".notice.conflict")
    expect(notice).to_contain_text("changed elsewhere")
    expect(notice).to_contain_text("“mine”")
    expect(tab.labels).to_have_text(["theirs"])
    tab.saved()
    assert titles(alice) == ["theirs"]

    notice.get_by_role("button", name="Use my title").click()
    expect(tab.labels).to_have_text(["mine"])
    tab.saved()
    assert titles(alice) == ["mine"]
    expect(notice).to_have_count(0)


def test_failed_save_keeps_the_text_in_the_field(server, tabs, alice):
    todo = alice.create_todo("short")
    tab = tabs(server, alice)
    page = tab.open()
    tab.item("short").locator("label").dblclick()
    edit = page.locator(".todo-list li.editing .edit")
    # Too long cannot be typed any more (maxlength 512: issue 22, defect 3)...
    edit.fill("x" * 600)
    expect(edit).to_have_value("x" * 512)
    # ...so a refusal the page cannot foresee stands in for it: the server's 422, once.
    refusal = {"error": {"code": "invalid", "message": "title: not accepted"}}
    page.route(f"**{LIST}{todo['id']}/", lambda route: route.fulfill(status=422, json=refusal)
               if route.request.method == "PATCH" else route.fallback(), times=1)
    edit.press("Enter")
    expect(page.locator(".notice.app-error")).to_contain_text("title")
    expect(edit).to_have_value("x" * 512)     # back in the field, not lost
    expect(edit).to_be_focused()
    expect(page.locator("section.refused")).to_have_count(0)   # in the user's hands: not also "Not saved"
    edit.fill("fits")
    edit.press("Enter")
    tab.saved()
    assert titles(alice) == ["fits"]

    # Deleted elsewhere while being edited: the text is offered back.
    tab.item("fits").locator("label").dblclick()
    edit.fill("my unsaved words")
    assert alice.delete(f"{LIST}{todo['id']}/").status_code == 204
    notice = page.locator(".notice.app-error")
    expect(notice).to_contain_text("deleted elsewhere")
    expect(notice).to_contain_text("“my unsaved words”")
    notice.get_by_role("button", name="Add it again").focus()
    page.keyboard.press("Enter")
    expect(tab.labels).to_have_text(["my unsaved words"])
    expect(notice).to_have_count(0)
    expect(page.locator(".new-todo")).to_be_focused()   # not dropped on the body with the notice
    tab.saved()
    assert titles(alice) == ["my unsaved words"]


# -- keyboard and assistive technology ------------------------------------------------------------


FOCUSED = """() => { const e = document.activeElement;
    return e ? (e.className || e.id || e.tagName).toString() + (e.closest('li[data-id]') ?
    ':' + e.closest('li[data-id]').querySelector('label').textContent : '') : ''; }"""


def focused(page, expected: str) -> str:
    """Wait (briefly) until the focused element is `expected` (class or id or tag, ':' and its row's title)."""
    try:
        page.wait_for_function(f"expected => ({FOCUSED})() === expected", arg=expected, timeout=2000)
    except Exception:
        pass
    return page.evaluate(FOCUSED)


def test_keyboard_only_walkthrough(server, tabs, alice):
    tab = tabs(server, alice)
    page = tab.open()
    expect(page.locator(".new-todo")).to_be_focused()
    for title in ("alpha", "beta"):
        page.keyboard.type(title)
        page.keyboard.press("Enter")
    expect(tab.labels).to_have_text(["alpha", "beta"])

    page.keyboard.press("Tab")
    assert focused(page, "toggle-all") == "toggle-all"
    page.keyboard.press("Tab")
    assert focused(page, "toggle:alpha") == "toggle:alpha"
    page.keyboard.press("Space")
    expect(tab.item("alpha")).to_have_class(re.compile(r"\bcompleted\b"))
    page.keyboard.press("Tab")
    assert focused(page, "LABEL:alpha") == "LABEL:alpha"   # the label: focusable, to edit
    page.keyboard.press("Enter")
    edit = page.locator(".todo-list li.editing .edit")
    expect(edit).to_be_focused()
    page.keyboard.press("End")
    page.keyboard.type(" edited")
    page.keyboard.press("Enter")
    expect(tab.labels).to_have_text(["alpha edited", "beta"])
    assert focused(page, "LABEL:alpha edited") == "LABEL:alpha edited"   # back where the user was
    page.keyboard.press("F2")
    expect(edit).to_be_focused()
    page.keyboard.type(" never")
    page.keyboard.press("Escape")
    expect(tab.labels).to_have_text(["alpha edited", "beta"])
    page.keyboard.press("Tab")
    assert focused(page, "destroy:alpha edited") == "destroy:alpha edited"   # shown to the keyboard, not only on hover
    expect(tab.item("alpha edited").locator(".destroy")).to_be_visible()
    page.keyboard.press("Enter")
    expect(tab.labels).to_have_text(["beta"])
    assert focused(page, "toggle:beta") == "toggle:beta"
    tab.saved()
    assert titles(alice) == ["beta"]

    # Clear completed goes with what it cleared; focus goes to the new-todo input.
    page.keyboard.press("Space")
    expect(tab.item("beta")).to_have_class(re.compile(r"\bcompleted\b"))
    for _ in range(8):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.className") == "clear-completed":
            break
    assert focused(page, "clear-completed") == "clear-completed"
    page.keyboard.press("Enter")
    expect(tab.labels).to_have_count(0)
    expect(page.locator(".new-todo")).to_be_focused()
    tab.saved()
    assert titles(alice) == []


def test_axe_finds_nothing_serious(server, tabs, alice, artifacts):
    tab = tabs(server)
    page = tab.page
    tab.open_signed_out()
    report = {"sign-in": axe_violations(page)}
    page.click("button[name=to-signup]")
    expect(page.locator("input[name=password]")).to_have_attribute("autocomplete", "new-password")
    report["sign-up"] = axe_violations(page)
    page.click("button[name=to-signin]")
    expect(page.locator("input[name=password]")).to_have_attribute("autocomplete", "current-password")

    tab.sign_in(alice.user["username"])
    expect(tab.status).to_have_attribute("data-status", "live")
    tab.add("read me")
    tab.add("done already")
    tab.item("done already").locator(".toggle").click()
    tab.saved()
    report["a list"] = axe_violations(page)
    tab.item("read me").locator("label").dblclick()
    expect(page.locator(".todo-list li.editing .edit")).to_be_focused()
    report["editing"] = axe_violations(page)
    page.keyboard.press("Escape")

    for name, violations in report.items():
        print(f"\naxe, {name}: " + (", ".join(f"{v['id']} ({v['impact']})" for v in violations) or "no violations"))
    assert {name: serious(v) for name, v in report.items()} == {name: [] for name in report}

    # The check can fail: the item checkboxes' names are what issue 12 found missing.
    page.evaluate("() => document.querySelectorAll('.todo-list .toggle').forEach(t => t.removeAttribute('aria-label'))")
    assert "label" in {v["id"] for v in serious(axe_violations(page))}
    page.reload()

    # The landmark and the live region exist, and the info footer says how to edit.
    expect(page.locator("main")).to_have_count(1)
    expect(page.locator(".session-bar [role=status] .status")).to_have_count(1)
    expect(page.locator("footer.info")).to_contain_text("Double-click to edit a todo")
