"""Provider keys and the catalogue reloaded while the gateway serves (issue 17).

The fake provider checks the key of every request it receives, so "requests after
the reload use the new key" is asserted where the key arrives, not inferred.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from tests.ai_routing.fakes import FakeOpenAI
from tests.ai_routing.gateway import Gateway, gateway, generous_limits, http_model, write_catalogue
from tests.helpers import auth, issue_key, running
from xynergy.ai_routing.config import AiSettings
from xynergy.platform.admin_app import create_admin_app
from xynergy.platform.auth.scopes import OPERATOR_TENANT_NAME
from xynergy.platform.config import Settings

pytestmark = pytest.mark.asyncio

KEY_VAR = "XYN_TEST_OPENAI_API_KEY"
OLD_KEY = "sk-old-Q7fK2mXv9pLr4TzW8nBcHd"
NEW_KEY = "sk-new-Vb3Nq8RtY6uWx1ZaE5kJpM"
WRONG_KEY = "sk-bad-Gh4Lc9Fs2Dp7Ko1Mi6UeTy"
SECRETS = (OLD_KEY, NEW_KEY, WRONG_KEY)
REQUESTS = 200
WORKERS = 10
POLL_SECONDS = 0.05


class KeyCheckingOpenAI(FakeOpenAI):
    """Accepts any key in ``accepted`` (a provider keeps the old key valid while it
    rolls over) and counts the keys it received, in order."""

    def __init__(self, accepted: set[str]) -> None:
        super().__init__()
        self.accepted = accepted
        self.keys: list[str] = []

    def _refusal(self, request: web.Request) -> tuple[int, str] | None:
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.keys.append(key)
        if key in self.accepted:
            return None
        # What OpenAI answers: the refused key, partly masked, in the message.
        return 401, f"Incorrect API key provided: {key[:3]}***{key[-6:]}"


@dataclass
class Setup:
    gw: Gateway
    fake: KeyCheckingOpenAI
    key_file: Path
    catalogue: Path


def rewrite(path: Path, text: str) -> None:
    """As a mounted secret is updated: a new file moved into place."""
    staging = path.with_suffix(".new")
    staging.write_text(text)
    os.replace(staging, path)


def catalogue_for(tmp_path: Path, fake: FakeOpenAI) -> Path:
    return write_catalogue(
        tmp_path / "catalogue.json",
        providers=[
            {"name": "openai", "kind": "openai", "base_url": fake.base_url, "api_key_env": KEY_VAR}
        ],
        models=[
            http_model("gpt", "openai"),
            http_model("gpt-or-offline", "openai", fallbacks=["xynergy-offline"]),
        ],
    )


@asynccontextmanager
async def serving(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    accepted: set[str],
    poll_seconds: float = 0,
) -> AsyncIterator[Setup]:
    key_file = tmp_path / "openai-key"
    key_file.write_text(OLD_KEY + "\n")
    monkeypatch.setenv(KEY_VAR + "_FILE", str(key_file))
    async with KeyCheckingOpenAI(accepted) as fake:
        catalogue = catalogue_for(tmp_path, fake)
        settings = make_settings(
            rate_limits=generous_limits(), secrets_poll_interval_seconds=poll_seconds
        )
        ai = AiSettings(catalogue=catalogue, cache_enabled=False)
        async with gateway(settings, ai) as gw:
            yield Setup(gw, fake, key_file, catalogue)


def body(content: str, model: str = "gpt") -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 20}


async def post(gw: Gateway, content: str, model: str = "gpt") -> httpx.Response:
    return await gw.client.post(
        "/v1/chat/completions", json=body(content, model), headers=gw.headers
    )


def failures(gw: Gateway, secret: str) -> float:
    value = gw.platform.metrics.registry.get_sample_value(
        "xynergy_secret_reload_failures_total", {"secret": secret}
    )
    return value or 0.0


class TestRotationUnderLoad:
    async def test_every_request_succeeds_and_later_ones_carry_the_new_key(
        self,
        make_settings: Callable[..., Settings],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        async with serving(
            make_settings,
            tmp_path,
            monkeypatch,
            accepted={OLD_KEY, NEW_KEY},
            poll_seconds=POLL_SECONDS,
        ) as setup:
            gw, fake = setup.gw, setup.fake
            statuses: list[int] = []
            swapped_at_call: list[int] = []

            async def worker(n: int) -> None:
                for i in range(REQUESTS // WORKERS):
                    answer = await post(gw, f"load {n} {i}")
                    statuses.append(answer.status_code)
                    await asyncio.sleep(0.01)

            async def rotate() -> None:
                await fake.wait_for_calls(REQUESTS // 3)
                rewrite(setup.key_file, NEW_KEY + "\n")
                while gw.platform.secrets.changed_at(KEY_VAR) is None:
                    await asyncio.sleep(0.005)
                swapped_at_call.append(fake.calls)

            await asyncio.gather(rotate(), *(worker(n) for n in range(WORKERS)))

            assert statuses == [200] * REQUESTS
            loaded_at = gw.platform.metrics.registry.get_sample_value(
                "xynergy_secret_last_loaded_timestamp_seconds", {"secret": KEY_VAR}
            )
            assert loaded_at == gw.platform.secrets.changed_at(KEY_VAR)
            [swapped] = swapped_at_call
            seen = Counter(fake.keys)
            assert set(seen) == {OLD_KEY, NEW_KEY}
            assert seen[NEW_KEY] >= REQUESTS - swapped - WORKERS
            # Once the swap is seen, only calls already in flight may carry the old key.
            assert OLD_KEY not in fake.keys[swapped + WORKERS :]
            assert fake.keys[-WORKERS:] == [NEW_KEY] * WORKERS

    async def test_a_call_in_flight_finishes_with_the_key_it_started_with(
        self,
        make_settings: Callable[..., Settings],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        async with serving(make_settings, tmp_path, monkeypatch, accepted={OLD_KEY}) as setup:
            gw, fake = setup.gw, setup.fake
            fake.gate = asyncio.Event()
            in_flight = asyncio.create_task(post(gw, "started before the reload"))
            await fake.wait_for_calls(1)
            rewrite(setup.key_file, NEW_KEY)
            report = await gw.platform.secrets.reload("admin")
            assert report.reloaded == [KEY_VAR]
            fake.gate.set()
            assert (await in_flight).status_code == 200
            fake.accepted = {NEW_KEY}
            assert (await post(gw, "started after the reload")).status_code == 200
            assert fake.keys == [OLD_KEY, NEW_KEY]


class TestWrongNewKey:
    async def test_requests_fail_naming_the_secret_and_fallbacks_keep_serving(
        self,
        make_settings: Callable[..., Settings],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        bodies: list[str] = []
        async with serving(make_settings, tmp_path, monkeypatch, accepted={OLD_KEY}) as setup:
            gw = setup.gw
            before = await post(gw, "before")
            assert before.status_code == 200
            rewrite(setup.key_file, WRONG_KEY + "\n")
            report = await gw.platform.secrets.reload("admin")
            assert report.reloaded == [KEY_VAR]

            refused = await post(gw, "after", model="gpt")
            bodies.append(refused.text)
            assert refused.status_code == 503
            message = refused.json()["error"]["message"]
            assert f"provider openai rejected its key ({KEY_VAR}_FILE, reloaded" in message
            assert "s ago" in message

            served = await post(gw, "after", model="gpt-or-offline")
            bodies.append(served.text)
            assert served.status_code == 200
            assert served.json()["model"] == "xynergy-offline"
            metrics = gw.platform.metrics.render().decode()
            secrets_repr = repr(gw.engine.lineup.current) + repr(gw.platform.secrets.__dict__)
        logs = capsys.readouterr()
        text = "\n".join([logs.out, logs.err, caplog.text, metrics, secrets_repr, *bodies])
        assert "ai.provider_key_rejected" in text
        for secret in SECRETS:
            assert secret not in text
            assert secret[-6:] not in text  # nor the tail the provider's masked echo keeps


class TestInvalidCatalogue:
    async def test_the_running_catalogue_keeps_serving_and_the_error_is_reported(
        self,
        make_settings: Callable[..., Settings],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        async with serving(make_settings, tmp_path, monkeypatch, accepted={OLD_KEY}) as setup:
            gw = setup.gw
            setup.catalogue.write_text('{"providers": [], "models": "not a list"}')
            admin = create_admin_app(gw.platform.settings, platform=gw.platform)
            async with running(admin) as client:
                _, issued = await issue_key(
                    gw.platform, tenant=OPERATOR_TENANT_NAME, scopes=["admin"]
                )
                answer = await client.post("/admin/secrets/reload", headers=auth(issued.secret))
            assert answer.status_code == 200
            report = answer.json()
            assert report["reloaded"] == []
            assert [f["secret"] for f in report["failed"]] == ["XYNERGY_AI_CATALOGUE"]
            reason = report["failed"][0]["reason"]
            assert reason.startswith("invalid catalogue: providers: ")
            assert "models: Input should be a valid tuple" in reason
            assert failures(gw, "XYNERGY_AI_CATALOGUE") == 1

            assert (await post(gw, "still served")).status_code == 200
            models = await gw.client.get("/v1/models", headers=gw.headers)
            assert {m["id"] for m in models.json()["data"]} >= {"gpt", "gpt-or-offline"}
        out = capsys.readouterr().out
        assert "secrets.reload_refused" in out
        assert OLD_KEY not in out + answer.text

    async def test_a_valid_new_catalogue_is_swapped_in_whole(
        self,
        make_settings: Callable[..., Settings],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        async with serving(make_settings, tmp_path, monkeypatch, accepted={OLD_KEY}) as setup:
            gw = setup.gw
            write_catalogue(
                setup.catalogue,
                providers=[
                    {
                        "name": "openai",
                        "kind": "openai",
                        "base_url": setup.fake.base_url,
                        "api_key_env": KEY_VAR,
                    }
                ],
                models=[http_model("gpt-renamed", "openai")],
            )
            report = await gw.platform.secrets.reload("admin")
            assert report.reloaded == ["XYNERGY_AI_CATALOGUE"]
            assert (await post(gw, "old name")).status_code == 404
            assert (await post(gw, "new name", model="gpt-renamed")).status_code == 200

    async def test_a_key_the_new_catalogue_no_longer_names_is_dropped(
        self,
        make_settings: Callable[..., Settings],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        async with serving(make_settings, tmp_path, monkeypatch, accepted={OLD_KEY}) as setup:
            gw = setup.gw
            keyless = {"name": "local", "kind": "openai", "base_url": setup.fake.base_url}
            write_catalogue(
                setup.catalogue, providers=[keyless], models=[http_model("gpt", "local")]
            )
            await gw.platform.secrets.reload("admin")
            again = await gw.platform.secrets.reload("admin")
            assert (again.reloaded, again.unchanged) == ([], ["XYNERGY_AI_CATALOGUE"])
            assert setup.key_file not in gw.platform.secrets.watched_files()
            assert KEY_VAR not in gw.platform.metrics.render().decode()
