"""Collaboration people can see (issue 22): members live in the share dialog, the invitee told
and able to leave, authors and the activity, presence across two server processes, undo
restoring a deleted todo in its place; axe on the new UI, light, dark and 375x667."""
from __future__ import annotations

import re
import time
from pathlib import Path

from playwright.sync_api import expect

from tests.browser import axe_violations, browser, serious, tabs  # noqa: F401
from tests.support import Api, register

SHOTS = Path("/tmp/shots")


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def shared_list(owner: Api, title: str, *guests: tuple[Api, str]) -> dict:
    made = owner.post("/api/lists/", {"title": title}).json()
    for guest, role in guests:
        assert owner.put(f"/api/lists/{made['id']}/members/{guest.user['username']}/",
                         {"role": role}).status_code == 201
    return made


def todos_path(lst: dict) -> str:
    return f"/api/lists/{lst['id']}/todos/"


def open_list(tab, title: str) -> None:
    tab.page.get_by_role("navigation", name="Your lists").get_by_role("link", name=title, exact=True).click()
    expect(tab.page.locator(".list-bar .list-title")).to_have_text(title)
    expect(tab.status).to_have_attribute("data-status", "live")


def member_row(dialog, username: str):
    return dialog.locator(f".members li[data-username='{username}']")


# -- members live ---------------------------------------------------------------------------------


def test_the_share_dialog_follows_members_live_and_changes_a_role_in_place(server, tabs, alice, bob):
    carol = register(server.base_url)
    lst = shared_list(alice, "Team", (bob, "editor"))
    owner, guest = tabs(server, alice), tabs(server, bob)
    for tab in (owner, guest):
        tab.open()
        open_list(tab, "Team")
        tab.page.click(".list-bar button[name=share]")
    mine, his = (tab.page.locator("dialog.share-dialog") for tab in (owner, guest))
    for dialog in (mine, his):
        expect(dialog.locator(".members li")).to_have_count(2)

    # Added elsewhere (another tab of the owner, here the API): both open dialogs follow, no reload.
    name = carol.user["username"]
    assert alice.put(f"/api/lists/{lst['id']}/members/{name}/", {"role": "viewer"}).status_code == 201
    for dialog in (mine, his):
        expect(dialog.locator(".members li")).to_have_count(3)
        expect(dialog.locator(".share-message")).to_have_text(f"{alice.user['username']} added {name} as a viewer.")
    expect(member_row(mine, name).locator(".member-role")).to_have_value("viewer")
    expect(member_row(his, name).locator(".member-role")).to_have_text("viewer")
    # Re-roled elsewhere: followed too.
    alice.put(f"/api/lists/{lst['id']}/members/{name}/", {"role": "editor"})
    expect(member_row(mine, name).locator(".member-role")).to_have_value("editor")
    expect(member_row(his, name).locator(".member-role")).to_have_text("editor")
    assert serious(axe_violations(owner.page)) == []

    # The owner changes bob's role in place: one PUT, no DELETE; bob's dialog and page follow.
    sent: list[str] = []
    owner.page.on("request", lambda r: "/members/" in r.url and r.method != "GET" and sent.append(r.method))
    mine.get_by_label(f"Role of {bob.user['username']}", exact=True).select_option("viewer")
    expect(mine.locator(".share-message")).to_have_text(f"{bob.user['username']} is now a viewer.")
    expect(member_row(his, bob.user["username"]).locator(".member-role")).to_have_text("viewer")
    expect(guest.page.locator(".list-bar .list-role")).to_have_text("Viewer")
    assert sent == ["PUT"], sent
    roles = {m["user"]["username"]: m["role"] for m in alice.get(f"/api/lists/{lst['id']}/members/").json()["members"]}
    assert roles[bob.user["username"]] == "viewer"

    # Removed elsewhere: gone from both dialogs.
    assert alice.delete(f"/api/lists/{lst['id']}/members/{name}/").status_code == 204
    for dialog in (mine, his):
        expect(dialog.locator(".members li")).to_have_count(2)
    expect(his.locator(".share-message")).to_have_text(f"{alice.user['username']} removed {name}.")
    # Dark mode and the phone: the dialog with its role controls.
    owner.page.set_viewport_size({"width": 375, "height": 667})
    owner.page.emulate_media(color_scheme="dark")
    owner.page.wait_for_timeout(400)                     # todomvc's colour transitions
    shot(owner.page, "share-dialog-phone-dark.png")
    assert serious(axe_violations(owner.page)) == []


def test_the_invitee_is_told_who_added_them_and_can_leave(server, tabs, alice, bob):
    guest = tabs(server, bob)
    page = guest.open()
    lst = shared_list(alice, "Surprise", (bob, "editor"))
    notice = page.locator(".notice.info", has_text="added you to")
    expect(notice).to_have_text(re.compile(f"{alice.user['username']} added you to “Surprise” as an editor."))
    expect(notice).to_have_attribute("role", "alert")
    assert serious(axe_violations(page)) == []
    notice.get_by_role("button", name="Leave list").click()
    expect(page.locator(".notice.info", has_text="You left “Surprise”.")).to_be_visible()
    expect(page.get_by_role("navigation", name="Your lists").get_by_role("link", name="Surprise")).to_have_count(0)
    assert [lst["id"]] not in [[x["id"]] for x in bob.get("/api/lists/").json()["lists"]]
    # A list bob makes himself is no news to him.
    page.fill("nav.lists input[name=new-list]", "Mine")
    page.press("nav.lists input[name=new-list]", "Enter")
    expect(page.locator(".list-bar .list-title")).to_have_text("Mine")
    page.wait_for_timeout(500)
    expect(page.locator(".notice.info", has_text="added you to")).to_have_count(0)


# -- authors and activity -------------------------------------------------------------------------


def test_authors_are_shown_and_the_activity_is_paged(server, tabs, alice, bob):
    lst = shared_list(alice, "Shop", (bob, "editor"))
    for i in range(24):
        alice.post(todos_path(lst), {"title": f"t{i}"})
    guest = tabs(server, bob)
    page = guest.open()
    open_list(guest, "Shop")
    expect(guest.labels).to_have_count(24)
    # A change by alice, live: "by alice" on that row; bob's own change is not signed.
    todo = alice.post(todos_path(lst), {"title": "milk"}).json()
    expect(guest.item("milk").locator(".by")).to_have_text(f"by {alice.user['username']}")
    guest.add("bread")
    guest.saved()
    expect(guest.item("bread").locator(".by")).to_have_count(0)
    alice.patch(f"{todos_path(lst)}{todo['id']}/", {"completed": True})
    expect(guest.item("milk")).to_have_class(re.compile(r"\bcompleted\b"))
    expect(guest.item("milk").locator(".by")).to_have_text(f"by {alice.user['username']}")

    # The activity: newest first, 20 a page, older pages on request, back to bob's joining.
    page.click(".list-bar button[name=activity]")
    expect(page.locator(".list-bar button[name=activity]")).to_have_attribute("aria-expanded", "true")
    panel = page.get_by_role("region", name="Activity")
    entries = panel.locator("ol li")
    expect(entries).to_have_count(20)
    me, her = bob.user["username"], alice.user["username"]
    expect(entries.first).to_contain_text(f"{her} changed “milk” (completed)")
    expect(entries.nth(1)).to_contain_text(f"{me} added “bread”")
    expect(entries.nth(2)).to_contain_text(f"{her} added “milk”")
    older = panel.get_by_role("button", name="Show older")
    older.focus()
    page.keyboard.press("Enter")
    expect(entries).to_have_count(28)                     # 24 todos, milk x2, bread, bob's joining
    expect(older).to_have_count(0)
    expect(panel.locator("ol")).to_be_focused()           # the last page: focus goes to what it brought
    expect(entries.last).to_contain_text(f"{her} added {me} as an editor")
    expect(entries.nth(27 - 1)).to_contain_text(f"{her} added “t0”")
    # A new change is read in while the panel is open.
    alice.post(todos_path(lst), {"title": "eggs"})
    expect(entries.first).to_contain_text(f"{her} added “eggs”")
    expect(entries).to_have_count(29)
    shot(page, "activity.png")
    assert serious(axe_violations(page)) == []
    page.emulate_media(color_scheme="dark")
    page.wait_for_timeout(400)
    shot(page, "activity-dark.png")
    assert serious(axe_violations(page)) == []


def test_paging_the_activity_by_keyboard_keeps_focus_on_show_older(server, tabs, alice):
    """While a page loads, "Show older" must not be disabled: a disabled button drops its
    focus on the page's body, and the keyboard user would start over from the top."""
    lst = shared_list(alice, "Long")
    for i in range(45):
        alice.post(todos_path(lst), {"title": f"t{i}"})
    tab = tabs(server, alice)
    page = tab.open()
    open_list(tab, "Long")
    page.click(".list-bar button[name=activity]")
    panel = page.get_by_role("region", name="Activity")
    entries = panel.locator("ol li")
    expect(entries).to_have_count(20)
    older = panel.get_by_role("button", name="Show older")
    older.focus()
    page.keyboard.press("Enter")
    expect(entries).to_have_count(40)
    expect(older).to_be_focused()
    page.keyboard.press("Enter")
    expect(entries).to_have_count(46)          # 45 todos and the list's creation
    expect(entries.last).to_contain_text("created")
    expect(panel.locator("ol")).to_be_focused()


# -- presence ---------------------------------------------------------------------------------------


def test_presence_across_two_processes_editing_marker_and_gone_at_once_on_a_clean_close(
        server, start_server, tabs, alice, bob):
    other = start_server()
    lst = shared_list(alice, "Live", (bob, "editor"))
    todo = alice.post(todos_path(lst), {"title": "write report"}).json()
    alice.post(todos_path(lst), {"title": "file taxes"})
    mine, his = tabs(server, alice), tabs(other, bob)        # one server process each
    frames: list[str] = []
    his.page.on("websocket", lambda ws: "/todos/" in ws.url and ws.on(
        "framesent", lambda payload: frames.append(payload if isinstance(payload, str) else "")))
    for tab in (mine, his):
        tab.open()
        open_list(tab, "Live")
    people = mine.page.get_by_role("list", name="Also here")
    him = bob.user["username"]
    expect(people.locator("li")).to_have_count(1, timeout=15_000)
    expect(people.locator("li")).to_have_attribute("title", him)
    expect(people.locator("li")).to_contain_text(him[0].upper())
    expect(his.page.get_by_role("list", name="Also here").locator("li")).to_have_attribute("title",
                                                                                          alice.user["username"])
    expect(mine.page.locator(".heard")).to_have_text(f"{him} opened this list")
    assert '{"type":"presence","editing":null}' in frames

    # bob edits a todo: alice sees who edits which.
    his.item("write report").locator("label").dblclick()
    marker = mine.item("write report").locator(".editing-by")
    expect(marker).to_contain_text(f"{him} is editing this")
    expect(mine.item("file taxes").locator(".editing-by")).to_have_count(0)
    expect(people.locator("li")).to_have_attribute("title", f"{him} (editing)")
    assert f'{{"type":"presence","editing":"{todo["id"]}"}}' in frames
    shot(mine.page, "presence.png")
    assert serious(axe_violations(mine.page)) == []
    mine.page.click(".list-bar button[name=activity]")
    expect(mine.page.get_by_role("region", name="Activity").locator("ol li").first).to_be_visible()
    shot(mine.page, "presence-and-activity.png")
    for scheme, size in (("dark", {"width": 760, "height": 640}), ("dark", {"width": 375, "height": 667}),
                         ("light", {"width": 375, "height": 667})):
        mine.page.emulate_media(color_scheme=scheme)
        mine.page.set_viewport_size(size)
        mine.page.wait_for_timeout(400)
        shot(mine.page, f"presence-{scheme}-{size['width']}.png")
        assert serious(axe_violations(mine.page)) == [], (scheme, size)
    his.page.keyboard.press("Escape")
    expect(marker).to_have_count(0)

    # The beat: bob stays present past the server's 30 s timeout only because his page beats every 10 s.
    beats = len(frames)
    his.page.wait_for_timeout(11_000)
    assert len(frames) > beats, frames

    # A clean close (the tab closed) takes bob out at once, not after the 30 s timeout.
    closed = time.monotonic()
    his.page.close()
    expect(people).to_have_count(0, timeout=10_000)
    print(f"\npresence gone {time.monotonic() - closed:.1f} s after a clean close")
    expect(mine.page.locator(".heard")).to_have_text(f"{him} left this list")


# -- undo keeps the place -------------------------------------------------------------------------


def test_undo_restores_a_deleted_todo_in_its_place_for_everyone(server, tabs, alice, bob):
    lst = shared_list(alice, "Order", (bob, "editor"))
    made = [alice.post(todos_path(lst), {"title": t}).json() for t in ("a", "b", "c")]
    mine, his = tabs(server, alice), tabs(server, bob)
    for tab in (mine, his):
        tab.open()
        open_list(tab, "Order")
        expect(tab.labels).to_have_text(["a", "b", "c"])
    mine.item("b").hover()
    mine.item("b").locator(".destroy").click()
    expect(his.labels).to_have_text(["a", "c"])
    mine.saved()
    mine.page.locator(".undo-bar").get_by_role("button", name="Undo").click()
    mine.saved()
    for tab in (mine, his):
        expect(tab.labels).to_have_text(["a", "b", "c"])
        expect(tab.item("b")).to_have_attribute("data-id", made[1]["id"])
    todos = alice.get(todos_path(lst)).json()["todos"]
    assert [t["title"] for t in todos] == ["a", "b", "c"]
    assert todos[1]["created_time"] == made[1]["created_time"]
    # A reload reads the server's order: still in its place.
    his.page.reload()
    expect(his.labels).to_have_text(["a", "b", "c"])
