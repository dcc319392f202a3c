"""The Platform Dashboard's Alerts page, in headless Chromium.

Against a real all-in-one ``xynergy serve`` on SQLite (one server, one browser for
the module): an operator creates a budget-use rule in the form (its webhook secret
shown once), edits its threshold, sees a refused change's detail next to the form,
deletes it, and the API agrees at each step; the keyboard reaches every control. A
tenant whose key lacks ``alerts:write`` sees its rules, a note and no control to
change them, and never another tenant's rules. Throughout: no console error, no CSP
violation, no request to another host. Screenshot: ``dashboard-alerts-form.png``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.pages import RENDER_TIMEOUT_MS, PageWatch
from tests.browser.test_chat_page import shot
from tests.browser.test_dashboard_pages import (
    APP,
    OPERATOR_TENANT,
    VIEWPORT,
    api,
    call,
    open_page,
    problems,
    sign_in,
    tab_through,
)
from tests.live_server import LiveServer, live_server

pytestmark = pytest.mark.browser

WRITER_SCOPES = ("metrics:read", "alerts:write")
HOOK = "https://hooks.example.com/xynergy"


@pytest.fixture(scope="module")
def server(chromium: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # Asks for the browser first, so a missing one skips before a server starts.
    with live_server({}, data_dir=tmp_path_factory.mktemp("browser-dashboard-alerts")) as running:
        yield running


@pytest.fixture
def watch(chromium: Browser, server: LiveServer) -> Iterator[tuple[Page, PageWatch]]:
    context = chromium.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    context.set_default_timeout(RENDER_TIMEOUT_MS)
    watcher = PageWatch(server.base_url)
    try:
        yield watcher.attach(context), watcher
    finally:
        context.close()


def rule_row(page: Page, rule_id: str) -> Any:
    return page.locator(f"#alert-rules tr[data-rule-id='{rule_id}']")


def field(page: Page, label: str) -> Any:
    return page.locator("#alerts-form").get_by_label(label, exact=True)


def listed(page: Page) -> dict[str, Any]:
    return {rule["id"]: rule for rule in api(page, "/api/alerts", {"limit": "200"})["items"]}


class TestOperator:
    def test_create_edit_and_delete_in_the_form(
        self, server: LiveServer, watch: tuple[Page, PageWatch], screenshot_dir: Path
    ) -> None:
        page, watcher = watch
        sign_in(page, server, server.issue_key(tenant=OPERATOR_TENANT, scopes=WRITER_SCOPES))
        open_page(page, "alerts")
        expect(page.locator("#alerts-scope")).to_be_hidden()

        # Create: a budget-use rule with a webhook; its secret shows once.
        page.get_by_role("button", name="New alert rule").click()
        expect(field(page, "Name")).to_be_focused()
        field(page, "Name").fill("Budget at three quarters")
        field(page, "Kind").select_option("budget_percent")
        expect(field(page, "Target")).to_be_disabled()
        field(page, "Threshold").fill("75")
        field(page, "Webhook URL").fill(HOOK)
        tab_through(page)  # the open form's fields, labelled, reached from the keyboard
        shot(page, screenshot_dir, "dashboard-alerts-form")
        page.get_by_role("button", name="Create").click()
        expect(page.locator("#alerts-secret")).to_be_visible()
        secret = page.get_by_label("Webhook secret", exact=True).input_value()
        assert secret.startswith("whsec_"), secret
        rule_id = page.locator("#alerts-secret").get_attribute("data-rule-id") or ""
        rule = listed(page)[rule_id]
        assert (rule["kind"], rule["threshold"], rule["webhook_url"]) == (
            "budget_percent",
            75.0,
            HOOK,
        )
        assert "webhook_secret" not in rule
        expect(rule_row(page, rule_id)).to_contain_text("Budget at three quarters")
        page.get_by_role("button", name="Dismiss").click()
        assert secret not in page.content()

        # Edit the threshold: the row and the API show the new one.
        rule_row(page, rule_id).get_by_role("button", name="Edit").click()
        expect(field(page, "Kind")).to_be_disabled()
        field(page, "Threshold").fill("90")
        page.get_by_role("button", name="Save").click()
        expect(page.locator("#alerts-form")).to_be_hidden()
        expect(rule_row(page, rule_id).locator("td.num").first).to_have_text("90")
        assert listed(page)[rule_id]["threshold"] == 90.0

        # A change the API refuses: its detail next to the form, nothing written.
        rule_row(page, rule_id).get_by_role("button", name="Edit").click()
        field(page, "Webhook URL").fill("ftp://hooks.example.com/x")
        page.get_by_role("button", name="Save").click()
        expect(page.locator("#alerts-form-error")).to_contain_text("webhook_url")
        expect(page.locator("#alerts-form")).to_be_visible()
        assert listed(page)[rule_id]["webhook_url"] == HOOK
        page.get_by_role("button", name="Cancel").click()

        # Delete, confirmed.
        rule_row(page, rule_id).get_by_role("button", name="Delete").click()
        expect(page.locator("#alerts-delete-cancel")).to_be_focused()
        page.locator("#alerts-delete-confirm").click()
        expect(rule_row(page, rule_id)).to_have_count(0)
        assert rule_id not in listed(page)
        refused = f"{server.base_url}{APP}/api/alerts/{rule_id}"
        assert [
            problem
            for problem in problems(watcher, server)
            if problem != f"HTTP 422: {refused}" and "status of 422" not in problem
        ] == []


class TestTenant:
    def test_without_alerts_write_no_control_and_only_its_own_rules(
        self, server: LiveServer, watch: tuple[Page, PageWatch]
    ) -> None:
        page, watcher = watch
        writer = server.issue_key(tenant="alerts-acme", scopes=WRITER_SCOPES)
        body = {"name": "Acme daily spend", "kind": "spend", "period": "day", "threshold": 5}
        own = call(server, "POST", f"{APP}/api/alerts", writer, body)
        other = call(
            server,
            "POST",
            f"{APP}/api/alerts",
            server.issue_key(tenant="alerts-other", scopes=WRITER_SCOPES),
            body | {"name": "Other tenant's rule"},
        )
        sign_in(page, server, server.issue_key(tenant="alerts-acme", scopes=("metrics:read",)))
        open_page(page, "alerts")

        expect(rule_row(page, own["id"])).to_be_visible()
        expect(rule_row(page, other["id"])).to_have_count(0)
        expect(page.locator("#alerts-scope")).to_be_visible()
        expect(page.locator("#alerts-scope")).to_contain_text("alerts:write")
        expect(page.get_by_role("button", name="New alert rule")).to_have_count(0)
        expect(rule_row(page, own["id"]).get_by_role("button")).to_have_count(0)
        assert list(listed(page)) == [own["id"]]
        assert problems(watcher, server) == []
