"""Browser-test support: Debian's Chromium driven by Playwright, one context per user/tab."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Locator, Page, Playwright, expect, sync_playwright

from tests.support import PASSWORD, Api, ServerProcess

CHROMIUM = "/usr/bin/chromium"
AXE_SCRIPT = Path(__file__).resolve().parent.parent / "static" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SESSION_COOKIE = "todopy_session"
# Chromium logs every non-2xx fetch as a console error; these are the ones a test expects.
RESOURCE_ERROR = re.compile(r"^Failed to load resource: the server responded with a status of (\d{3})\b")


def launch(playwright: Playwright) -> Browser:
    """Headless Debian Chromium; nothing is ever downloaded (no `playwright install`)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


class Tab:
    """One browser context with one page, recording what the page logged and requested."""

    def __init__(self, browser: Browser, base_url: str, token: str | None = None) -> None:
        self.base_url = base_url
        self.context = browser.new_context(base_url=base_url, viewport={"width": 760, "height": 640})
        if token:
            # The same token as the HttpOnly session cookie the server would set on sign-in.
            self.context.add_cookies([{"name": SESSION_COOKIE, "value": token, "url": base_url,
                                       "httpOnly": True, "sameSite": "Lax"}])
        self.page: Page = self.context.new_page()
        self.console: list[tuple[str, str]] = []      # (type, text)
        self.page_errors: list[str] = []              # uncaught exceptions
        self.requests: list[tuple[str, str]] = []     # (method, url), WebSockets as ("WEBSOCKET", url)
        self.responses = []
        self.page.on("console", lambda message: self.console.append((message.type, message.text)))
        self.page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        self.page.on("request", lambda request: self.requests.append((request.method, request.url)))
        self.page.on("websocket", lambda ws: self.requests.append(("WEBSOCKET", ws.url)))
        self.page.on("response", lambda response: self.responses.append(response))

    # -- navigation ----------------------------------------------------------------

    def open(self, path: str = "/") -> Page:
        """Load the app signed in (cookie) and wait until the stream is live."""
        self.page.goto(path)
        expect(self.status).to_have_attribute("data-status", "live")
        return self.page

    def open_signed_out(self, path: str = "/"):
        response = self.page.goto(path)
        expect(self.page.locator("section.auth")).to_be_visible()
        return response

    def sign_in(self, username: str, password: str = PASSWORD, button: str = "signin") -> None:
        """Fill the form and press `button` (signin, or signup: switching the form to sign-up first)."""
        switch = self.page.locator("button[name=to-signup]" if button == "signup" else "button[name=to-signin]")
        if switch.count():
            switch.click()
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", password)
        self.page.click(f"button[name={button}]")

    def saved(self, timeout: float = 10_000) -> None:
        """Wait until every write the page made has been answered by the server (none pending)."""
        expect(self.page.locator(".session-bar")).to_have_attribute("data-unsent", "0", timeout=timeout)
        expect(self.page.locator(".todo-list li.pending")).to_have_count(0, timeout=timeout)

    # -- locators ------------------------------------------------------------------

    @property
    def status(self) -> Locator:
        return self.page.locator(".session-bar .status")

    @property
    def items(self) -> Locator:
        return self.page.locator(".todo-list li")

    @property
    def labels(self) -> Locator:
        return self.page.locator(".todo-list li label")

    def item(self, title: str) -> Locator:
        """The li whose label is exactly `title`."""
        return self.items.filter(has=self.page.get_by_text(title, exact=True))

    def add(self, title: str) -> None:
        """Type a todo into .new-todo and press Enter (the caller waits for the result)."""
        self.page.fill(".new-todo", title)
        self.page.press(".new-todo", "Enter")

    # -- what happened -----------------------------------------------------------------

    def calls(self, method: str, path: str, query: str = "") -> list[str]:
        """URLs of the requests with this method, path and query string."""
        return [url for m, url in self.requests
                if m == method and urlsplit(url).path == path and urlsplit(url).query == query]

    def console_errors(self, allowed_statuses: tuple[int, ...] = ()) -> list[str]:
        """Console errors, minus 'Failed to load resource' lines for the allowed statuses."""
        errors = []
        for kind, text in self.console:
            if kind != "error":
                continue
            match = RESOURCE_ERROR.match(text)
            if match and int(match.group(1)) in allowed_statuses:
                continue
            errors.append(text)
        return errors

    def close(self) -> None:
        self.context.close()


def wait_painted(page: Page, script: str, arg=None, timeout: float = 5000) -> float:
    """Poll `script` (a JS predicate over `arg`) on every animation frame; the Date.now()
    (epoch ms) of the first frame in which it held, i.e. the frame that paints it."""
    handle = page.wait_for_function(f"arg => (({script})(arg)) ? Date.now() : false", arg=arg,
                                    polling="raf", timeout=timeout)
    return float(handle.json_value())


HAS_LABEL = "title => [...document.querySelectorAll('.todo-list li label')].some(l => l.textContent === title)"
NO_LABEL = "title => ![...document.querySelectorAll('.todo-list li label')].some(l => l.textContent === title)"
COMPLETED_LABEL = ("title => [...document.querySelectorAll('.todo-list li.completed label')]"
                   ".some(l => l.textContent === title)")

# Records, from now on, the fewest `.todo-list li` the page ever had after any DOM change.
WATCH_MIN_ITEMS = """() => {
  const count = () => document.querySelectorAll('.todo-list li').length;
  window.__minItems = count();
  window.__mutations = 0;
  new MutationObserver(() => {
    window.__mutations += 1;
    window.__minItems = Math.min(window.__minItems, count());
  }).observe(document.body, {childList: true, subtree: true, attributes: true, characterData: true});
}"""


# -- fixtures (imported by the browser test modules) ------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def tabs(browser: Browser) -> Iterator[Callable[..., Tab]]:
    """`tabs(server_or_url, api=None)`: a new context (signed in as `api` by its session cookie)."""
    opened: list[Tab] = []

    def open_tab(where: ServerProcess | str, api: Api | None = None) -> Tab:
        base_url = where if isinstance(where, str) else where.base_url
        tab = Tab(browser, base_url, api.token if api else None)
        opened.append(tab)
        return tab

    yield open_tab
    for tab in opened:
        tab.close()
    # Whatever a test expected, the app must never throw or break its own CSP.
    for tab in opened:
        assert tab.page_errors == [], tab.page_errors
        assert not [text for _, text in tab.console if "Content Security Policy" in text], tab.console


# -- accessibility ------------------------------------------------------------------------


def axe_violations(page: Page, context: str = "document") -> list[dict]:
    """Run axe-core (the npm devDependency) in the page; every violation, with impact and targets.

    Injected through the DevTools protocol rather than a <script> tag, which the
    page's own CSP would rightly refuse."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_SCRIPT.read_text())
    return page.evaluate("""async (context) => {
        const where = context === 'document' ? document : document.querySelector(context);
        // WCAG 2.2 AA (target size included) and axe's best practices.
        const result = await axe.run(where, {runOnly: {type: 'tag', values:
            ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']}});
        return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                            nodes: v.nodes.map(n => n.target.join(' '))}));
    }""", context)


def serious(violations: list[dict]) -> list[dict]:
    return [v for v in violations if v["impact"] in ("serious", "critical")]


# A WebSocket that never connects, as behind a proxy that drops upgrades (the
# browser reports such a failure as a close with code 1006 and no open).
BLOCK_WEBSOCKETS = """(() => {
  window.WebSocket = class BlockedWebSocket extends EventTarget {
    constructor(url) {
      super();
      this.url = String(url);
      this.readyState = 0;
      setTimeout(() => {
        this.readyState = 3;
        this.onerror?.(new Event('error'));
        this.onclose?.({code: 1006, reason: '', wasClean: false});
      }, 20);
    }
    send() {}
    close() {}
  };
})()"""

# fetch answered `ms` later than the server answers: a slow server, seen from the page.
def slow_fetch(ms: int) -> str:
    return f"""(() => {{
  const real = window.fetch.bind(window);
  window.fetch = (...args) => new Promise(resolve => setTimeout(resolve, {ms})).then(() => real(...args));
}})()"""


def click_until_painted(page: Page, selector: str, predicate: str, timeout_ms: int = 20_000) -> float:
    """Click `selector` from inside the page and return the ms until the first animation
    frame in which `predicate` (JS, no arguments) holds: the frame that paints it. All
    timing happens in the page, so no protocol round trip is counted."""
    return act_until_painted(page, f"() => document.querySelector({selector!r}).click()", predicate, timeout_ms)


def act_until_painted(page: Page, action: str, predicate: str, timeout_ms: int = 20_000) -> float:
    """Run `action` (JS, no arguments) in the page; ms until the frame that paints `predicate`."""
    return page.evaluate("""async ([action, predicate, timeout]) => {
        const holds = new Function('return (' + predicate + ')()');
        const started = performance.now();
        const painted = new Promise((resolve, reject) => {
            const check = () => {
                if (holds()) return resolve(performance.now() - started);
                if (performance.now() - started > timeout) return reject(new Error('not painted: ' + predicate));
                requestAnimationFrame(check);
            };
            requestAnimationFrame(check);
        });
        new Function('return (' + action + ')()')();
        return painted;
    }""", [action, predicate, timeout_ms])
