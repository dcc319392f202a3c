"""The Platform Dashboard's Keys and Intake pages, in headless Chromium.

Against a real all-in-one ``xynergy serve`` on SQLite: a tenant's session (a key
with ``metrics:read``, ``keys:admin`` and ``intake:read``) lists its keys as the
key admin API does, rotates one with a grace of 0 (the new secret is shown once and
works, the old key is refused) and revokes another (marked revoked, refused), is
warned before revoking its own key; the Intake page's counts are the Intelligence
Gateway's stats API's over the dashboard's range, for submissions seeded over
several days. A key without the scopes sees a note and no refused call.
Throughout: no console error, no CSP violation, no request to another host.
Screenshots: ``dashboard-keys*.png``, ``dashboard-intake*.png``.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy.ext.asyncio import async_sessionmaker

from tests.browser.pages import RENDER_TIMEOUT_MS, PageWatch
from tests.browser.test_chat_page import shot
from tests.browser.test_dashboard_pages import (
    APP,
    VIEWPORT,
    next_refresh,
    open_page,
    problems,
    set_theme,
    settle,
    sign_in,
    status_of,
    tab_through,
    tick,
)
from tests.live_server import LiveServer, live_server
from xynergy.intelligence_gateway.models import IntakeForm, Submission
from xynergy.platform.db.engine import create_engine_from_settings
from xynergy.platform.db.session import unit_of_work

pytestmark = pytest.mark.browser

ResultT = TypeVar("ResultT")
KEYS_API = "/admin/keys"
STATS_API = "/intelligence-gateway/api/stats"
# (kind, status, days ago, source) of the seeded submissions: today, within a week,
# within 30 days, and one older than the longest range (never counted).
SEEDED = (
    ("beta", "new", 0, "landing"),
    ("beta", "accepted", 0, "landing"),
    ("contact", "spam", 0, None),
    ("beta", "reviewed", 3, "blog"),
    ("contact", "spam", 5, None),
    ("contact", "new", 12, "landing"),
    ("beta", "rejected", 40, "blog"),
)
RANGES = {"3600": 1, "604800": 7, "2592000": 30}  # the range picker's value -> days read


@pytest.fixture(scope="module")
def server(chromium: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # Asks for the browser first, so a missing one skips before a server starts.
    with live_server({}, data_dir=tmp_path_factory.mktemp("browser-dashboard-admin")) as running:
        yield running


@pytest.fixture
def watch(chromium: Browser, server: LiveServer) -> Iterator[tuple[Page, PageWatch]]:
    """A fresh context (no cookie, empty storage, clipboard allowed) and its problems."""
    context = chromium.new_context(
        viewport=VIEWPORT,  # type: ignore[arg-type]
        permissions=["clipboard-read", "clipboard-write"],
    )
    context.set_default_timeout(RENDER_TIMEOUT_MS)
    watcher = PageWatch(server.base_url)
    try:
        yield watcher.attach(context), watcher
    finally:
        context.close()


def read(page: Page, server: LiveServer, path: str, params: dict[str, str] | None = None) -> Any:
    """An API of any mounted service, read with the page's own session cookie."""
    response = page.request.get(server.base_url + path, params=params)
    assert response.ok, (path, response.status, response.text())
    return response.json()


def _run(work: Coroutine[Any, Any, ResultT]) -> ResultT:
    # A thread of its own: Playwright's sync API keeps an event loop in this one.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work).result()


async def _seed(server: LiveServer, tenant_id: str) -> None:
    engine = create_engine_from_settings(server.settings())
    try:
        async with unit_of_work(async_sessionmaker(engine, expire_on_commit=False)) as session:
            forms = {}
            for kind in ("beta", "contact"):
                form = IntakeForm(
                    tenant_id=tenant_id,
                    public_id="frm_" + secrets.token_urlsafe(16),
                    kind=kind,
                    name=f"{kind} form",
                    allowed_origins=["https://www.acme.example"],
                )
                session.add(form)
                forms[kind] = form
            await session.flush()
            now = datetime.now(UTC)
            for number, (kind, status, days_ago, source) in enumerate(SEEDED):
                created = now - timedelta(days=days_ago)
                session.add(
                    Submission(
                        tenant_id=tenant_id,
                        form_id=forms[kind].id,
                        kind=kind,
                        status=status,
                        email=f"person{number}@acme.example",
                        name=f"Person {number}",
                        body="We would like to try it.",
                        source=source,
                        utm={},
                        spam_reasons=["too_fast"] if status == "spam" else [],
                        content_hash=hashlib.sha256(f"{tenant_id}{number}".encode()).hexdigest(),
                        client_ip_hash="0" * 64,
                        created_day=created.date(),
                        created_at=created,
                        updated_at=created,
                    )
                )
    finally:
        await engine.dispose()


def seed_submissions(server: LiveServer, tenant: str) -> None:
    """SEEDED for ``tenant``, written straight into the server's database."""
    _run(_seed(server, server.tenant_id(tenant)))


def key_row(page: Page, key_id: str) -> Any:
    return page.locator(f"#keys-list tr[data-key-id='{key_id}']")


def shown_key_ids(page: Page) -> list[str]:
    rows = page.locator("#keys-list tr")
    return [rows.nth(index).get_attribute("data-key-id") or "" for index in range(rows.count())]


def listed_key_ids(page: Page, server: LiveServer) -> list[str]:
    return [key["id"] for key in read(page, server, KEYS_API, {"limit": "20"})["items"]]


def viewer_status(server: LiveServer, key: str) -> int:
    return status_of(server, f"{APP}/api/viewer", key)


class TestKeys:
    def test_list_rotate_and_revoke(
        self, server: LiveServer, watch: tuple[Page, PageWatch], screenshot_dir: Path
    ) -> None:
        page, watcher = watch
        tenant = "keys-acme"
        own = server.issue_key_record(
            tenant=tenant, scopes=("metrics:read", "keys:admin", "intake:read")
        )
        rotated = server.issue_key_record(tenant=tenant, scopes=("metrics:read",))
        revoked = server.issue_key_record(tenant=tenant, scopes=("metrics:read",))
        # Another tenant's key: never on this tenant's page.
        other = server.issue_key_record(tenant="keys-other", scopes=("metrics:read",))
        assert viewer_status(server, rotated.secret) == 200
        assert viewer_status(server, revoked.secret) == 200
        sign_in(page, server, own.secret)
        open_page(page, "keys")
        expect(page.locator("#keys-body")).to_be_visible()
        expect(page.locator("#keys-scope")).to_be_hidden()

        # The list is the API's, newest first; the session's own key is marked.
        listed = listed_key_ids(page, server)
        assert listed == [revoked.key.id, rotated.key.id, own.key.id]
        assert shown_key_ids(page) == listed
        assert other.key.id not in shown_key_ids(page)
        expect(key_row(page, own.key.id).locator(".badge.own")).to_have_text("this session")

        # Rotate with a grace of 0: the new secret shows once, the old key is refused.
        key_row(page, rotated.key.id).get_by_role("button", name="Rotate").click()
        expect(page.locator("#keys-action")).to_be_visible()
        expect(page.locator("#keys-action-warning")).to_be_hidden()
        expect(page.get_by_label("Grace period (seconds)")).to_be_focused()
        page.get_by_label("Grace period (seconds)").fill("0")
        page.locator("#keys-action-confirm").click()
        expect(page.locator("#keys-secret")).to_be_visible()
        expect(page.locator("#keys-action")).to_be_hidden()
        secret = page.get_by_label("Secret", exact=True).input_value()
        assert secret.startswith("xyn_"), secret
        new_id = page.locator("#keys-secret").get_attribute("data-key-id")
        assert new_id
        assert new_id not in (rotated.key.id, revoked.key.id, own.key.id)
        assert viewer_status(server, secret) == 200
        assert viewer_status(server, rotated.secret) == 401
        expect(key_row(page, new_id)).to_have_attribute("data-state", "active")
        expect(key_row(page, rotated.key.id)).to_have_attribute("data-state", "retired")
        expect(key_row(page, rotated.key.id).get_by_role("button", name="Rotate")).to_have_count(0)
        assert shown_key_ids(page) == listed_key_ids(page, server)
        page.get_by_role("button", name="Copy").click()
        expect(page.locator("#keys-secret-copied")).to_have_text("Copied to the clipboard.")
        assert page.evaluate("navigator.clipboard.readText()") == secret
        set_theme(page, "light")
        shot(page, screenshot_dir, "dashboard-keys")
        set_theme(page, "dark")
        shot(page, screenshot_dir, "dashboard-keys-dark")
        set_theme(page, "light")
        # Never stored: not in the page's storage, gone once dismissed.
        stored = page.evaluate("JSON.stringify([localStorage, sessionStorage])")
        assert secret not in stored
        page.get_by_role("button", name="Dismiss").click()
        expect(page.locator("#keys-secret")).to_be_hidden()
        assert page.get_by_label("Secret", exact=True).input_value() == ""
        assert secret not in page.content()

        # Revoke, confirmed: marked revoked on the page, refused by the API.
        key_row(page, revoked.key.id).get_by_role("button", name="Revoke").click()
        expect(page.locator("#keys-action-warning")).to_be_hidden()
        expect(page.locator("#keys-grace-field")).to_be_hidden()
        page.locator("#keys-action-confirm").click()
        expect(key_row(page, revoked.key.id)).to_have_attribute("data-state", "revoked")
        expect(key_row(page, revoked.key.id).get_by_role("button")).to_have_count(0)
        assert viewer_status(server, revoked.secret) == 401
        revoked_row = next(
            key
            for key in read(page, server, KEYS_API, {"limit": "20"})["items"]
            if key["id"] == revoked.key.id
        )
        assert revoked_row["revoked_at"] is not None

        # The session's own key: a warning first; cancelled, nothing happens.
        own_revoke = key_row(page, own.key.id).get_by_role("button", name="Revoke")
        own_revoke.click()
        expect(page.locator("#keys-action-warning")).to_be_visible()
        expect(page.locator("#keys-action-warning")).to_contain_text("ends this session")
        expect(page.locator("#keys-action-confirm")).to_have_text("Revoke and end this session")
        page.keyboard.press("Escape")
        expect(page.locator("#keys-action")).to_be_hidden()
        expect(own_revoke).to_be_focused()
        assert viewer_status(server, own.secret) == 200

        tab_through(page)
        next_refresh(page)
        assert problems(watcher, server) == []


class TestIntake:
    def test_counts_match_the_stats_api_over_each_range(
        self, server: LiveServer, watch: tuple[Page, PageWatch], screenshot_dir: Path
    ) -> None:
        page, watcher = watch
        seed_submissions(server, "intake-acme")
        seed_submissions(server, "intake-other")  # another tenant's: never counted here
        key = server.issue_key(tenant="intake-acme", scopes=("metrics:read", "intake:read"))
        sign_in(page, server, key)
        # Reached from the keyboard: the nav link, Enter.
        before = tick(page)
        page.locator(".page-nav a[data-page=intake]").focus()
        page.keyboard.press("Enter")
        expect(page.locator("#page-intake")).to_be_visible()
        next_refresh(page, before)
        expect(page.locator("#intake-body")).to_be_visible()

        def matches(days: int) -> bool | str:
            today = datetime.now(UTC).date()
            since = today - timedelta(days=days - 1)
            stats = read(
                page,
                server,
                STATS_API,
                {"since": since.isoformat(), "until": today.isoformat()},
            )
            shown = {
                "total": page.locator("#intake-total").get_attribute("data-value"),
                "beta": page.locator("#intake-beta").get_attribute("data-value"),
                "contact": page.locator("#intake-contact").get_attribute("data-value"),
                "spam": page.locator("#intake-spam").get_attribute("data-value"),
                "points": page.locator("#chart-intake-days").get_attribute("data-points"),
                "chart": page.locator("#chart-intake-days").get_attribute("data-total"),
            }
            wanted = {
                "total": str(stats["total"]),
                "beta": str(stats["by_kind"].get("beta", 0)),
                "contact": str(stats["by_kind"].get("contact", 0)),
                "spam": str(stats["by_status"].get("spam", 0)),
                "points": str(days),
                "chart": str(stats["total"]),
            }
            for table, attribute, counts in (
                ("intake-kinds", "data-kind", stats["by_kind"]),
                ("intake-statuses", "data-status", stats["by_status"]),
            ):
                rows = page.locator(f"#{table} tr")
                for index in range(rows.count()):
                    name = rows.nth(index).get_attribute(attribute) or ""
                    shown[f"{table}:{name}"] = rows.nth(index).get_attribute("data-value")
                    wanted[f"{table}:{name}"] = str(counts.get(name, 0))
            return shown == wanted or f"{shown} != {wanted}"

        expected_totals = {1: 3, 7: 5, 30: 6}
        for value, days in RANGES.items():
            page.get_by_label("Range").select_option(value)
            next_refresh(page)
            settle(page, lambda days=days: matches(days))
            assert page.locator("#intake-total").get_attribute("data-value") == str(
                expected_totals[days]
            )
        # The seeded spam: two within 30 days, both contact messages.
        expect(page.locator("#intake-spam")).to_have_attribute("data-value", "2")
        expect(page.locator("#intake-statuses tr[data-status=spam]")).to_have_attribute(
            "data-value", "2"
        )
        expect(page.locator("#intake-sources tr[data-source=landing]")).to_have_attribute(
            "data-value", "3"
        )
        set_theme(page, "light")
        shot(page, screenshot_dir, "dashboard-intake")
        set_theme(page, "dark")
        next_refresh(page)
        shot(page, screenshot_dir, "dashboard-intake-dark")
        set_theme(page, "light")
        assert problems(watcher, server) == []


class TestScopes:
    def test_a_key_without_the_scopes_sees_notes_and_calls_nothing(
        self, server: LiveServer, watch: tuple[Page, PageWatch]
    ) -> None:
        page, watcher = watch
        sign_in(page, server, server.issue_key(tenant="scopes-acme", scopes=("metrics:read",)))
        for name, scope in (("keys", "keys:admin"), ("intake", "intake:read")):
            open_page(page, name)
            expect(page.locator(f"#{name}-scope")).to_be_visible()
            expect(page.locator(f"#{name}-scope")).to_contain_text(scope)
            expect(page.locator(f"#{name}-body")).to_be_hidden()
        assert not [url for url in watcher.requested if KEYS_API in url or STATS_API in url]
        assert problems(watcher, server) == []
