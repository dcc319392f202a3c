"""The AI Assistant's chat page as a person uses it, in headless Chromium.

Against a real all-in-one ``xynergy serve`` on SQLite with the offline AI
provider: sign in with an API key (exchanged for the session cookie), send a
message and watch the reply stream in, ask for trending keywords and a campaign,
confirm the proposed action and see the campaign it made, reload and find the
history and the session, sign out. Throughout: no console error, no
Content-Security-Policy violation, no request to another host, and the key
nowhere the page's scripts could read it back.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.pages import RENDER_TIMEOUT_MS, PageWatch
from tests.live_server import LiveServer, live_server

pytestmark = pytest.mark.browser

APP = "/ai-assistant"
VIEWPORT = {"width": 1280, "height": 900}
ASK = "which of my keywords are trending and draft a campaign for the top three"
# What the assistant's tools need for ASK, besides chatting (tests/ai_assistant/tools_support.py).
SCOPES = (
    "assistant:chat",
    "ai:generate",
    "keywords:read",
    "workflows:read",
    "ai:usage",
    "campaigns:read",
    "campaigns:write",
    "workflows:write",
)
HEX_ID = re.compile(r"[0-9a-f]{32}")
PAGE_SIZE = 20  # the page's (chat.js)
# The reply is done when its usage line shows; a workflow when its action says so.
REPLY_TIMEOUT_MS = 60_000
WORKFLOW_TIMEOUT_MS = 90_000

# Lengths of the reply's text at every change the page makes to it. The offline
# provider streams a reply as ~14 deltas of four words within milliseconds, so one
# network read often holds them all and sampling the text over time would see one
# length; MutationObserver's records keep every change instead (the text of the
# nodes each one added), so a reply rendered delta by delta leaves a rising series
# and one rendered at the end leaves a single length.
_RECORD_REPLY_LENGTHS = """
() => {
  window.__replyLengths = [];
  const list = document.getElementById("messages");
  const observer = new MutationObserver((records) => {
    for (const record of records) {
      const body = record.target.closest && record.target.closest(".message.assistant .body");
      if (!body) continue;
      const added = Array.from(record.addedNodes).map((node) => node.textContent).join("");
      window.__replyLengths.push(added.length);
    }
  });
  observer.observe(list, { childList: true, subtree: true });
}
"""


@pytest.fixture(scope="module")
def server(chromium: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # Asks for the browser first, so a missing one skips before a server starts.
    with live_server({}, data_dir=tmp_path_factory.mktemp("browser-chat")) as running:
        yield running


@pytest.fixture
def watch(chromium: Browser, server: LiveServer) -> Iterator[tuple[Page, PageWatch]]:
    """A fresh context (no cookie, empty storage) and what went wrong in it."""
    context = chromium.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    context.set_default_timeout(RENDER_TIMEOUT_MS)
    watcher = PageWatch(server.base_url)
    try:
        yield watcher.attach(context), watcher
    finally:
        context.close()


def call(server: LiveServer, method: str, path: str, key: str, body: Any) -> Any:
    request = urllib.request.Request(  # noqa: S310 - loopback
        server.base_url + path,
        data=json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:  # noqa: S310 - loopback
        return json.load(response)


def seed_trending(server: LiveServer, tenant: str) -> None:
    """Three tracked keywords of ``tenant`` that climbed over the last week."""
    seeder = server.issue_key(tenant=tenant, scopes=("keywords:write",))
    today = datetime.now(UTC).date()
    observations = []
    for rank, phrase in enumerate(("trail shoes", "yoga mats", "ski wax")):
        keyword = call(
            server,
            "POST",
            "/aso-engine/api/keywords",
            seeder,
            {"phrase": phrase, "locale": "en-US"},
        )
        for days, position in ((7, 60 + rank), (0, 5 + rank * 10)):
            observations.append(
                {
                    "keyword_id": keyword["id"],
                    "engine": "google",
                    "locale": "en-US",
                    "position": position,
                    "observed_on": (today - timedelta(days=days)).isoformat(),
                }
            )
    call(server, "POST", "/aso-engine/api/rankings", seeder, {"observations": observations})


def expected_signed_out(session_url: str) -> set[str]:
    """What a signed-out page load reports by design: GET /session answers 401
    (Chromium logs every 4xx fetch as a console error)."""
    return {
        f"HTTP 401: {session_url}",
        "console error: Failed to load resource: the server responded with a status of "
        "401 (Unauthorized)",
    }


def problems(watcher: PageWatch, server: LiveServer, app: str = APP) -> list[str]:
    """What went wrong, apart from the expected 401 and the requests a test's own
    reload cut short (the page aborts none itself: it has no AbortController, and
    the favicon or a list refresh may still be loading when the test reloads)."""
    allowed = expected_signed_out(f"{server.base_url}{app}/session")
    return [
        problem
        for problem in watcher.problems
        if problem not in allowed
        and not (problem.startswith("request failed: ") and problem.endswith("(net::ERR_ABORTED)"))
    ]


def shot(page: Page, directory: Path, name: str) -> None:
    page.screenshot(path=str(directory / f"{name}.png"), full_page=True)


def sign_in(page: Page, server: LiveServer, key: str) -> None:
    page.goto(f"{server.base_url}{APP}/")
    expect(page.get_by_label("API key")).to_be_visible()
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#workspace")).to_be_visible()
    expect(page.get_by_label("API key")).to_have_value("")


def send(page: Page, text: str) -> None:
    box = page.get_by_label("Message", exact=True)
    box.fill(text)
    box.press("Enter")


def replies_done(page: Page, count: int) -> None:
    """``count`` replies shown, and the page done with the turn (the list refreshed)."""
    expect(page.locator(".message.assistant .usage")).to_have_count(count, timeout=REPLY_TIMEOUT_MS)
    expect(page.locator("#composer")).to_have_attribute("aria-busy", "false")


def key_is_nowhere(page: Page, key: str) -> None:
    stored = page.evaluate(
        """() => [
          document.cookie,
          JSON.stringify(Object.assign({}, window.localStorage)),
          JSON.stringify(Object.assign({}, window.sessionStorage)),
          document.documentElement.outerHTML,
        ]"""
    )
    for place in stored:
        assert key not in place


class TestChatPage:
    def test_sign_in_stream_confirm_reload_sign_out(
        self, server: LiveServer, watch: tuple[Page, PageWatch], screenshot_dir: Path
    ) -> None:
        page, watcher = watch
        seed_trending(server, "chat-acme")
        key = server.issue_key(tenant="chat-acme", scopes=SCOPES)

        sign_in(page, server, key)
        key_is_nowhere(page, key)
        cookies = {cookie["name"]: cookie for cookie in page.context.cookies()}
        assert cookies["xynergy_session"]["httpOnly"] is True
        assert cookies["xynergy_session"]["sameSite"] == "Strict"

        # A reply streams: the page shows it growing, not all at once.
        page.evaluate(_RECORD_REPLY_LENGTHS)
        send(page, "Suggest blog topics about trail running shoes for beginners")
        replies_done(page, 1)
        lengths: list[int] = page.evaluate("window.__replyLengths")
        assert len(set(lengths)) > 1, lengths
        assert lengths == sorted(lengths), lengths
        expect(page.locator(".message.user")).to_have_count(1)
        expect(page.locator(".message.assistant .body").first).not_to_be_empty()
        expect(page.locator(".message.assistant .usage").first).to_contain_text("$")

        # Tools: the trending read runs, the campaign is proposed, confirmed, done.
        send(page, ASK)
        action = page.locator(".action").first
        expect(action).to_be_visible(timeout=REPLY_TIMEOUT_MS)
        tools = page.locator(".message.tool")
        expect(tools.first.locator("summary")).to_have_text("Tool: trending_keywords")
        expect(tools.first.locator(".result")).to_contain_text("trail shoes")
        replies_done(page, 2)
        shot(page, screenshot_dir, "chat-proposed")
        action.get_by_role("button", name=re.compile("^Confirm")).click()
        expect(action).to_have_attribute("data-status", "succeeded", timeout=WORKFLOW_TIMEOUT_MS)
        campaign = action.get_attribute("data-campaign-id")
        assert campaign is not None
        assert HEX_ID.fullmatch(campaign), campaign
        expect(action.locator(".action-status")).to_contain_text(campaign)
        shot(page, screenshot_dir, "chat-light")

        usage = page.locator(".message.assistant .usage").all_inner_texts()

        # A reload keeps the session (the cookie) and the history (the server's).
        page.reload()
        expect(page.locator("#workspace")).to_be_visible()
        expect(page.locator("#sign-in")).to_be_hidden()
        expect(page.locator(".message.user")).to_have_count(2)
        expect(page.locator(".message.user").last).to_contain_text(ASK)
        expect(page.locator(".action").first).to_contain_text(campaign)
        # Each turn's usage as it streamed: the history adds up a turn's rounds.
        expect(page.locator(".message.assistant .usage")).to_have_text(usage)
        expect(page.locator("#conversation-list button[aria-current=true]")).to_have_count(1)
        key_is_nowhere(page, key)

        page.get_by_role("button", name=re.compile("^Theme")).click()  # system -> light
        page.get_by_role("button", name=re.compile("^Theme")).click()  # light -> dark
        assert page.evaluate("document.documentElement.dataset.theme") == "dark"
        shot(page, screenshot_dir, "chat-dark")
        page.reload()
        expect(page.locator("#workspace")).to_be_visible()
        assert page.evaluate("document.documentElement.dataset.theme") == "dark"
        expect(page.locator(".message.user")).to_have_count(2)

        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_label("API key")).to_be_visible()
        expect(page.locator("#workspace")).to_be_hidden()
        page.reload()
        expect(page.get_by_label("API key")).to_be_visible()
        assert "xynergy_session" not in {cookie["name"] for cookie in page.context.cookies()}
        key_is_nowhere(page, key)
        assert problems(watcher, server) == []

    def test_keyboard_reaches_the_message_box_and_send(
        self, server: LiveServer, watch: tuple[Page, PageWatch]
    ) -> None:
        page, watcher = watch
        key = server.issue_key(tenant="chat-keys", scopes=SCOPES)
        page.goto(f"{server.base_url}{APP}/")
        expect(page.get_by_label("API key")).to_be_visible()
        page.get_by_label("API key").focus()
        page.keyboard.type(key)
        page.keyboard.press("Enter")
        expect(page.locator("#workspace")).to_be_visible()
        # From the top of a fresh load (still signed in), as a keyboard user starts.
        page.reload()
        expect(page.locator("#workspace")).to_be_visible()
        reached = []
        for _ in range(40):  # bounded: the page has far fewer stops than this
            page.keyboard.press("Tab")
            focused = page.evaluate("document.activeElement && document.activeElement.id")
            reached.append(focused)
            if focused == "send":
                break
        assert "message" in reached, reached
        assert reached[-1] == "send", reached
        assert reached.index("message") == len(reached) - 2
        # Shift+Enter is a new line, Enter sends.
        page.get_by_label("Message", exact=True).focus()
        page.keyboard.type("first line")
        page.keyboard.press("Shift+Enter")
        page.keyboard.type("second line")
        expect(page.get_by_label("Message", exact=True)).to_have_value("first line\nsecond line")
        page.keyboard.press("Enter")
        replies_done(page, 1)
        expect(page.locator(".message.user .body")).to_contain_text("second line")
        assert problems(watcher, server) == []

    def test_markup_in_messages_is_shown_as_text(
        self, server: LiveServer, watch: tuple[Page, PageWatch]
    ) -> None:
        page, watcher = watch
        sign_in(page, server, server.issue_key(tenant="chat-hostile", scopes=SCOPES))
        image = "<img src=https://tracker.example/x.png onerror=alert(1)>"
        styled = '<span style="color:red" onclick="alert(2)">styled</span>'
        script = "<script>window.__owned = 1</script>"
        picture = "![pixel](https://tracker.example/pixel.png)"
        hostile = f"**bold** {image} {styled} {script} [a](javascript:alert(3)) {picture}"
        send(page, hostile)
        replies_done(page, 1)
        body = page.locator(".message.user .body")
        expect(body.locator("strong")).to_have_text("bold")  # Markdown is rendered
        expect(body).to_contain_text(image)  # HTML is shown as typed, not run
        expect(body).to_contain_text(styled)
        assert body.locator("img, script, span, [style], [onclick], [onerror]").count() == 0
        assert page.locator(".message a[href^='javascript']").count() == 0
        expect(body.locator("a", has_text="pixel")).to_have_attribute(
            "href", "https://tracker.example/pixel.png"
        )
        assert page.evaluate("window.__owned") is None
        assert page.locator(".message [style]").count() == 0
        assert problems(watcher, server) == []  # no CSP violation, no other host

    def test_rename_search_and_delete_conversations(
        self, server: LiveServer, watch: tuple[Page, PageWatch], screenshot_dir: Path
    ) -> None:
        page, watcher = watch
        sign_in(page, server, server.issue_key(tenant="chat-list", scopes=SCOPES))
        send(page, "Ideas for a spring newsletter")
        replies_done(page, 1)
        page.get_by_role("button", name="New conversation").click()
        send(page, "Keyword ideas for trail running")
        replies_done(page, 1)
        items = page.locator("#conversation-list li")
        expect(items).to_have_count(2)

        page.get_by_role("button", name="Rename").click()
        page.get_by_label("New title").fill("Trail plans: Q&A, 3 < 4")
        page.get_by_label("New title").press("Enter")
        # Shown as typed (the API stores it escaped), never as markup.
        expect(page.locator("#conversation-title")).to_have_text("Trail plans: Q&A, 3 < 4")
        expect(items.first).to_contain_text("Trail plans: Q&A, 3 < 4")
        page.get_by_role("button", name="Rename").click()
        expect(page.get_by_label("New title")).to_have_value("Trail plans: Q&A, 3 < 4")
        page.get_by_role("button", name="Cancel").click()

        page.get_by_label("Search titles").fill("newsletter")
        expect(items).to_have_count(1)
        expect(items.first).to_contain_text("spring newsletter")
        page.get_by_label("Search titles").fill("")
        expect(items).to_have_count(2)

        page.get_by_role("button", name="Delete").click()
        expect(page.locator("#delete-confirm")).to_be_visible()
        page.locator("#delete-no").click()
        expect(items).to_have_count(2)
        page.get_by_role("button", name="Delete").click()
        page.locator("#delete-yes").click()
        expect(items).to_have_count(1)
        expect(page.locator("#conversation-title")).to_have_text("New conversation")
        items.first.get_by_role("button").click()
        expect(page.locator(".message.user")).to_contain_text("spring newsletter")
        shot(page, screenshot_dir, "chat-list")
        assert problems(watcher, server) == []

    def test_long_lists_load_in_pages(
        self, server: LiveServer, watch: tuple[Page, PageWatch]
    ) -> None:
        page, watcher = watch
        key = server.issue_key(tenant="chat-pages", scopes=SCOPES)
        conversations = f"{APP}/api/conversations"
        long = call(server, "POST", conversations, key, {"title": "Long one"})
        for turn in range(PAGE_SIZE // 2 + 1):  # two messages a turn: one page and more
            call(
                server,
                "POST",
                f"{conversations}/{long['id']}/messages",
                key,
                {"message": f"turn {turn}"},
            )
        for number in range(PAGE_SIZE):
            call(server, "POST", conversations, key, {"title": f"Other {number}"})
        sign_in(page, server, key)
        items = page.locator("#conversation-list li")
        expect(items).to_have_count(PAGE_SIZE)
        page.get_by_role("button", name="Load more conversations").click()
        expect(items).to_have_count(PAGE_SIZE + 1)
        expect(page.get_by_role("button", name="Load more conversations")).to_be_hidden()
        items.filter(has_text="Long one").get_by_role("button").click()
        messages = page.locator("#messages > li")
        expect(messages).to_have_count(PAGE_SIZE)
        expect(messages.first).not_to_contain_text("turn 0")
        page.get_by_role("button", name="Load older messages").click()
        expect(page.locator(".message.user")).to_have_count(PAGE_SIZE // 2 + 1)
        expect(page.locator(".message.user").first).to_contain_text("turn 0")  # oldest at top
        expect(page.locator(".message.user").last).to_contain_text(f"turn {PAGE_SIZE // 2}")
        expect(page.get_by_role("button", name="Load older messages")).to_be_hidden()
        assert problems(watcher, server) == []

    def test_a_wrong_key_is_refused_accessibly(
        self, server: LiveServer, watch: tuple[Page, PageWatch], screenshot_dir: Path
    ) -> None:
        page, watcher = watch
        page.goto(f"{server.base_url}{APP}/")
        page.get_by_label("API key").fill("xyn_not_a_real_key_" + "0" * 32)
        page.get_by_role("button", name="Sign in").click()
        alert = page.get_by_role("alert").filter(has_text=re.compile(r"\w"))
        expect(alert).to_be_visible()
        expect(page.get_by_label("API key")).to_have_value("")
        expect(page.locator("#workspace")).to_be_hidden()
        shot(page, screenshot_dir, "chat-sign-in-refused")
        refused = f"HTTP 401: {server.base_url}{APP}/session"
        assert [p for p in problems(watcher, server) if p != refused] == []


class TestStandaloneAssistant:
    def test_chats_at_the_root_when_served_alone(
        self, chromium: Browser, tmp_path: Path, screenshot_dir: Path
    ) -> None:
        # The page finds its API from where it is served: "" here, /ai-assistant above.
        with live_server(
            {}, data_dir=tmp_path / "standalone", serve_args=("--service", "ai-assistant")
        ) as alone:
            context = chromium.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
            context.set_default_timeout(RENDER_TIMEOUT_MS)
            watcher = PageWatch(alone.base_url)
            try:
                page = watcher.attach(context)
                page.goto(alone.base_url + "/")
                expect(page.locator("#chat")).to_have_attribute("data-app-root", "")
                page.get_by_label("API key").fill(alone.issue_key(tenant="alone", scopes=SCOPES))
                page.get_by_role("button", name="Sign in").click()
                # Alone, it has no AI Routing Engine to answer: sign-in and the
                # conversations are what the page's own prefix decides.
                expect(page.locator("#workspace")).to_be_visible()
                expect(page.locator("#no-conversations")).to_be_visible()
                assert f"{alone.base_url}/api/conversations?limit=20" in watcher.requested
                shot(page, screenshot_dir, "chat-standalone")
                assert problems(watcher, alone, app="") == []
            finally:
                context.close()
