"""Browser-test support: Debian's Chromium driven by Playwright, one context per user/tab."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

from playwright.sync_api import Browser, Locator, Page, Playwright, expect

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PASSWORD = "correct horse"
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
        expect(self.page.locator(".session-bar .unsent")).to_have_count(0, timeout=timeout)
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
