"""The Platform Dashboard's pages as an operator and a tenant use them, in headless Chromium.

Against a real all-in-one ``xynergy serve`` on SQLite with the offline AI
provider, rollups flushed every second: sign in with an API key (exchanged for
the session cookie), see the overview's figures match the APIs read with the
same cookie, watch a chart take in new traffic without a reload, visit every
page, Tab through every control, and check that a tenant's session shows and
reads its own data only. Throughout: no console error, no Content-Security-Policy
violation, no request to another host. Screenshots: ``dashboard-*.png``.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.pages import RENDER_TIMEOUT_MS, PageWatch
from tests.browser.test_chat_page import expected_signed_out, shot
from tests.live_server import LiveServer, live_server

pytestmark = pytest.mark.browser

APP = "/platform-dashboard"
VIEWPORT = {"width": 1280, "height": 900}
REFRESH_SECONDS = 2  # the page's ?refresh=, so a test sees several refreshes quickly
OPERATOR_TENANT = "platform"
PAGES = ("overview", "traffic", "ai", "cache", "resources", "alerts")
TENANT_PAGES = ("overview", "ai", "resources", "alerts")
# Rollups cover ended minutes: new traffic shows after the minute ends and a flush.
ROLLUP_TIMEOUT_MS = 150_000
COMPARE_ATTEMPTS = 10
# The usage ledger is written behind requests, within a second or so.
LEDGER_WAIT_SECONDS = 30
LEDGER_POLL_SECONDS = 0.2
# The offline provider at a price, so spend shows in dollars (the built-in one is free).
PRICED_CATALOGUE = {
    "providers": [{"name": "local", "kind": "offline"}],
    "models": [
        {
            "name": "priced-offline",
            "provider": "local",
            "upstream_model": "offline-deterministic-v1",
            "input_price_per_mtok": "3000",
            "output_price_per_mtok": "15000",
            "context_window": 128000,
        }
    ],
}


@pytest.fixture(scope="module")
def server(chromium: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # Asks for the browser first, so a missing one skips before a server starts.
    data_dir = tmp_path_factory.mktemp("browser-dashboard")
    catalogue = data_dir / "catalogue.json"
    catalogue.write_text(json.dumps(PRICED_CATALOGUE))
    env = {"XYNERGY_ROLLUP_FLUSH_SECONDS": "1", "XYNERGY_AI_CATALOGUE": str(catalogue)}
    with live_server(env, data_dir=data_dir) as running:
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


def call(server: LiveServer, method: str, path: str, key: str, body: Any = None) -> Any:
    request = urllib.request.Request(  # noqa: S310 - loopback
        server.base_url + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:  # noqa: S310 - loopback
        return json.load(response)


def status_of(server: LiveServer, path: str, key: str) -> int:
    try:
        call(server, "GET", path, key)
    except urllib.error.HTTPError as error:
        return error.code
    return 200


def spend_ai(server: LiveServer, tenant: str, calls: int) -> None:
    """``calls`` offline generations billed to ``tenant`` (distinct prompts: no cache),
    returning once the usage ledger holds them: it is written behind the requests
    (``ledger_flush_seconds``), and a page read before then would show less."""
    key = server.issue_key(tenant=tenant, scopes=("ai:generate",))
    for number in range(calls):
        call(
            server,
            "POST",
            "/ai-routing-engine/api/generate/intelligent",
            key,
            {"prompt": f"{tenant}: a tagline for trail shoes, take {number}", "max_tokens": 64},
        )
    reader = server.issue_key(tenant=OPERATOR_TENANT, scopes=("metrics:read",))
    path = f"{APP}/api/cost?tenant={server.tenant_id(tenant)}"
    deadline = time.monotonic() + LEDGER_WAIT_SECONDS
    while call(server, "GET", path, reader)["totals"]["requests"] < calls:
        assert time.monotonic() < deadline, f"the ledger never showed {tenant}'s {calls} calls"
        time.sleep(LEDGER_POLL_SECONDS)


def problems(watcher: PageWatch, server: LiveServer) -> list[str]:
    allowed = expected_signed_out(f"{server.base_url}{APP}/session")
    return [
        problem
        for problem in watcher.problems
        if problem not in allowed
        and not (problem.startswith("request failed: ") and problem.endswith("(net::ERR_ABORTED)"))
    ]


def sign_in(page: Page, server: LiveServer, key: str) -> None:
    response = page.goto(f"{server.base_url}{APP}/?refresh={REFRESH_SECONDS}")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy, policy
    assert "style-src 'self';" in policy, policy
    assert "unsafe" not in policy, policy
    expect(page.get_by_label("API key")).to_be_visible()
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#workspace")).to_be_visible()
    expect(page.get_by_label("API key")).to_have_value("")
    next_refresh(page)


def tick(page: Page) -> int:
    return int(page.locator("#dashboard").get_attribute("data-tick") or 0)


def next_refresh(page: Page, after: int | None = None) -> int:
    """Wait for a refresh to finish after the current one (or after ``after``)."""
    seen = tick(page) if after is None else after
    page.wait_for_function(
        "seen => Number(document.getElementById('dashboard').dataset.tick || 0) > seen", arg=seen
    )
    return tick(page)


def api(page: Page, path: str, params: dict[str, str] | None = None) -> Any:
    """This app's API read with the page's own session cookie."""
    response = page.request.get(
        f"{page.url.split('/platform-dashboard')[0]}{APP}{path}", params=params
    )
    assert response.ok, (path, response.status, response.text())
    return response.json()


def figure(page: Page, element_id: str) -> float | None:
    value = page.locator(f"#{element_id}").get_attribute("data-value")
    return None if value in (None, "") else float(value)


def whole_window() -> dict[str, str]:
    """The page's window for the last hour: whole minutes up to the current one's end."""
    end = math.ceil(time.time() / 60) * 60
    return {
        "from": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end - 3600)),
        "to": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end)),
        "step": "3600",
    }


def listing_window() -> dict[str, str]:
    """The page's window for the listings (they take no step)."""
    window = whole_window()
    del window["step"]
    return window


def whole(page: Page, metric: str, **filters: str) -> float | None:
    points = api(page, "/api/metrics/series", {"metric": metric, **whole_window(), **filters})[
        "points"
    ]
    assert len(points) == 1, points
    value = points[0]["value"]
    return None if value is None else float(value)


def close(left: float | None, right: float | None) -> bool:
    if left is None or right is None:
        return left is None and right is None
    return math.isclose(left, right, rel_tol=1e-6, abs_tol=1e-9)


def settle(page: Page, check: Any) -> None:
    """``check()`` true at some refresh: the page and the API read the same window,
    but a minute's rollup may land between the two reads."""
    results = []
    for _ in range(COMPARE_ATTEMPTS):
        result = check()
        if result is True:
            return
        results.append(result)
        next_refresh(page)
    raise AssertionError(results)


def open_page(page: Page, name: str) -> None:
    before = tick(page)
    page.locator(f".page-nav a[data-page={name}]").click()
    expect(page.locator(f"#page-{name}")).to_be_visible()
    expect(page.locator(f".page-nav a[data-page={name}]")).to_have_attribute("aria-current", "page")
    next_refresh(page, before)


def set_theme(page: Page, theme: str) -> None:
    for _ in range(3):  # system -> light -> dark -> system
        if page.evaluate("document.documentElement.dataset.theme || 'system'") == theme:
            return
        page.get_by_role("button", name="Theme", exact=False).click()
    assert page.evaluate("document.documentElement.dataset.theme || 'system'") == theme


_NUMBER_CONTROLS = """() => {
  // Every control a pointer can use (a tabindex of -1 would hide one from the keyboard).
  const controls = Array.from(document.querySelectorAll('a[href], button, select, input, textarea'));
  const extra = Array.from(document.querySelectorAll('[tabindex]')).filter((e) => e.tabIndex >= 0);
  const shown = Array.from(new Set(controls.concat(extra))).filter((element) =>
    !element.disabled && element.getClientRects().length > 0);
  shown.forEach((element, index) => { element.dataset.stop = String(index); });
  const unlabelled = shown
    .filter((element) => ['SELECT', 'INPUT', 'TEXTAREA'].includes(element.tagName))
    .filter((element) => !(element.labels && element.labels.length) && !element.ariaLabel)
    .map((element) => element.id);
  return [shown.map((element) => element.dataset.stop), unlabelled];
}"""
_FOCUSED = """() => {
  const element = document.activeElement;
  return [element && element.dataset.stop || '',
          element ? getComputedStyle(element).outlineStyle : ''];
}"""


def tab_through(page: Page) -> None:
    """Tab from the top reaches every visible control, each labelled, each with a
    visible focus ring."""
    wanted, unlabelled = page.evaluate(_NUMBER_CONTROLS)
    assert unlabelled == []
    assert len(wanted) >= 12, wanted
    reached: list[str] = []
    outlines: list[str] = []
    page.evaluate("document.activeElement && document.activeElement.blur()")
    for _ in range(len(wanted) + 10):  # bounded: a stop each, and a little more
        page.keyboard.press("Tab")
        stop, outline = page.evaluate(_FOCUSED)
        if stop:
            reached.append(stop)
            outlines.append(outline)
        if set(wanted) <= set(reached):
            break
    assert set(wanted) <= set(reached), sorted(set(wanted) - set(reached))
    assert all(outline == "solid" for outline in outlines), outlines  # focus is visible


class TestOperator:
    def test_overview_matches_the_apis_and_a_chart_updates_live(
        self, server: LiveServer, watch: tuple[Page, PageWatch], screenshot_dir: Path
    ) -> None:
        page, watcher = watch
        spend_ai(server, "dash-acme", 2)
        key = server.issue_key(tenant=OPERATOR_TENANT, scopes=("metrics:read",))
        sign_in(page, server, key)
        expect(page.locator("#dashboard")).to_have_attribute("data-operator", "true")
        expect(page.locator(".page-nav a[data-page=traffic]")).to_be_visible()
        expect(page.get_by_label("Tenant")).to_be_visible()

        # The status figures and table are the status API's (cached: one answer a window).
        def status_matches() -> bool | str:
            status = api(page, "/api/status")
            rows = page.locator("#services tr[data-service]")
            shown = {
                rows.nth(index).get_attribute("data-service"): rows.nth(index)
                .locator(".badge")
                .inner_text()
                .lower()
                for index in range(rows.count())
            }
            wanted = {service["name"]: service["status"] for service in status["services"]}
            if page.locator("#fig-status").get_attribute("data-value") != status["status"]:
                return f"status {status['status']}"
            if figure(page, "fig-breakers") != status["breakers"]["open"]:
                return "breakers"
            return shown == wanted or f"{shown} != {wanted}"

        settle(page, status_matches)
        assert len(page.locator("#services tr[data-service]").all()) >= 5

        # Traffic, latency and cache figures: the series API over the same window.
        def traffic_matches() -> bool | str:
            pairs = {
                "fig-requests": whole(page, "requests"),
                "fig-error-rate": whole(page, "error_rate"),
                "fig-p99": whole(page, "latency_p99"),
                "fig-cache-hit-rate": whole(page, "cache_hit_rate"),
            }
            wrong = {
                name: (figure(page, name), value)
                for name, value in pairs.items()
                if not close(figure(page, name), value)
            }
            return not wrong or str(wrong)

        settle(page, traffic_matches)

        # AI spend: the cost API's month and today (the platform's, every tenant).
        def spend_matches() -> bool | str:
            report = api(page, "/api/cost")
            today = time.strftime("%Y-%m-%d", time.gmtime())
            day = [entry for entry in report["days"] if entry["day"] == today]
            want_today = float(day[0]["cost_usd"]) if day else 0.0
            month = float(report["totals"]["cost_usd"])
            ok = close(figure(page, "fig-spend-month"), month) and close(
                figure(page, "fig-spend-today"), want_today
            )
            return ok or f"{figure(page, 'fig-spend-month')} != {month}"

        settle(page, spend_matches)
        assert (figure(page, "fig-spend-month") or 0) > 0
        assert figure(page, "fig-alerts") == sum(
            1 for rule in api(page, "/api/alerts")["items"] if rule["state"] == "firing"
        )

        # Live: new traffic reaches the chart at a later refresh, without a reload.
        chart = page.locator("#chart-overview-traffic")
        before = float(chart.get_attribute("data-total") or 0)
        points = int(chart.get_attribute("data-points") or 0)
        assert points == 60  # an hour of minutes
        page.evaluate("window.__sameDocument = true")
        for _ in range(30):
            call(server, "GET", f"{APP}/api/resources", key)
        page.wait_for_function(
            "before => Number(document.getElementById('chart-overview-traffic').dataset.total)"
            " >= before + 30",
            arg=before,
            timeout=ROLLUP_TIMEOUT_MS,
        )
        assert page.evaluate("window.__sameDocument") is True  # no reload happened
        settle(page, traffic_matches)  # and the figures still match after the update

        set_theme(page, "light")
        shot(page, screenshot_dir, "dashboard-overview-light")
        set_theme(page, "dark")
        next_refresh(page)
        shot(page, screenshot_dir, "dashboard-overview-dark")
        set_theme(page, "light")
        assert problems(watcher, server) == []

    def test_every_page_shows_its_figures(
        self, server: LiveServer, watch: tuple[Page, PageWatch], screenshot_dir: Path
    ) -> None:
        page, watcher = watch
        spend_ai(server, "dash-pages", 2)
        sign_in(page, server, server.issue_key(tenant=OPERATOR_TENANT, scopes=("metrics:read",)))

        open_page(page, "traffic")

        # The table and the service picker list the services with traffic, busiest first.
        def services_match() -> bool | str:
            listed = [
                item["service"]
                for item in api(page, "/api/metrics/services", listing_window())["items"]
            ]
            rows = page.locator("#traffic-services tr[data-service]")
            shown = [rows.nth(index).get_attribute("data-service") for index in range(rows.count())]
            options = page.locator("#traffic-service option").all_inner_texts()[1:]
            return shown == listed == options or f"{shown} {options} {listed}"

        # Listed once a minute of traffic is rolled up.
        rows = page.locator("#traffic-services tr[data-service]")
        rows.first.wait_for(timeout=ROLLUP_TIMEOUT_MS)
        settle(page, services_match)
        expect(page.locator("#chart-traffic-requests")).to_have_attribute("data-points", "60")
        expect(page.locator("#chart-traffic-latency")).to_have_attribute("data-points", "60")
        # A service, then one of its routes, picked from the lists: the charts are their series.
        route = "/api/metrics/series"
        for select, value in (
            ("traffic-service", "platform-dashboard"),
            ("traffic-route", f"platform-dashboard {route}"),
        ):
            # Listed once a minute of its traffic is rolled up.
            option = page.locator(f"#{select} option[value='{value}']")
            option.wait_for(state="attached", timeout=ROLLUP_TIMEOUT_MS)
            page.locator(f"#{select}").select_option(value)
        next_refresh(page)

        def route_matches() -> bool | str:
            chart = page.locator("#chart-traffic-requests")
            rejections = page.locator("#chart-traffic-rejections")
            filters = {"service": "platform-dashboard", "route": route}
            pairs = [
                (float(chart.get_attribute("data-total") or 0), whole(page, "requests", **filters)),
                (
                    float(rejections.get_attribute("data-total") or 0),
                    whole(page, "rate_limit_rejections", **filters),
                ),
            ]
            return all(close(shown, want or 0.0) for shown, want in pairs) or str(pairs)

        settle(page, route_matches)
        shot(page, screenshot_dir, "dashboard-traffic")

        open_page(page, "ai")
        report = api(page, "/api/cost")
        assert close(figure(page, "ai-month"), float(report["totals"]["cost_usd"]))
        expect(page.locator("#ai-models tr[data-model]")).to_have_count(
            len(report["models"]["items"])
        )
        assert report["models"]["items"], report
        expect(page.locator("#chart-ai-tokens")).to_have_attribute("data-points", "60")
        shot(page, screenshot_dir, "dashboard-ai")

        open_page(page, "cache")
        expect(page.locator("#chart-cache-rate")).to_have_attribute("data-points", "60")
        assert page.locator("#cache-sizes tr").count() == len(api(page, "/api/resources")["caches"])

        # Per namespace: the listing's hit rate (rollups, stable within a minute) per row.
        def namespaces_match() -> bool | str:
            listed = api(page, "/api/metrics/cache-namespaces", listing_window())["items"]
            rows = page.locator("#cache-namespaces tr[data-namespace]")
            shown = [
                (
                    rows.nth(i).get_attribute("data-namespace"),
                    rows.nth(i).get_attribute("data-hit-rate"),
                )
                for i in range(rows.count())
            ]
            options = page.locator("#cache-namespace option").all_inner_texts()[1:]
            same = len(shown) == len(listed) and all(
                name == item["namespace"] and close(float(rate) if rate else None, item["hit_rate"])
                for (name, rate), item in zip(shown, listed, strict=False)
            )
            return (same and options == [item["namespace"] for item in listed]) or str(shown)

        settle(page, namespaces_match)
        shot(page, screenshot_dir, "dashboard-cache")

        open_page(page, "resources")
        assert (figure(page, "res-rss") or 0) > 0
        samples = int(page.locator("#chart-resources").get_attribute("data-points") or 0)
        next_refresh(page)
        next_refresh(page)
        # The live chart takes a sample at every refresh.
        assert int(page.locator("#chart-resources").get_attribute("data-points") or 0) > samples
        shot(page, screenshot_dir, "dashboard-resources")

        open_page(page, "alerts")
        rules = api(page, "/api/alerts")["items"]
        if rules:
            expect(page.locator("#alert-rules tr")).to_have_count(len(rules))
        else:
            expect(page.locator("#alert-rules-empty")).to_be_visible()
        shot(page, screenshot_dir, "dashboard-alerts")

        # The range picker: a day of quarter hours.
        page.get_by_label("Range").select_option("86400")
        open_page(page, "overview")
        expect(page.locator("#chart-overview-traffic")).to_have_attribute("data-points", "96")
        assert problems(watcher, server) == []

    def test_keyboard_reaches_every_control(
        self, server: LiveServer, watch: tuple[Page, PageWatch]
    ) -> None:
        page, watcher = watch
        sign_in(page, server, server.issue_key(tenant=OPERATOR_TENANT, scopes=("metrics:read",)))
        page.reload()
        expect(page.locator("#workspace")).to_be_visible()
        next_refresh(page)
        # Each page's own controls (the traffic and cache filters) and the shared ones.
        for name in ("overview", "traffic", "cache"):
            open_page(page, name)
            tab_through(page)
        # Keys alone: open the traffic page from the nav and change the range.
        page.locator(".page-nav a[data-page=traffic]").focus()
        page.keyboard.press("Enter")
        expect(page.locator("#page-traffic")).to_be_visible()
        page.get_by_label("Range").focus()
        page.keyboard.press("ArrowDown")
        expect(page.get_by_label("Range")).to_have_value("86400")
        assert problems(watcher, server) == []


class TestTenant:
    def test_a_tenant_sees_only_its_own_data(
        self, server: LiveServer, watch: tuple[Page, PageWatch], screenshot_dir: Path
    ) -> None:
        page, watcher = watch
        spend_ai(server, "dash-mine", 1)
        spend_ai(server, "dash-theirs", 3)
        theirs = server.tenant_id("dash-theirs")
        key = server.issue_key(tenant="dash-mine", scopes=("metrics:read",))
        sign_in(page, server, key)
        expect(page.locator("#dashboard")).to_have_attribute("data-operator", "false")
        # No platform-wide page, no tenant picker; a typed address falls back.
        expect(page.locator(".page-nav a[data-page=traffic]")).to_be_hidden()
        expect(page.locator(".page-nav a[data-page=cache]")).to_be_hidden()
        expect(page.locator("#tenant")).to_be_hidden()
        page.evaluate("window.location.hash = '#traffic'")
        next_refresh(page)
        expect(page.locator("#page-overview")).to_be_visible()
        expect(page.locator("#page-traffic")).to_be_hidden()

        # Its spend on the page is its own: the cost API of its session, not the platform's.
        mine = api(page, "/api/cost")
        assert mine["tenant_id"] == server.tenant_id("dash-mine")
        settle(
            page,
            lambda: close(figure(page, "fig-spend-month"), float(mine["totals"]["cost_usd"])),
        )
        platform = call(
            server,
            "GET",
            f"{APP}/api/cost",
            server.issue_key(tenant=OPERATOR_TENANT, scopes=("metrics:read",)),
        )
        assert float(platform["totals"]["cost_usd"]) > float(mine["totals"]["cost_usd"]) > 0
        expect(page.locator("#chart-overview-cost")).to_be_visible()
        shot(page, screenshot_dir, "dashboard-tenant-overview")

        # Another tenant's data: refused by the API, with the session and with the key.
        for path in (
            f"/api/metrics/series?metric=ai_cost_usd&tenant={theirs}",
            "/api/metrics/series?metric=requests",
            f"/api/cost?tenant={theirs}",
        ):
            answer = page.request.get(f"{server.base_url}{APP}{path}")
            assert answer.status in (403, 404), (path, answer.status)
            assert status_of(server, f"{APP}{path}", key) in (403, 404), path
        for name in TENANT_PAGES[1:]:
            open_page(page, name)
        open_page(page, "ai")
        assert close(figure(page, "ai-month"), float(mine["totals"]["cost_usd"]))
        shot(page, screenshot_dir, "dashboard-tenant-ai")

        # Signing out ends the session; the page asks for a key again.
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_label("API key")).to_be_visible()
        assert page.request.get(f"{server.base_url}{APP}/api/viewer").status == 401
        assert problems(watcher, server) == []

    def test_an_admin_picks_a_tenant(
        self, server: LiveServer, watch: tuple[Page, PageWatch]
    ) -> None:
        page, watcher = watch
        spend_ai(server, "dash-picked", 2)
        picked = server.tenant_id("dash-picked")
        sign_in(page, server, server.issue_key(tenant=OPERATOR_TENANT, scopes=("admin",)))
        expect(page.locator(f"#tenant option[value='{picked}']")).to_have_count(1)
        page.get_by_label("Tenant").select_option(picked)
        own = api(page, "/api/cost", {"tenant": picked})
        settle(
            page,
            lambda: close(figure(page, "fig-spend-month"), float(own["totals"]["cost_usd"])),
        )
        assert problems(watcher, server) == []
