"""Live reload of registered parts: validate then swap, on the admin call, a changed
file or SIGHUP; a refused reload keeps the running value and says why."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.helpers import auth, issue_key, running
from xynergy.platform.admin_app import create_admin_app
from xynergy.platform.auth.scopes import OPERATOR_TENANT_NAME
from xynergy.platform.config import Settings
from xynergy.platform.runtime import Platform
from xynergy.platform.secrets import SecretReader, Swap

OLD = "old-demo-secret-0123456789"
NEW = "new-demo-secret-9876543210"
REFUSED = "refused-demo-secret-5555555"
NAME = "XYN_DEMO_KEY"
POLL_SECONDS = 0.05


@dataclass
class DemoPart:
    """A part holding one secret; values starting with ``refused`` fail validation."""

    name: str = "demo"
    value: str | None = None
    swaps: int = 0
    seen: list[str] = field(default_factory=list)

    def prepare(self, reader: SecretReader) -> Swap:
        loaded = reader.secret(NAME)
        if loaded is None:
            raise ValueError(f"{NAME} is not set")
        candidate = loaded.value.get_secret_value()
        if candidate.startswith("refused"):
            raise ValueError("the demo key is not in the expected format")

        def swap() -> None:
            self.value = candidate
            self.swaps += 1

        return swap


@dataclass
class Running:
    platform: Platform
    client: httpx.AsyncClient
    part: DemoPart
    key_file: Path
    admin_headers: dict[str, str]
    admin_key_id: str

    def failures(self, secret: str) -> float:
        value = self.platform.metrics.registry.get_sample_value(
            "xynergy_secret_reload_failures_total", {"secret": secret}
        )
        return value or 0.0

    def loaded_at(self, secret: str) -> float | None:
        return self.platform.metrics.registry.get_sample_value(
            "xynergy_secret_last_loaded_timestamp_seconds", {"secret": secret}
        )


def write_atomically(path: Path, text: str) -> None:
    """As a secret mount updates: a new file moved into place."""
    staging = path.with_suffix(".tmp")
    staging.write_text(text + "\n")
    os.replace(staging, path)


@asynccontextmanager
async def running_demo(settings: Settings, key_file: Path) -> AsyncIterator[Running]:
    app = create_admin_app(settings)
    async with running(app) as client:
        platform: Platform = app.state.platform
        part = DemoPart()
        platform.secrets.register(part)
        _, issued = await issue_key(platform, tenant=OPERATOR_TENANT_NAME, scopes=["admin"])
        yield Running(platform, client, part, key_file, auth(issued.secret), issued.key.id)


@pytest.fixture
def key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "demo-key"
    path.write_text(OLD + "\n")
    monkeypatch.setenv(NAME + "_FILE", str(path))
    return path


@pytest.fixture
async def demo(make_settings: Callable[..., Settings], key_file: Path) -> AsyncIterator[Running]:
    """Reloaded only when asked (no polling)."""
    async with running_demo(make_settings(secrets_poll_interval_seconds=0), key_file) as demo:
        yield demo


@pytest.fixture
async def polled(make_settings: Callable[..., Settings], key_file: Path) -> AsyncIterator[Running]:
    """Files polled every 50 ms."""
    settings = make_settings(secrets_poll_interval_seconds=POLL_SECONDS)
    async with running_demo(settings, key_file) as demo:
        yield demo


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


class TestRegister:
    async def test_the_first_load_swaps_in_and_is_measured(self, demo: Running) -> None:
        assert demo.part.value == OLD
        assert demo.loaded_at(NAME) is not None


class TestAdminReload:
    async def test_a_new_value_is_swapped_in_and_reported_by_name(self, demo: Running) -> None:
        demo.key_file.write_text(NEW + "\n")
        answer = await demo.client.post("/admin/secrets/reload", headers=demo.admin_headers)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {
            "trigger": "admin",
            "reloaded": [NAME],
            "unchanged": [],
            "failed": [],
        }
        assert demo.part.value == NEW
        assert NEW not in answer.text

    async def test_an_unchanged_value_is_reported_unchanged(self, demo: Running) -> None:
        answer = await demo.client.post("/admin/secrets/reload", headers=demo.admin_headers)
        assert answer.json()["unchanged"] == [NAME]
        assert demo.part.swaps == 2  # start-up, then the reload (same value)

    async def test_a_refused_value_keeps_the_running_one(self, demo: Running) -> None:
        demo.key_file.write_text(REFUSED)
        answer = await demo.client.post("/admin/secrets/reload", headers=demo.admin_headers)
        body = answer.json()
        assert body["reloaded"] == []
        assert body["failed"] == [
            {"secret": "demo", "reason": "the demo key is not in the expected format"},
            {"secret": NAME, "reason": "not applied: demo failed"},
        ]
        assert demo.part.value == OLD
        assert demo.failures(NAME) == 1
        assert REFUSED not in answer.text

    async def test_an_unreadable_file_is_named(self, demo: Running) -> None:
        demo.key_file.unlink()
        answer = await demo.client.post("/admin/secrets/reload", headers=demo.admin_headers)
        [failure] = answer.json()["failed"]
        assert failure["secret"] == NAME
        assert "cannot read" in failure["reason"]
        assert demo.part.value == OLD

    async def test_the_call_is_audited(
        self, demo: Running, capsys: pytest.CaptureFixture[str]
    ) -> None:
        capsys.readouterr()
        answer = await demo.client.post(
            "/admin/secrets/reload", headers={**demo.admin_headers, "X-Request-ID": "audit-1"}
        )
        assert answer.status_code == 200
        lines = [line for line in capsys.readouterr().out.splitlines() if "audit." in line]
        assert len(lines) == 1
        assert "audit.secrets_reload" in lines[0]
        assert demo.admin_key_id in lines[0]
        assert "audit-1" in lines[0]

    async def test_a_key_without_admin_is_refused(self, demo: Running) -> None:
        _, issued = await issue_key(demo.platform, tenant="acme", scopes=["keys:admin"])
        answer = await demo.client.post("/admin/secrets/reload", headers=auth(issued.secret))
        assert answer.status_code == 403
        assert demo.part.swaps == 1


class TestPolling:
    async def test_a_rewritten_file_is_reloaded(self, polled: Running) -> None:
        write_atomically(polled.key_file, NEW)
        await eventually(lambda: polled.part.value == NEW)

    async def test_a_refused_file_is_reported_once_then_retried_when_it_changes(
        self, polled: Running
    ) -> None:
        write_atomically(polled.key_file, REFUSED)
        await eventually(lambda: polled.failures(NAME) == 1)
        await asyncio.sleep(0.3)  # several poll intervals: no new attempt
        assert polled.failures(NAME) == 1
        assert polled.part.value == OLD
        write_atomically(polled.key_file, NEW)
        await eventually(lambda: polled.part.value == NEW)


class TestSighup:
    async def test_sighup_reloads(self, demo: Running) -> None:
        demo.key_file.write_text(NEW)
        # Without the platform's handler SIGHUP would end the test run: check first.
        assert signal.getsignal(signal.SIGHUP) not in (signal.SIG_DFL, signal.SIG_IGN, None)
        os.kill(os.getpid(), signal.SIGHUP)
        await eventually(lambda: demo.part.value == NEW)

    async def test_the_handler_is_removed_at_shutdown(
        self, make_settings: Callable[..., Settings], key_file: Path
    ) -> None:
        async with running_demo(make_settings(secrets_poll_interval_seconds=0), key_file):
            assert signal.getsignal(signal.SIGHUP) is not signal.SIG_DFL
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL
