"""The Platform Dashboard's Workflows page in headless Chromium: a run started from the
API shows on the page, and its steps change live from the runtime's event stream.

Against a real all-in-one ``xynergy serve`` on SQLite with the offline AI provider:
a tenant's key starts the built-in ``campaign-from-research`` run, which waits at
its approval step; the page (signed in with the same key: metrics:read,
workflows:read, workflows:write and the run's own scopes) lists it, counts it
(the runtime's exact counts), opens its steps, and when Approve is clicked on the
waiting step (a POST with the session's CSRF header) the steps after it turn to
succeeded on the page without a reload. A session without
workflows:read gets a note and calls nothing of the runtime; "load more" walks the
cursor. Throughout: no console error, no CSP violation, no other host.
Screenshots: ``dashboard-workflows*.png``.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.pages import RENDER_TIMEOUT_MS, PageWatch
from tests.browser.test_chat_page import shot
from tests.browser.test_dashboard_pages import (
    VIEWPORT,
    call,
    next_refresh,
    open_page,
    problems,
    set_theme,
    sign_in,
)
from tests.live_server import LiveServer, live_server

pytestmark = pytest.mark.browser

RUNTIME = "/system-runtime"
READER_SCOPES = ("metrics:read", "workflows:read", "workflows:write")
# What campaign-from-research's steps call (a run acts with its starter's scopes).
RUN_SCOPES = (
    "marketing:research",
    "keywords:read",
    "keywords:write",
    "ai:generate",
    "campaigns:read",
    "campaigns:write",
)
CAMPAIGN_INPUT = {
    "seeds": ["trail running"],
    "locale": "en-US",
    "track": ["trail running shoes"],
    "campaign": {
        "business_type": "ecommerce",
        "industry": "sports",
        "goals": ["Sell 300 pairs"],
        "channels": ["email", "search"],
        "audience": "Trail runners",
        "starts_on": "2027-05-01",
        "ends_on": "2027-05-31",
        "budget": "2000.00",
    },
}
BEFORE_APPROVAL = ("research", "track", "campaign")
AFTER_APPROVAL = ("approve", "activate")
RUN_WAIT_SECONDS = 120  # a shared 2-core machine; the run takes seconds alone
RUN_POLL_SECONDS = 0.25
PAGE_SIZE = 20  # dashboard_workflows.js's runs per "load more"


@pytest.fixture(scope="module")
def server(chromium: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # Asks for the browser first, so a missing one skips before a server starts.
    with live_server({}, data_dir=tmp_path_factory.mktemp("browser-workflows")) as running:
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


def start(server: LiveServer, key: str, definition: str, run_input: dict[str, Any]) -> str:
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{server.base_url}{RUNTIME}/api/workflows/start",
        data=json.dumps({"definition": definition, "input": run_input}).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Idempotency-Key": f"browser-workflows-{uuid.uuid4()}",
        },
    )
    with urllib.request.urlopen(request) as response:  # noqa: S310 - loopback
        run_id: str = json.load(response)["id"]
    return run_id


def run_until(server: LiveServer, key: str, run_id: str, *statuses: str) -> dict[str, Any]:
    deadline = time.monotonic() + RUN_WAIT_SECONDS
    while True:
        run: dict[str, Any] = call(server, "GET", f"{RUNTIME}/api/workflows/{run_id}", key)
        if run["status"] in statuses:
            return run
        assert run["status"] not in ("failed", "cancelled"), run
        assert time.monotonic() < deadline, f"run {run_id} never reached {statuses}: {run}"
        time.sleep(RUN_POLL_SECONDS)


def step_row(page: Page, step_id: str) -> Any:
    return page.locator(f"#wf-steps tr[data-step='{step_id}']")


class TestWorkflowsPage:
    def test_a_run_s_steps_progress_live_without_a_reload(
        self, server: LiveServer, watch: tuple[Page, PageWatch], screenshot_dir: Path
    ) -> None:
        page, watcher = watch
        key = server.issue_key(tenant="wf-acme", scopes=(*READER_SCOPES, *RUN_SCOPES))
        run_id = start(server, key, "campaign-from-research", CAMPAIGN_INPUT)
        waiting = run_until(server, key, run_id, "waiting")
        assert [step["status"] for step in waiting["steps"]][:4] == [
            "succeeded",
            "succeeded",
            "succeeded",
            "waiting",
        ], waiting

        sign_in(page, server, key)
        open_page(page, "workflows")
        row = page.locator(f"#wf-runs tr[data-run='{run_id}']")
        expect(row).to_have_attribute("data-status", "waiting")
        expect(page.locator("#wf-note")).to_be_hidden()
        # Runs by status: this tenant's one waiting run; the queue figure is the status API's.
        expect(page.locator("#wf-waiting")).to_have_attribute("data-value", "1")
        expect(page.locator("#wf-total")).to_have_attribute("data-value", "1")
        queues = call(server, "GET", "/platform-dashboard/api/status", key)["queues"]
        assert queues["status"] == "up", queues
        expect(page.locator("#wf-queued")).to_have_attribute(
            "data-value", str(sum(queue["queued"] for queue in queues["queues"]))
        )
        expect(page.locator("#wf-queues tr[data-queue]")).to_have_count(len(queues["queues"]))

        # Open the run from the keyboard: its steps as the stream's snapshot tells them.
        page.locator(f"#wf-runs button[data-run='{run_id}']").focus()
        page.keyboard.press("Enter")
        expect(page.locator("#wf-run")).to_have_attribute("data-live", "open")
        for step_id in BEFORE_APPROVAL:
            expect(step_row(page, step_id)).to_have_attribute("data-status", "succeeded")
        expect(step_row(page, "approval")).to_have_attribute("data-status", "waiting")
        for step_id in AFTER_APPROVAL:
            expect(step_row(page, step_id)).to_have_attribute("data-status", "pending")
        expect(page.locator("#wf-run-status")).to_have_attribute("data-status", "waiting")

        # Approve on the page; it hears each step's change and the end from the stream.
        decision = page.locator("#wf-decisions .wf-decision[data-step='approval']")
        expect(decision).to_be_visible()
        shot(page, screenshot_dir, "dashboard-workflows-approval")
        page.evaluate("window.__sameDocument = true")
        page.get_by_label("Reason (optional)").fill("Budget agreed")
        page.get_by_role("button", name="Approve step approval").click()
        expect(page.locator("#wf-decision-note")).to_have_attribute("data-outcome", "approve")
        expect(decision).to_have_count(0)
        for step_id in ("approval", *AFTER_APPROVAL):
            expect(step_row(page, step_id)).to_have_attribute("data-status", "succeeded")
            expect(
                page.locator(f"#wf-events li[data-type='step.succeeded'][data-step='{step_id}']")
            ).to_have_count(1)
        expect(
            page.locator("#wf-events li[data-type='run.finished'][data-status='succeeded']")
        ).to_have_count(1)
        expect(page.locator("#wf-run-status")).to_have_attribute("data-status", "succeeded")
        expect(page.locator("#wf-run")).to_have_attribute("data-live", "ended")
        assert page.evaluate("window.__sameDocument") is True  # no reload happened
        # The list and the figures follow at the next refreshes.
        expect(row).to_have_attribute("data-status", "succeeded")
        expect(page.locator("#wf-succeeded")).to_have_attribute("data-value", "1")
        finished = run_until(server, key, run_id, "succeeded")
        approval = next(s for s in finished["steps"] if s["id"] == "approval")
        assert "Budget agreed" in approval["output_summary"], approval
        expect(step_row(page, "activate").locator("td").nth(4)).to_have_text(
            str(next(s for s in finished["steps"] if s["id"] == "activate")["attempts"])
        )

        set_theme(page, "light")
        shot(page, screenshot_dir, "dashboard-workflows")
        set_theme(page, "dark")
        shot(page, screenshot_dir, "dashboard-workflows-dark")
        set_theme(page, "light")
        assert problems(watcher, server) == []

    def test_without_workflows_read_the_page_says_so(
        self, server: LiveServer, watch: tuple[Page, PageWatch]
    ) -> None:
        page, watcher = watch
        sign_in(page, server, server.issue_key(tenant="wf-metrics", scopes=("metrics:read",)))
        open_page(page, "workflows")
        expect(page.locator("#wf-note")).to_be_visible()
        expect(page.locator("#wf-note")).to_contain_text("workflows:read")
        expect(page.locator("#wf-body")).to_be_hidden()
        next_refresh(page)
        assert not [url for url in watcher.requested if RUNTIME in url]
        assert problems(watcher, server) == []

    def test_load_more_walks_the_cursor(
        self, server: LiveServer, watch: tuple[Page, PageWatch]
    ) -> None:
        page, watcher = watch
        key = server.issue_key(tenant="wf-many", scopes=(*READER_SCOPES, "content:write"))
        runs = [
            start(
                server,
                key,
                "create-content",
                {"content": {"title": f"Post {number}", "body": "Trail shoes, reviewed."}},
            )
            for number in range(PAGE_SIZE + 1)
        ]
        sign_in(page, server, key)
        open_page(page, "workflows")
        expect(page.locator("#wf-runs tr[data-run]")).to_have_count(PAGE_SIZE)
        # Newest first: the first run started is the one past the first page.
        expect(page.locator(f"#wf-runs tr[data-run='{runs[0]}']")).to_have_count(0)
        expect(page.locator("#wf-total")).to_have_attribute("data-value", str(len(runs)))
        # The figures are the runtime's exact counts, not a count of the listed page.
        counted = call(server, "GET", f"{RUNTIME}/api/workflow-counts", key)
        assert counted["total"] == len(runs), counted
        assert any(f"{RUNTIME}/api/workflow-counts?since=" in url for url in watcher.requested)
        page.get_by_role("button", name="Load more runs").click()
        expect(page.locator("#wf-runs tr[data-run]")).to_have_count(len(runs))
        expect(page.locator(f"#wf-runs tr[data-run='{runs[0]}']")).to_have_count(1)
        expect(page.get_by_role("button", name="Load more runs")).to_be_hidden()
        # A refresh keeps what was loaded.
        next_refresh(page)
        next_refresh(page)
        expect(page.locator("#wf-runs tr[data-run]")).to_have_count(len(runs))
        assert problems(watcher, server) == []
