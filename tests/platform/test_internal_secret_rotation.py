"""The internal token secret rotated live across two replicas without one failed call.

Two replicas of one service, each a real server on a loopback port, call each
other over the network without pause (A -> B and B -> A) while the secret
rotates in the runbook's three steps; they share one set of secret files (as a
mounted secret) but each reloads, through ``POST /admin/secrets/reload``, at its
own moment. Every call must succeed. Skipping the first step (one replica signs
with the new secret before the other accepts it) must fail calls with 401:
that is what the order of the steps protects against.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Request

from tests.helpers import auth, issue_key
from xynergy.platform.app import create_service_app
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes
from xynergy.platform.auth.internal_secret_reload import (
    NEXT,
    PREVIOUS,
    SIGNING,
    InternalSecretPart,
)
from xynergy.platform.auth.internal_tokens import (
    INTERNAL_TOKEN_HEADER,
    InternalTokens,
    TokenSecrets,
)
from xynergy.platform.auth.scopes import OPERATOR_TENANT_NAME
from xynergy.platform.config import DEFAULT_RATE_LIMITS, Settings
from xynergy.platform.monitoring import PlatformMetrics
from xynergy.platform.routing import api_router
from xynergy.platform.runtime import Platform
from xynergy.platform.secrets import ReloadFailure, ReloadReport, SecretError, SecretsRegistry
from xynergy.server import build_all_in_one

MakeSettings = Callable[..., Settings]

OLD = "old-internal-token-secret-" + "o" * 32
NEW = "new-internal-token-secret-" + "n" * 32
PEER = "peer"
CALLS_PER_MOMENT = 8
SERVER_START_BOUND_SECONDS = 10.0
TRAFFIC_BOUND_SECONDS = 20.0
# The traffic of a whole scenario stays far below these.
ROOMY_LIMITS = DEFAULT_RATE_LIMITS | {"reads": "100000/hour", "admin": "100000/hour"}

ReadAuth = Annotated[AuthContext, Depends(require_scopes("content:read"))]


# --- the replicas ---------------------------------------------------------------------


def peer_router() -> APIRouter:
    router = api_router()

    @router.get("/relay")
    async def relay(request: Request, caller: ReadAuth) -> dict[str, Any]:
        """Call the other replica's /whoami; answer with its status."""
        services = request.app.state.platform.services
        answer = await services.request(
            PEER, "GET", "/whoami", caller=caller, scopes={"content:read"}
        )
        return {"status": answer.status, "body": answer.json()}

    @router.get("/whoami")
    async def whoami(caller: ReadAuth) -> dict[str, str]:
        """How the caller authenticated."""
        return {"via": caller.via}

    return router


def peer_app(settings: Settings) -> FastAPI:
    return create_service_app(slug=PEER, title=PEER, settings=settings, routers=[peer_router()])


@dataclass
class SecretFiles:
    """The mounted secret: one file per setting, rewritten as a mount updates (rename)."""

    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / name.lower()

    def write(self, name: str, value: str) -> None:
        staging = self.path(name).with_suffix(".tmp")
        staging.write_text(value + "\n")
        os.replace(staging, self.path(name))


@pytest.fixture
def secret_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SecretFiles:
    """All three files configured, at rest: every one holds the current secret."""
    files = SecretFiles(tmp_path / "secrets")
    files.directory.mkdir()
    for name in (SIGNING, NEXT, PREVIOUS):
        files.write(name, OLD)
        monkeypatch.setenv(name + "_FILE", str(files.path(name)))
    return files


@dataclass
class Replica:
    name: str
    url: str
    platform: Platform
    admin_headers: dict[str, str]

    async def reload(self, client: httpx.AsyncClient) -> dict[str, Any]:
        """``POST /admin/secrets/reload`` on this replica only."""
        answer = await client.post(self.url + "/admin/secrets/reload", headers=self.admin_headers)
        assert answer.status_code == 200, answer.text
        report: dict[str, Any] = answer.json()
        assert report["failed"] == [], report
        return report


@asynccontextmanager
async def serving(app: Any, sock: socket.socket) -> AsyncIterator[None]:
    """Serve ``app`` (lifespan included) with uvicorn on the bound ``sock``."""
    config = uvicorn.Config(
        app, log_level="warning", log_config=None, access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="replica-server")
    try:
        async with asyncio.timeout(SERVER_START_BOUND_SECONDS):
            while not server.started:
                if task.done():
                    task.result()
                    pytest.fail("uvicorn stopped before it started")
                await asyncio.sleep(0.01)
        yield
    finally:
        server.should_exit = True
        await task


def bound_loopback_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


@asynccontextmanager
async def two_replicas(
    make_settings: MakeSettings, database_url: str
) -> AsyncIterator[tuple[Replica, Replica]]:
    """Replicas A and B on loopback ports and one database, each calling the other's
    ``peer`` service."""
    async with AsyncExitStack() as stack:
        sockets = [bound_loopback_socket() for _ in range(2)]
        for sock in sockets:
            stack.callback(sock.close)
        urls = [f"http://127.0.0.1:{sock.getsockname()[1]}" for sock in sockets]
        roots = [
            build_all_in_one(
                make_settings(
                    database_url=database_url,
                    # From the files only (the environment names them).
                    internal_token_secret=None,
                    service_urls={PEER: other + "/" + PEER},
                    rate_limits=ROOMY_LIMITS,
                    # Each replica reloads only when the test says so.
                    secrets_poll_interval_seconds=0,
                    secrets_reload_on_sighup=False,
                ),
                services={PEER: peer_app},
            )
            for other in reversed(urls)
        ]
        for root, sock in zip(roots, sockets, strict=True):
            await stack.enter_async_context(serving(root, sock))
        replicas = []
        for name, root, url in zip("AB", roots, urls, strict=True):
            platform: Platform = root.state.platform
            _, admin = await issue_key(platform, tenant=OPERATOR_TENANT_NAME, scopes=["admin"])
            replicas.append(Replica(name, url, platform, auth(admin.secret)))
        yield replicas[0], replicas[1]


# --- the traffic ----------------------------------------------------------------------


def direction(replica: Replica) -> str:
    """``A->B`` for calls through A (its peer service calls B)."""
    return f"{replica.name}->{'B' if replica.name == 'A' else 'A'}"


@dataclass
class Traffic:
    """Calls through A to B and through B to A, without pause, until stopped."""

    client: httpx.AsyncClient
    headers: dict[str, str]
    replicas: tuple[Replica, Replica]
    # Per direction: (when the call started, monotonic; the status the callee gave).
    outcomes: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.outcomes = {direction(replica): [] for replica in self.replicas}

    async def drive(self, replica: Replica) -> None:
        statuses = self.outcomes[direction(replica)]
        while True:
            started = time.monotonic()
            answer = await self.client.get(replica.url + f"/{PEER}/relay", headers=self.headers)
            relayed = answer.json().get("status") if answer.status_code == 200 else None
            status = relayed if isinstance(relayed, int) else answer.status_code
            statuses.append((started, status))
            if status != 200:
                self.failures.append(f"{direction(replica)}: {status} {answer.text[:200]}")

    async def more_calls(self, count: int = CALLS_PER_MOMENT) -> None:
        """Wait until ``count`` more calls went each way (the moment is really exercised)."""
        wanted = {way: len(statuses) + count for way, statuses in self.outcomes.items()}
        async with asyncio.timeout(TRAFFIC_BOUND_SECONDS):
            while any(len(self.outcomes[way]) < total for way, total in wanted.items()):
                await asyncio.sleep(0.01)


@asynccontextmanager
async def traffic(replicas: tuple[Replica, Replica]) -> AsyncIterator[Traffic]:
    _, caller = await issue_key(replicas[0].platform, tenant="acme", scopes=["content:read"])
    async with httpx.AsyncClient(timeout=10.0) as client:
        load = Traffic(client, auth(caller.secret), replicas)
        tasks = [
            asyncio.create_task(load.drive(replica), name=f"traffic-{replica.name}")
            for replica in replicas
        ]
        try:
            await load.more_calls()
            yield load
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def token_signed_with(secret: str, audience: str = PEER) -> str:
    issuer = InternalTokens(secrets=[secret.encode()], ttl_seconds=60, leeway_seconds=5)
    caller = AuthContext(
        tenant_id="t-1",
        key_id="k-1",
        key_tenant_id="t-1",
        scopes=frozenset({"content:read"}),
        via="key",
    )
    return issuer.mint(
        caller, audience=audience, scopes=frozenset({"content:read"}), request_id=None
    )


# --- the scenarios --------------------------------------------------------------------


class TestThreeStepRotation:
    @pytest.mark.parametrize("first", ["A", "B"])
    async def test_every_call_succeeds_while_each_replica_reloads_at_its_own_moment(
        self,
        make_settings: MakeSettings,
        database_url: str,
        secret_files: SecretFiles,
        capsys: pytest.CaptureFixture[str],
        first: str,
    ) -> None:
        async with two_replicas(make_settings, database_url) as (a, b):
            early, late = (a, b) if first == "A" else (b, a)
            async with traffic((a, b)) as load:
                # Step 1: every replica accepts the new secret; all still sign with the old.
                secret_files.write(NEXT, NEW)
                assert (await early.reload(load.client))["reloaded"] == [NEXT]
                await load.more_calls()
                assert (await late.reload(load.client))["reloaded"] == [NEXT]
                await load.more_calls()

                # Step 2: the new secret signs, the old one stays accepted; one
                # replica signs new while the other still signs old.
                secret_files.write(SIGNING, NEW)
                assert (await early.reload(load.client))["reloaded"] == [SIGNING]
                assert early.platform.internal_tokens.current.signing == NEW.encode()
                assert late.platform.internal_tokens.current.signing == OLD.encode()
                await load.more_calls()
                assert (await late.reload(load.client))["reloaded"] == [SIGNING]
                await load.more_calls()

                # Step 3 (after a token lifetime): the old secret goes, replicas in
                # the other order.
                secret_files.write(PREVIOUS, NEW)
                assert (await late.reload(load.client))["reloaded"] == [PREVIOUS]
                await load.more_calls()
                assert (await early.reload(load.client))["reloaded"] == [PREVIOUS]
                await load.more_calls()

            assert load.failures == []
            assert all(len(calls) >= 6 * CALLS_PER_MOMENT for calls in load.outcomes.values())
            async with httpx.AsyncClient(timeout=10.0) as client:
                for replica in (a, b):
                    assert replica.platform.internal_tokens.current == TokenSecrets.of(NEW.encode())
                    # The old secret is no longer accepted anywhere.
                    refused = await client.get(
                        replica.url + f"/{PEER}/whoami",
                        headers={INTERNAL_TOKEN_HEADER: token_signed_with(OLD)},
                    )
                    assert refused.status_code == 401, refused.text
                    loaded_at = replica.platform.metrics.registry.get_sample_value(
                        "xynergy_secret_last_loaded_timestamp_seconds", {"secret": SIGNING}
                    )
                    assert loaded_at is not None

        logged = capsys.readouterr()
        for secret in (OLD, NEW):
            assert secret not in logged.out
            assert secret not in logged.err

    async def test_skipping_the_first_step_fails_calls_with_401(
        self, make_settings: MakeSettings, database_url: str, secret_files: SecretFiles
    ) -> None:
        async with two_replicas(make_settings, database_url) as (a, b), traffic((a, b)) as load:
            # New made the signing secret on A while B does not accept it yet.
            secret_files.write(SIGNING, NEW)
            assert (await a.reload(load.client))["reloaded"] == [SIGNING]
            reloaded = time.monotonic()
            await load.more_calls(CALLS_PER_MOMENT + 1)  # one may have started before

        after = [status for started, status in load.outcomes["A->B"] if started > reloaded]
        assert len(after) >= CALLS_PER_MOMENT
        assert set(after) == {401}
        # B still signs old, which A accepts (its previous secret): only A -> B breaks.
        assert {status for _, status in load.outcomes["B->A"]} == {200}


# --- the part's checks, one process -----------------------------------------------------


@dataclass
class Process:
    """One process's internal tokens, registered with a registry reading ``environ``."""

    tokens: InternalTokens
    registry: SecretsRegistry
    environ: dict[str, str]

    async def reload(self) -> ReloadReport:
        return await self.registry.reload("admin")


def start_process(settings: Settings, environ: dict[str, str]) -> Process:
    tokens = InternalTokens.from_settings(settings)
    registry = SecretsRegistry(metrics=PlatformMetrics(), max_bytes=65_536, environ=environ)
    registry.register(InternalSecretPart(settings=settings, tokens=tokens))
    return Process(tokens, registry, environ)


@pytest.fixture
def unconfigured(make_settings: MakeSettings) -> Settings:
    """No internal token secret in the settings: only what the environment names counts."""
    return make_settings(internal_token_secret=None)


@pytest.fixture
def files_at_rest(tmp_path: Path) -> tuple[SecretFiles, dict[str, str]]:
    """The three files holding the old secret, named by an environment of their own."""
    files = SecretFiles(tmp_path / "part-secrets")
    files.directory.mkdir()
    for name in (SIGNING, NEXT, PREVIOUS):
        files.write(name, OLD)
    return files, {name + "_FILE": str(files.path(name)) for name in (SIGNING, NEXT, PREVIOUS)}


class TestTheReloadablePart:
    def test_next_and_previous_equal_to_the_signing_secret_add_nothing(
        self, unconfigured: Settings, files_at_rest: tuple[SecretFiles, dict[str, str]]
    ) -> None:
        _, environ = files_at_rest
        process = start_process(unconfigured, environ)

        assert process.tokens.current == TokenSecrets.of(OLD.encode())

    async def test_a_new_secret_is_accepted_before_it_signs(
        self, unconfigured: Settings, files_at_rest: tuple[SecretFiles, dict[str, str]]
    ) -> None:
        files, environ = files_at_rest
        process = start_process(unconfigured, environ)
        files.write(NEXT, NEW)

        report = await process.reload()

        assert report.reloaded == [NEXT]
        assert process.tokens.current == TokenSecrets.of(OLD.encode(), NEW.encode())
        assert process.tokens.verify(token_signed_with(NEW), audience=PEER).key_id == "k-1"

    async def test_a_short_secret_is_refused_by_name_and_the_running_set_stays(
        self,
        unconfigured: Settings,
        files_at_rest: tuple[SecretFiles, dict[str, str]],
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        files, environ = files_at_rest
        process = start_process(unconfigured, environ)
        short = "short-next-secret"
        files.write(NEXT, short)
        files.write(PREVIOUS, NEW)

        report = await process.reload()

        assert report.reloaded == []
        assert report.failed == [
            ReloadFailure(NEXT, "shorter than 32 characters"),
            ReloadFailure(PREVIOUS, f"not applied: {NEXT} failed"),
        ]
        assert process.tokens.current == TokenSecrets.of(OLD.encode())
        logged = capsys.readouterr().out
        assert "secrets.reload_refused" in logged
        assert short not in logged
        assert NEW not in logged

    async def test_removing_the_signing_secret_is_refused(
        self, unconfigured: Settings, files_at_rest: tuple[SecretFiles, dict[str, str]]
    ) -> None:
        _, environ = files_at_rest
        process = start_process(unconfigured, environ)
        del environ[SIGNING + "_FILE"]

        report = await process.reload()

        [failure] = report.failed
        assert failure.secret == SIGNING
        assert "cannot be removed" in failure.reason
        assert process.tokens.current == TokenSecrets.of(OLD.encode())

    def test_a_short_secret_at_start_up_fails_the_start(
        self, unconfigured: Settings, files_at_rest: tuple[SecretFiles, dict[str, str]]
    ) -> None:
        files, environ = files_at_rest
        files.write(SIGNING, "short-signing-secret")

        with pytest.raises(SecretError, match=SIGNING) as refused:
            start_process(unconfigured, environ)
        assert "short-signing-secret" not in str(refused.value)

    def test_production_requires_a_signing_secret(self, unconfigured: Settings) -> None:
        production = unconfigured.model_copy(update={"environment": "production"})
        tokens = InternalTokens(secrets=[OLD.encode()], ttl_seconds=60, leeway_seconds=5)
        registry = SecretsRegistry(metrics=PlatformMetrics(), max_bytes=65_536, environ={})

        with pytest.raises(SecretError, match="production requires"):
            registry.register(InternalSecretPart(settings=production, tokens=tokens))
        assert tokens.current == TokenSecrets.of(OLD.encode())


class TestTheDevelopmentFallback:
    def test_without_a_secret_the_generated_one_signs_and_is_shared(
        self, unconfigured: Settings
    ) -> None:
        first = start_process(unconfigured, {})
        second = start_process(unconfigured, {})

        generated = (unconfigured.data_dir / "internal-token.secret").read_text().encode()
        assert first.tokens.current == TokenSecrets.of(generated)
        caller = AuthContext("t-1", "k-1", "t-1", frozenset({"content:read"}), "key")
        token = first.tokens.mint(
            caller, audience=PEER, scopes=frozenset({"content:read"}), request_id=None
        )
        assert second.tokens.verify(token, audience=PEER).key_id == "k-1"

    async def test_a_configured_secret_replaces_the_generated_one_and_then_stays(
        self, unconfigured: Settings, files_at_rest: tuple[SecretFiles, dict[str, str]]
    ) -> None:
        _, configured = files_at_rest
        environ: dict[str, str] = {}
        process = start_process(unconfigured, environ)
        environ.update(configured)

        assert (await process.reload()).reloaded == [SIGNING, NEXT, PREVIOUS]
        assert process.tokens.current == TokenSecrets.of(OLD.encode())

        environ.clear()
        [failure] = (await process.reload()).failed
        assert failure.secret == SIGNING
        assert process.tokens.current == TokenSecrets.of(OLD.encode())
