"""The docs pages and the index page as a person sees them, in headless Chromium.

Against a real ``xynergy serve`` (all-in-one, and one service alone): each
``/docs`` renders every operation of its OpenAPI document, the Authorize dialog
offers both API-key schemes, "Try it out" works with a key, and no page logs an
error, breaks its Content-Security-Policy or loads anything from another host.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.pages import RENDER_TIMEOUT_MS, PageWatch
from tests.live_server import LiveServer, live_server
from xynergy.server import SERVICES

pytestmark = pytest.mark.browser

MOUNTS = ["", *(f"/{slug}" for slug in SERVICES)]
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
VIEWPORT = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def server(chromium: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # Asks for the browser first, so a missing one skips before a server starts.
    with live_server({}, data_dir=tmp_path_factory.mktemp("browser-all-in-one")) as running:
        yield running


@pytest.fixture
def watch(chromium: Browser, server: LiveServer) -> Iterator[tuple[Page, PageWatch]]:
    """A fresh context (empty cache, no stored keys) and what went wrong in it."""
    context = chromium.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    context.set_default_timeout(RENDER_TIMEOUT_MS)
    watcher = PageWatch(server.base_url)
    try:
        yield watcher.attach(context), watcher
    finally:
        context.close()


def openapi(server: LiveServer, mount: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{server.base_url}{mount}/openapi.json") as response:  # noqa: S310 - loopback
        document: dict[str, Any] = json.load(response)
    return document


def operation_count(document: dict[str, Any]) -> int:
    return sum(
        1 for item in document["paths"].values() for method in item if method in HTTP_METHODS
    )


def shot(page: Page, directory: Path, name: str) -> None:
    page.screenshot(path=str(directory / f"{name}.png"))


def open_docs(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator(".opblock").first).to_be_visible()


class TestDocsPage:
    @pytest.mark.parametrize("mount", MOUNTS, ids=lambda m: m.strip("/") or "root")
    def test_renders_every_operation_without_a_problem(
        self,
        server: LiveServer,
        watch: tuple[Page, PageWatch],
        screenshot_dir: Path,
        mount: str,
    ) -> None:
        page, watcher = watch
        document = openapi(server, mount)
        open_docs(page, f"{server.base_url}{mount}/docs")
        expect(page.locator(".information-container .title")).to_contain_text(
            document["info"]["title"]
        )
        expect(page.locator(".opblock")).to_have_count(operation_count(document))
        assert operation_count(document) > 0
        shot(page, screenshot_dir, f"docs-{mount.strip('/') or 'root'}")
        assert watcher.problems == []
        assert any("/openapi.json" in url for url in watcher.requested)

    @pytest.mark.parametrize("mount", ["", "/aso-engine"], ids=["root", "aso-engine"])
    def test_authorize_offers_both_key_schemes(
        self,
        server: LiveServer,
        watch: tuple[Page, PageWatch],
        screenshot_dir: Path,
        mount: str,
    ) -> None:
        page, watcher = watch
        open_docs(page, f"{server.base_url}{mount}/docs")
        page.locator(".scheme-container button.authorize").click()
        dialog = page.locator(".dialog-ux .modal-ux")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text("ApiKeyBearer")
        expect(dialog).to_contain_text("ApiKeyHeader")
        expect(dialog).to_contain_text("X-API-Key")
        # The browser session's cookie, declared beside the key schemes.
        expect(dialog).to_contain_text("SessionCookie")
        expect(dialog).to_contain_text("xynergy_session")
        shot(page, screenshot_dir, f"authorize-{mount.strip('/') or 'root'}")
        assert watcher.problems == []

    def test_try_it_out_calls_the_api_with_the_key(
        self, server: LiveServer, watch: tuple[Page, PageWatch], screenshot_dir: Path
    ) -> None:
        page, watcher = watch
        secret = server.issue_key(tenant="docs-reader", scopes=("content:read",))
        open_docs(page, f"{server.base_url}/aso-engine/docs")
        page.locator(".scheme-container button.authorize").click()
        header_scheme = page.locator(".auth-container", has_text="ApiKeyHeader")
        header_scheme.locator("input").fill(secret)
        header_scheme.locator("button.authorize").click()
        page.locator(".dialog-ux .close-modal").click()
        operation = page.locator(".opblock-get", has_text="/api/content").first
        operation.locator(".opblock-summary").click()
        operation.locator("button.try-out__btn").click()
        with page.expect_response(lambda r: "/aso-engine/api/content" in r.url) as called:
            operation.locator("button.execute").click()
        assert called.value.status == 200
        assert called.value.request.headers.get("x-api-key") == secret
        status = operation.locator(".live-responses-table tbody .response-col_status")
        expect(status).to_have_text("200")
        shot(page, screenshot_dir, "try-it-out-aso-engine")
        assert watcher.problems == []

    def test_root_docs_select_every_service(
        self, server: LiveServer, watch: tuple[Page, PageWatch], screenshot_dir: Path
    ) -> None:
        page, watcher = watch
        titles = [openapi(server, mount)["info"]["title"] for mount in MOUNTS]
        open_docs(page, f"{server.base_url}/docs")
        selector = page.locator(".topbar select")
        assert selector.locator("option").all_inner_texts() == titles
        for mount in MOUNTS:
            expect(page.locator(f'.site-nav a[href="{mount}/docs"]')).to_be_visible()
        selector.select_option(label=titles[1])
        expect(page.locator(".information-container .title")).to_contain_text(titles[1])
        expect(page.locator(".opblock")).to_have_count(operation_count(openapi(server, MOUNTS[1])))
        shot(page, screenshot_dir, "docs-root-selected-service")
        assert watcher.problems == []


class TestIndexPage:
    def test_names_services_docs_and_probes(
        self, server: LiveServer, watch: tuple[Page, PageWatch], screenshot_dir: Path
    ) -> None:
        page, watcher = watch
        page.goto(server.base_url + "/")
        expect(page.locator("h1")).to_have_text("Xynergy")
        rows = page.locator(".site-index tbody tr")
        expect(rows).to_have_count(len(MOUNTS))
        for mount in MOUNTS:
            for path in ("/docs", "/openapi.json", "/healthz", "/readyz"):
                expect(page.locator(f'.site-index a[href="{mount}{path}"]')).to_have_count(1)
        shot(page, screenshot_dir, "index")
        page.locator('.site-index a[href="/marketing-engine/docs"]').click()
        expect(page.locator(".opblock").first).to_be_visible()
        assert watcher.problems == []


class TestStandaloneService:
    def test_docs_and_index_work_on_their_own(
        self, chromium: Browser, tmp_path: Path, screenshot_dir: Path
    ) -> None:
        with live_server(
            {}, data_dir=tmp_path / "standalone", serve_args=("--service", "aso-engine")
        ) as alone:
            context = chromium.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
            context.set_default_timeout(RENDER_TIMEOUT_MS)
            watcher = PageWatch(alone.base_url)
            try:
                page = watcher.attach(context)
                open_docs(page, alone.base_url + "/docs")
                expect(page.locator(".opblock")).to_have_count(operation_count(openapi(alone, "")))
                expect(page.locator(".topbar select")).to_have_count(0)
                shot(page, screenshot_dir, "standalone-aso-engine-docs")
                page.goto(alone.base_url + "/")
                expect(page.locator(".site-index tbody tr")).to_have_count(1)
                assert watcher.problems == []
            finally:
                context.close()
