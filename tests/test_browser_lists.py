"""Lists and sharing in the front end, two users in two browsers, against the real server."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser import axe_violations, browser, serious, tabs  # noqa: F401
from tests.support import Api


def lists_of(api: Api) -> dict[str, dict]:
    return {lst["title"]: lst for lst in api.get("/api/lists/").json()["lists"]}


def list_titles(api: Api, list_id: str) -> list[str]:
    return [t["title"] for t in api.get(f"/api/lists/{list_id}/todos/").json()["todos"]]


def nav_links(tab):
    return tab.page.locator("nav.lists a")


def open_list(tab, title: str) -> None:
    tab.page.get_by_role("navigation", name="Your lists").get_by_role("link", name=title, exact=True).click()
    expect(tab.page.locator(".list-bar .list-title")).to_have_text(title)
    expect(tab.status).to_have_attribute("data-status", "live")


def share(tab, username: str, role: str) -> None:
    dialog = tab.page.locator("dialog.share-dialog")
    if not dialog.is_visible():
        tab.page.click(".list-bar button[name=share]")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Username").fill(username)
    dialog.locator("select[name=share-role]").select_option(role)
    dialog.get_by_role("button", name="Add").click()
    # The owner sees each member's role in a control of its own (changed in place).
    expect(dialog.locator(f".members li[data-username='{username}'] .member-role")).to_have_value(role)


def test_navigate_create_rename_delete_lists(server, tabs, alice, artifacts):
    alice.create_todo("personal errand")
    tab = tabs(server, alice)
    page = tab.open()
    expect(nav_links(tab)).to_have_text(["Todos"])
    expect(tab.labels).to_have_text(["personal errand"])

    page.fill("nav.lists input[name=new-list]", "Groceries")
    page.press("nav.lists input[name=new-list]", "Enter")
    expect(nav_links(tab)).to_have_text(["Todos", "Groceries"])
    groceries = lists_of(alice)["Groceries"]
    expect(page).to_have_url(re.compile(rf"#/lists/{groceries['id']}/$"))
    expect(page.locator(".list-bar .list-title")).to_have_text("Groceries")
    expect(nav_links(tab).nth(1)).to_have_attribute("aria-current", "page")
    expect(tab.items).to_have_count(0)
    tab.add("milk")
    tab.add("eggs")
    tab.item("eggs").locator(".toggle").click()
    tab.saved()
    assert list_titles(alice, groceries["id"]) == ["milk", "eggs"]
    assert [t["title"] for t in alice.list_todos()["todos"]] == ["personal errand"]

    # The TodoMVC filters stay within the list's own URL.
    page.click(".filters a:text-is('Active')")
    expect(page).to_have_url(re.compile(rf"#/lists/{groceries['id']}/active$"))
    expect(tab.labels).to_have_text(["milk"])
    # Switching lists keeps the filter.
    expect(nav_links(tab).first).to_have_attribute("href", re.compile(r"/active$"))

    # Rename: the navigation follows (from the lists stream).
    page.click(".list-bar button[name=rename-list]")
    page.fill(".list-bar input[name=list-title]", "Food")
    page.press(".list-bar input[name=list-title]", "Enter")
    expect(nav_links(tab)).to_have_text(["Todos", "Food"])
    expect(page.locator(".list-bar .list-title")).to_have_text("Food")
    assert "Food" in lists_of(alice)
    page.screenshot(path=str(artifacts / "list-navigation.png"), full_page=True)

    open_list(tab, "Todos")
    expect(tab.labels).to_have_text(["personal errand"])
    expect(page.locator(".list-bar button[name=delete-list]")).to_have_count(0)   # the personal list stays
    page.goto(f"/#/lists/{groceries['id']}/")
    expect(tab.labels).to_have_text(["milk", "eggs"])
    page.click(".list-bar button[name=delete-list]")
    expect(page.get_by_role("alertdialog")).to_contain_text("Delete “Food”")
    page.click("button[name=confirm-delete]")
    expect(nav_links(tab)).to_have_text(["Todos"])
    expect(page).to_have_url(re.compile(r"#/$"))
    expect(tab.labels).to_have_text(["personal errand"])
    assert alice.get(f"/api/lists/{groceries['id']}/").status_code == 404


def test_two_users_share_a_list_both_ways_and_both_roles(server, tabs, alice, bob, artifacts):
    owner, guest = tabs(server, alice), tabs(server, bob)
    owner.open()
    guest.open()
    a, b = owner.page, guest.page
    a.fill("nav.lists input[name=new-list]", "Trip")
    a.press("nav.lists input[name=new-list]", "Enter")
    expect(a.locator(".list-bar .list-title")).to_have_text("Trip")
    owner.add("passports")
    owner.saved()
    trip = lists_of(alice)["Trip"]

    # Share with bob as an editor: the list appears in his navigation at once.
    share(owner, bob.user["username"], "editor")
    dialog = a.locator("dialog.share-dialog")
    expect(dialog.locator(".members li")).to_have_count(2)
    expect(dialog.locator(".members li").first).to_contain_text(alice.user["username"])
    expect(dialog.locator(".members li").first.locator(".member-role")).to_have_text("owner")
    expect(dialog.get_by_label("Username")).to_have_value("")
    a.screenshot(path=str(artifacts / "share-dialog.png"))
    violations = axe_violations(a)
    print("\naxe, share dialog: " + (", ".join(f"{v['id']} ({v['impact']})" for v in violations) or "no violations"))
    assert serious(violations) == []
    a.keyboard.press("Escape")   # the dialog closes; focus goes back to Share
    expect(dialog).to_have_count(0)
    expect(a.locator(".list-bar button[name=share]")).to_be_focused()

    expect(nav_links(guest)).to_have_text(["Todos", "Trip"])
    open_list(guest, "Trip")
    expect(guest.labels).to_have_text(["passports"])
    expect(b.locator(".list-bar .list-role")).to_have_text("Editor")
    guest.add("sunscreen")            # bob → alice
    expect(owner.labels).to_have_text(["passports", "sunscreen"])
    owner.item("passports").locator(".toggle").click()   # alice → bob
    expect(guest.item("passports")).to_have_class(re.compile(r"\bcompleted\b"))
    guest.saved()
    owner.saved()
    assert list_titles(alice, trip["id"]) == ["passports", "sunscreen"]

    # Now a viewer: bob's page turns read-only live.
    share(owner, bob.user["username"], "viewer")
    a.keyboard.press("Escape")
    expect(b.locator(".list-bar .list-role")).to_have_text("Viewer")
    # Told, not left to guess from a vanished field (issue 22, defect 2).
    expect(b.locator(".notice.info")).to_have_text(re.compile("Your role in “Trip” is now viewer"))
    expect(b.locator("footer.info")).not_to_contain_text("Double-click to edit")
    expect(b.locator(".new-todo")).to_have_count(0)
    expect(b.locator(".read-only-note")).to_be_visible()
    expect(b.locator("#toggle-all")).to_have_count(0)
    expect(guest.item("sunscreen").locator(".toggle")).to_be_disabled()
    expect(b.locator(".todo-list .destroy")).to_have_count(0)
    expect(b.locator(".clear-completed")).to_have_count(0)
    guest.item("sunscreen").locator("label").dblclick()
    expect(b.locator(".todo-list li.editing")).to_have_count(0)
    owner.add("tickets")               # still live for the viewer
    expect(guest.labels).to_have_text(["passports", "sunscreen", "tickets"])
    b.screenshot(path=str(artifacts / "viewer-list.png"), full_page=True)
    violations = axe_violations(b)
    print("axe, viewer's list: " + (", ".join(f"{v['id']} ({v['impact']})" for v in violations) or "no violations"))
    assert serious(violations) == []
    # The viewer sees the members, and can leave, but not manage.
    b.click(".list-bar button[name=share]")
    viewer_dialog = b.locator("dialog.share-dialog")
    expect(viewer_dialog.locator(".members li")).to_have_count(2)
    expect(viewer_dialog.get_by_label("Username")).to_have_count(0)
    expect(viewer_dialog.locator(".member-remove")).to_have_count(0)
    expect(viewer_dialog.get_by_role("button", name="Leave list")).to_be_visible()
    b.keyboard.press("Escape")

    # Access lost live: alice removes bob; his page leaves the list and says why.
    a.click(".list-bar button[name=share]")
    a.locator(f"dialog.share-dialog .members li[data-username='{bob.user['username']}'] .member-remove").click()
    expect(a.locator("dialog.share-dialog .members li")).to_have_count(1)
    expect(b.locator(".notice")).to_contain_text("You no longer have access to “Trip”")
    expect(nav_links(guest)).to_have_text(["Todos"])
    expect(b).to_have_url(re.compile(r"#/$"))
    assert bob.get(f"/api/lists/{trip['id']}/").status_code == 404


def test_a_member_leaves_and_a_deleted_list_closes_for_its_viewers(server, tabs, alice, bob):
    shared = alice.post("/api/lists/", {"title": "Chores"}).json()
    doomed = alice.post("/api/lists/", {"title": "Doomed"}).json()
    for lst in (shared, doomed):
        assert alice.put(f"/api/lists/{lst['id']}/members/{bob.user['username']}/", {"role": "editor"}).status_code == 201
    guest = tabs(server, bob)
    page = guest.open()
    expect(nav_links(guest)).to_have_text(["Todos", "Chores", "Doomed"])

    open_list(guest, "Chores")
    page.click(".list-bar button[name=share]")
    page.get_by_role("button", name="Leave list").click()
    expect(page).to_have_url(re.compile(r"#/$"))
    expect(nav_links(guest)).to_have_text(["Todos", "Doomed"])
    members = alice.get(f"/api/lists/{shared['id']}/members/").json()["members"]
    assert [m["user"]["username"] for m in members] == [alice.user["username"]]

    open_list(guest, "Doomed")
    assert alice.delete(f"/api/lists/{doomed['id']}/").status_code == 204
    # Said as deleted, not as lost access (issue 22, defect 4), whichever stream tells first.
    expect(page.locator(".notice")).to_have_text(re.compile("“Doomed” was deleted"))
    expect(page).to_have_url(re.compile(r"#/$"))
    expect(nav_links(guest)).to_have_text(["Todos"])
    # A link to a list one cannot see says so, rather than showing an empty list.
    page.goto(f"/#/lists/{doomed['id']}/")
    expect(page.locator(".notice")).to_contain_text("does not exist or is not shared with you")
    expect(page).to_have_url(re.compile(r"#/$"))


def press_until(page, key: str, predicate: str, limit: int = 25) -> None:
    """Press `key` until `predicate` (JS, over document.activeElement `e`) holds; fail after `limit` presses."""
    for _ in range(limit):
        page.keyboard.press(key)
        if page.evaluate(f"() => {{ const e = document.activeElement; return Boolean({predicate}); }}"):
            return
    raise AssertionError(f"{key} never reached {predicate}")


def test_lists_and_sharing_by_keyboard_only(server, tabs, alice, bob):
    tab = tabs(server, alice)
    page = tab.open()
    expect(page.locator(".new-todo")).to_be_focused()
    press_until(page, "Shift+Tab", "e.name === 'new-list'")
    page.keyboard.type("Keyboard list")
    page.keyboard.press("Enter")
    expect(page.locator(".list-bar .list-title")).to_have_text("Keyboard list")
    expect(tab.status).to_have_attribute("data-status", "live")

    # Rename.
    press_until(page, "Tab", "e.name === 'rename-list'")
    page.keyboard.press("Enter")
    expect(page.locator(".list-bar input[name=list-title]")).to_be_focused()
    page.keyboard.press("Control+a")
    page.keyboard.type("Renamed by keys")
    page.keyboard.press("Enter")
    expect(nav_links(tab)).to_have_text(["Todos", "Renamed by keys"])
    rename = page.locator(".list-bar button[name=rename-list]")
    expect(rename).to_be_focused()   # back where the rename began, not on the page's body
    # Escape cancels a rename, and focus is back on Rename too.
    page.keyboard.press("Enter")
    page.keyboard.type(" and undone")
    page.keyboard.press("Escape")
    expect(rename).to_be_focused()
    expect(page.locator(".list-bar .list-title")).to_have_text("Renamed by keys")

    # Share: the dialog takes focus, Tab moves through its fields, Escape returns to Share.
    press_until(page, "Tab", "e.name === 'share'")
    page.keyboard.press("Enter")
    dialog = page.locator("dialog.share-dialog")
    expect(dialog.get_by_label("Username")).to_be_focused()
    page.keyboard.type(bob.user["username"])
    page.keyboard.press("Tab")
    expect(dialog.locator("select[name=share-role]")).to_be_focused()
    page.keyboard.press("ArrowDown")   # editor → viewer
    expect(dialog.locator("select[name=share-role]")).to_have_value("viewer")
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="Add")).to_be_focused()
    page.keyboard.press("Enter")
    expect(dialog.locator(f".members li[data-username='{bob.user['username']}'] .member-role")).to_have_value("viewer")
    # The page behind the modal dialog is inert: Tab never lands on it (past the
    # dialog's last control focus goes to the browser itself, then back in).
    inside = 0
    for _ in range(12):
        page.keyboard.press("Tab")
        where = page.evaluate("() => document.activeElement === document.body ? 'browser'"
                              " : document.activeElement.closest('dialog') ? 'dialog' : 'page'")
        assert where != "page"
        inside += where == "dialog"
    assert inside >= 8
    # Removing a member by keyboard: the row goes, and focus moves to the Username field
    # (no other member has a control), not to the page's body.
    press_until(page, "Tab", "e.classList.contains('member-remove')")
    page.keyboard.press("Enter")
    expect(dialog.locator(".members li")).to_have_count(1)
    expect(dialog.get_by_label("Username")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(page.locator(".list-bar button[name=share]")).to_be_focused()

    # Delete, confirmed by keyboard (the confirmation takes focus on Cancel, the safe choice).
    # Cancel, by Enter on it or by Escape, puts focus back on "Delete list" and deletes nothing.
    delete = page.locator(".list-bar button[name=delete-list]")
    cancel = page.locator("button[name=cancel-delete]")
    press_until(page, "Tab", "e.name === 'delete-list'")
    for key in ("Enter", "Escape"):
        page.keyboard.press("Enter")
        expect(cancel).to_be_focused()
        page.keyboard.press(key)
        expect(cancel).to_have_count(0)
        expect(delete).to_be_focused()
    assert "Renamed by keys" in lists_of(alice)
    page.keyboard.press("Enter")
    expect(cancel).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(page.locator("button[name=confirm-delete]")).to_be_focused()
    page.keyboard.press("Enter")
    expect(nav_links(tab)).to_have_text(["Todos"])
    assert list(lists_of(alice)) == ["Todos"]


def test_a_quick_tab_after_closing_the_share_dialog_keeps_its_place(server, tabs, alice):
    """Closing the dialog used to hand focus back to Share twice: at once, and again when
    the browser's late `close` event reached the unmounted dialog. A Tab pressed in
    between (a fast typist; about one time in four here) was undone, and the next Enter
    opened the dialog again. Thirty rounds, each asserting where the Tab landed."""
    tab = tabs(server, alice)
    page = tab.open()
    page.fill("nav.lists input[name=new-list]", "Quick keys")
    page.press("nav.lists input[name=new-list]", "Enter")
    expect(page.locator(".list-bar .list-title")).to_have_text("Quick keys")
    share_button = page.locator(".list-bar button[name=share]")
    dialog = page.locator("dialog.share-dialog")
    landed = []
    for _ in range(30):
        share_button.focus()
        page.keyboard.press("Enter")
        expect(dialog.get_by_label("Username")).to_be_focused()
        page.keyboard.press("Escape")
        page.keyboard.press("Tab")
        expect(dialog).to_have_count(0)
        page.wait_for_timeout(50)  # long enough for a late close event to steal focus back
        landed.append(page.evaluate("() => document.activeElement.name"))
    assert landed == ["delete-list"] * 30
