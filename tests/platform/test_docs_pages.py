"""The docs and index pages, in process: what they load, under which policy.

The browser itself is in tests/browser/; here each page's HTML, headers and
assets are checked request by request: everything comes from our origin, each
page carries exactly its own Content-Security-Policy, and every other response
keeps the API's ``default-src 'none'``.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from tests.helpers import running
from xynergy.platform import docs_assets
from xynergy.platform.admin_app import PLATFORM_SLUG
from xynergy.platform.config import DEFAULT_RATE_LIMITS, Settings
from xynergy.platform.middleware import API_CONTENT_SECURITY_POLICY
from xynergy.server import SERVICES, build_all_in_one, build_standalone

MakeSettings = Callable[..., Settings]

# Written out, not imported: a change to either policy must show up here.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
INDEX_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
MOUNTS = ["", *(f"/{slug}" for slug in SERVICES)]
ABSOLUTE_URL = re.compile(r"(?i)\b(?:https?:)?//[a-z0-9]")


class _References(HTMLParser):
    """Every URL an element of the page refers to, and the docs config."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[str] = []
        self.inline_scripts = 0
        self.inline_styles = 0
        self.config: dict[str, Any] | None = None
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href", "action", "srcset", "poster", "data"):
            if values.get(name):
                self.urls.append(str(values[name]))
        if tag == "script":
            self._in_script = True
            if values.get("src"):
                self.scripts.append(str(values["src"]))
        if tag == "style" or "style" in values:
            self.inline_styles += 1
        if any(name.startswith("on") for name in values):
            self.inline_scripts += 1
        if values.get("data-config"):
            self.config = json.loads(str(values["data-config"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1


def references(html: str) -> _References:
    parser = _References()
    parser.feed(html)
    return parser


@pytest.fixture
def all_in_one(make_settings: MakeSettings) -> Starlette:
    return build_all_in_one(make_settings())


@pytest.fixture
async def client(all_in_one: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with running(all_in_one) as client:
        yield client


class TestDocsPage:
    @pytest.mark.parametrize("mount", MOUNTS)
    async def test_loads_everything_from_our_origin(
        self, client: httpx.AsyncClient, mount: str
    ) -> None:
        response = await client.get(f"{mount}/docs")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/html")
        assert not ABSOLUTE_URL.search(response.text), "the page names another host"
        page = references(response.text)
        assert page.inline_scripts == 0
        assert page.inline_styles == 0
        assert len(page.scripts) == 3
        for url in page.urls:
            assert url.startswith("/"), url
            assert not url.startswith("//"), url
        for url in [*page.scripts, *(u for u in page.urls if "/docs/assets/" in u)]:
            asset = await client.get(url)
            assert asset.status_code == 200, url

    @pytest.mark.parametrize("mount", MOUNTS)
    async def test_carries_exactly_the_docs_policy(
        self, client: httpx.AsyncClient, mount: str
    ) -> None:
        response = await client.get(f"{mount}/docs")
        assert response.headers.get_list("content-security-policy") == [DOCS_POLICY]
        assert response.headers["x-frame-options"] == "DENY"

    async def test_root_docs_offer_every_service(self, client: httpx.AsyncClient) -> None:
        page = references((await client.get("/docs")).text)
        assert page.config is not None
        specs = {entry["url"] for entry in page.config["urls"]}
        assert specs == {f"{mount}/openapi.json" for mount in MOUNTS}
        assert page.config["primaryName"] == "Xynergy Platform"
        assert {f"{mount}/docs" for mount in MOUNTS} <= set(page.urls)
        for spec in specs:
            assert (await client.get(spec)).status_code == 200, spec

    async def test_a_service_page_starts_on_its_own_document(
        self, client: httpx.AsyncClient
    ) -> None:
        page = references((await client.get("/aso-engine/docs")).text)
        assert page.config is not None
        own = next(e for e in page.config["urls"] if e["url"] == "/aso-engine/openapi.json")
        assert page.config["primaryName"] == own["name"]

    async def test_a_standalone_service_documents_itself(self, make_settings: MakeSettings) -> None:
        async with running(build_standalone(make_settings(), "aso-engine")) as client:
            response = await client.get("/docs")
            page = references(response.text)
            assert page.config is not None
            assert [e["url"] for e in page.config["urls"]] == ["/openapi.json"]
            for url in page.scripts:
                assert (await client.get(url)).status_code == 200, url
            assert (await client.get("/openapi.json")).status_code == 200

    async def test_without_swagger_ui_says_how_to_install_it_and_the_index_works(
        self, client: httpx.AsyncClient, missing_swagger_ui: None
    ) -> None:
        response = await client.get("/docs")
        assert response.status_code == 503
        assert response.json()["error"] == "docs_unavailable"
        assert "make docs-assets" in response.json()["detail"]
        assert response.headers["content-security-policy"] == API_POLICY
        index = await client.get("/")
        assert index.status_code == 200
        for url in references(index.text).urls:
            if "/docs/assets/" in url:
                assert (await client.get(url)).status_code == 200, url


@pytest.fixture
def missing_swagger_ui(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(docs_assets, "SWAGGER_UI_DIR", tmp_path / "nowhere")
    docs_assets.docs_assets.cache_clear()
    yield
    docs_assets.docs_assets.cache_clear()


class TestApiResponses:
    @pytest.mark.parametrize(
        ("path", "status"),
        [
            ("/healthz", 200),
            ("/openapi.json", 200),
            ("/aso-engine/openapi.json", 200),
            ("/aso-engine/api/content", 401),
            ("/admin/tenants", 401),
            ("/no-such-page", 404),
            ("/docs/assets/0000000000000000/docs.js", 404),
        ],
    )
    async def test_keep_the_strict_api_policy(
        self, client: httpx.AsyncClient, path: str, status: int
    ) -> None:
        response = await client.get(path)
        assert response.status_code == status, response.text
        assert API_CONTENT_SECURITY_POLICY == API_POLICY
        assert response.headers.get_list("content-security-policy") == [API_POLICY]


class TestAssets:
    async def test_are_served_for_a_year_with_their_type(self, client: httpx.AsyncClient) -> None:
        page = references((await client.get("/docs")).text)
        for url in page.scripts:
            response = await client.get(url)
            assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert response.headers["content-type"] == "text/javascript; charset=utf-8"
            name = url.rsplit("/", 1)[1]
            assert response.content == docs_assets.docs_assets()[name].path.read_bytes()

    async def test_a_stale_digest_is_not_found(self, client: httpx.AsyncClient) -> None:
        current = docs_assets.docs_assets()["docs.js"].digest
        stale = "f" * len(current) if current != "f" * len(current) else "0" * len(current)
        response = await client.get(f"/docs/assets/{stale}/docs.js")
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"

    @pytest.mark.parametrize(
        "name",
        [
            "LICENSE",  # installed beside the bundle, not on the list
            "package.json",
            "..%2Fapp.py",
            "..%2F..%2Fapp.py",
            "%2e%2e%2fdocs_pages.py",
            "..",
            "%2Fetc%2Fpasswd",
        ],
    )
    async def test_only_listed_files_are_reachable(
        self, client: httpx.AsyncClient, name: str
    ) -> None:
        digest = docs_assets.docs_assets()["docs.js"].digest
        response = await client.get(f"/docs/assets/{digest}/{name}")
        assert response.status_code in (404, 422), (name, response.status_code)
        assert response.headers["content-type"] == "application/json"

    async def test_a_dot_dot_path_does_not_leave_the_table(self, client: httpx.AsyncClient) -> None:
        digest = docs_assets.docs_assets()["docs.js"].digest
        response = await client.get(f"/docs/assets/{digest}/../../healthz")
        # httpx normalises the dots away: the request is for /docs/healthz, unknown.
        assert response.status_code == 404


class TestIndexPage:
    @pytest.mark.parametrize("mount", ["", "/aso-engine"])
    async def test_names_the_services_their_docs_and_probes(
        self, client: httpx.AsyncClient, mount: str
    ) -> None:
        response = await client.get(f"{mount}/")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert response.headers.get_list("content-security-policy") == [INDEX_POLICY]
        page = references(response.text)
        assert page.inline_scripts == 0
        assert not page.scripts
        assert page.inline_styles == 0
        for service_mount in MOUNTS:
            for path in ("/docs", "/openapi.json", "/healthz", "/readyz"):
                assert service_mount + path in page.urls
        for slug in [PLATFORM_SLUG, *SERVICES]:
            assert slug in response.text
        assert not ABSOLUTE_URL.search(response.text)

    async def test_pages_share_their_own_rate_class(self, make_settings: MakeSettings) -> None:
        # The pages, assets and OpenAPI documents spend the "docs" budget of the
        # address, not the "public" one of the intake forms.
        limits = {**DEFAULT_RATE_LIMITS, "docs": "3/minute", "public": "1/minute"}
        async with running(build_all_in_one(make_settings(rate_limits=limits))) as client:
            assert (await client.get("/")).status_code == 200
            assert (await client.get("/openapi.json")).status_code == 200
            assert (await client.get("/aso-engine/openapi.json")).status_code == 200
            limited = await client.get("/")
            assert limited.status_code == 429
            assert limited.json()["error"] == "rate_limited"
            assert "retry-after" in limited.headers
            form_token = await client.get("/intelligence-gateway/api/forms/nope/token")
            assert form_token.status_code != 429

    async def test_other_unknown_paths_stay_json_404s(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/nothing-here")
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
