"""The shared corpus fired at every endpoint, on SQLite and PostgreSQL.

Forged cursors, NUL and text that is not Unicode (in the query, the path and
every string of every request body) must each answer a 4xx in the platform's
error shape and write nothing. These once answered 500 on about 20 endpoints.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from tests.corpus import (
    FORGED_CURSORS,
    HOSTILE_BODY_TEXT,
    HOSTILE_URL_VALUES,
    LONE_SURROGATE,
    NUL,
    json_bytes,
)
from tests.platform.hostile import (
    JSON_HEADERS,
    NUL_ACCEPTED,
    SAMPLE_BODIES,
    UNLIMITED,
    Endpoint,
    HostilePlatform,
    endpoints,
    hostile_platform,
    replaced,
    string_leaves,
)
from xynergy.platform.config import Settings
from xynergy.platform.error_shapes import PLATFORM_ERRORS, ErrorShape

# Lists ordered by another keyset besides the default one.
CURSOR_VARIANTS = {("GET", "/aso-engine/api/content"): [{}, {"sort": "priority"}]}
# Routes that answer their own CORS preflight before anything else: OPTIONS.
_SKIPPED_METHODS = {"OPTIONS", "HEAD"}


@pytest.fixture
def settings(
    make_settings: Callable[..., Settings], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    # Hundreds of requests from one address: no limit may answer first.
    monkeypatch.setenv("XYNERGY_INTAKE_RATE_PER_IP", UNLIMITED["public"])
    monkeypatch.setenv("XYNERGY_INTAKE_RATE_PER_FORM", UNLIMITED["public"])
    return make_settings(database_url=database_url, rate_limits=UNLIMITED)


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[HostilePlatform]:
    async with hostile_platform(settings) as started:
        yield started


def refusal(
    response: httpx.Response, *statuses: int, shape: ErrorShape = PLATFORM_ERRORS
) -> str | None:
    """Why ``response`` is not a refusal with one of ``statuses`` in the error shape
    its route declares (OpenAI's under the AI gateway's /v1, else the platform's)."""
    if response.status_code not in statuses:
        return f"{response.status_code}: {response.text[:200]}"
    body = response.json()
    if not _has_the_fields_of(body, shape.schema):
        return f"not the {shape.name} shape: {body}"
    return None


def _has_the_fields_of(value: object, schema: dict[str, Any]) -> bool:
    """Exactly the schema's fields, at every level of nested objects."""
    if schema.get("type") != "object":
        return True
    properties: dict[str, Any] = schema.get("properties", {})
    return (
        isinstance(value, dict)
        and set(value) == set(properties)
        and all(_has_the_fields_of(value[name], sub) for name, sub in properties.items())
    )


def _every(api: HostilePlatform) -> list[Endpoint]:
    return [e for e in endpoints(api.root) if e.method not in _SKIPPED_METHODS]


class TestForgedCursors:
    async def test_every_list_refuses_every_forged_cursor(self, api: HostilePlatform) -> None:
        before = await api.total_rows()
        failures = []
        lists = [e for e in _every(api) if "cursor" in e.query_names()]
        assert len(lists) >= 8
        for endpoint in lists:
            for variant in CURSOR_VARIANTS.get(endpoint.key, [{}]):
                for name, cursor in FORGED_CURSORS.items():
                    response = await api.send(endpoint, query={**variant, "cursor": cursor})
                    problem = refusal(response, 400, 422, shape=endpoint.route.error_shape)
                    if problem:
                        failures.append(f"{endpoint.key} {variant} {name}: {problem}")
        assert failures == []
        assert await api.total_rows() == before


class TestHostileUrls:
    async def test_every_query_parameter_refuses_nul_and_bytes_that_are_not_utf8(
        self, api: HostilePlatform
    ) -> None:
        before = await api.total_rows()
        failures = []
        checked = 0
        for endpoint in _every(api):
            for parameter in endpoint.query_names():
                for name, raw in HOSTILE_URL_VALUES.items():
                    # Percent-encoded by hand: httpx would encode the '%'.
                    url = f"{api.url(endpoint)}?{parameter}={raw}"
                    response = await api.send(endpoint, url=url)
                    checked += 1
                    problem = refusal(response, 422, shape=endpoint.route.error_shape)
                    if problem:
                        failures.append(f"{endpoint.key} {parameter}={name}: {problem}")
        assert failures == []
        assert checked >= 100
        assert await api.total_rows() == before

    async def test_every_path_parameter_refuses_nul_and_bytes_that_are_not_utf8(
        self, api: HostilePlatform
    ) -> None:
        before = await api.total_rows()
        failures = []
        for endpoint in _every(api):
            for parameter in endpoint.path_names():
                for name, raw in HOSTILE_URL_VALUES.items():
                    response = await api.send(endpoint, url=api.url(endpoint, **{parameter: raw}))
                    # A value no route matches is a 404; one that matches is refused.
                    problem = refusal(response, 404, 422, shape=endpoint.route.error_shape)
                    if problem:
                        failures.append(f"{endpoint.key} {parameter}={name}: {problem}")
        assert failures == []
        assert await api.total_rows() == before


class TestHostileBodies:
    def test_every_route_with_a_body_has_a_sample(self, api: HostilePlatform) -> None:
        with_body = {e.key for e in _every(api) if e.takes_body}
        # CSV, not JSON: its rows are checked by the keyword rules (tests/aso_engine).
        with_body.discard(("POST", "/aso-engine/api/keywords/bulk-import"))
        assert with_body == set(SAMPLE_BODIES)

    async def test_every_sample_is_accepted_as_it_is(self, api: HostilePlatform) -> None:
        failures = []
        for endpoint in _every(api):
            if endpoint.key in SAMPLE_BODIES:
                response = await api.send(endpoint, body=api.sample(endpoint))
                # The submission id is made up: its body must still get past validation.
                if response.status_code >= 300 and response.status_code != 404:
                    failures.append(f"{endpoint.key}: {response.status_code} {response.text}")
        assert failures == []

    async def test_every_string_of_every_body_refuses_nul_and_lone_surrogates(
        self, api: HostilePlatform
    ) -> None:
        failures = []
        checked = 0
        for endpoint in _every(api):
            if endpoint.key not in SAMPLE_BODIES:
                continue
            sample = api.sample(endpoint)
            nul_accepted = NUL_ACCEPTED.get(endpoint.key, set())
            before = await api.total_rows()
            for leaf in string_leaves(sample):
                for name, text in HOSTILE_BODY_TEXT.items():
                    if NUL in text and leaf in nul_accepted:
                        continue  # accepted: see test_prompt_text_may_hold_nul
                    response = await api.send(endpoint, body=replaced(sample, leaf, text))
                    checked += 1
                    problem = refusal(response, 400, 422, shape=endpoint.route.error_shape)
                    if problem:
                        failures.append(f"{endpoint.key} {leaf} {name}: {problem}")
            if await api.total_rows() != before:
                failures.append(f"{endpoint.key}: a refused request wrote rows")
        assert failures == []
        assert checked >= 300

    @pytest.mark.parametrize("spelling", ["escaped", "utf8_bytes"])
    async def test_a_lone_surrogate_anywhere_in_a_json_body_is_refused(
        self, api: HostilePlatform, spelling: str
    ) -> None:
        chat = next(e for e in _every(api) if e.key[1].endswith("/v1/chat/completions"))
        # An extra parameter the OpenAI-compatible endpoint ignores: the platform
        # still refuses text no component could encode.
        body = json_bytes({**api.sample(chat), "metadata": {"note": LONE_SURROGATE}})
        if spelling == "utf8_bytes":
            body = body.replace(b"\\ud800", LONE_SURROGATE.encode("utf-8", "surrogatepass"))
        before = await api.total_rows()

        response = await api.client.post(
            chat.path, content=body, headers={**api.headers, **JSON_HEADERS}
        )

        assert refusal(response, 422, shape=chat.route.error_shape) is None
        assert "surrogate" in response.text
        assert await api.total_rows() == before

    async def test_prompt_text_may_hold_nul(self, api: HostilePlatform) -> None:
        # A prompt is sent to a model (JSON-escaped), never stored: NUL is harmless.
        chat = next(e for e in _every(api) if e.key[1].endswith("/v1/chat/completions"))
        body = replaced(api.sample(chat), ("messages", 0, "content"), "before" + NUL + "after")

        response = await api.send(chat, body=body)

        assert response.status_code == 200, response.text
