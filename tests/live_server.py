"""A real ``xynergy serve`` process on a loopback port, for hostile-client tests.

Tests that attack the server from outside (slow clients, floods, huge headers,
revocation from the CLI) need the real HTTP server, not an in-process ASGI
transport. ``live_server`` migrates the database, starts ``xynergy serve`` on a
free 127.0.0.1 port with the given ``XYNERGY_*`` environment, waits for
``/healthz`` and always stops the process by its PID (SIGTERM, then SIGKILL
after a bound)::

    with live_server({"XYNERGY_RATE_LIMITS": ...}, data_dir=tmp_path / "srv") as server:
        secret = server.issue_key(scopes=("content:read",))
        httpx.get(server.base_url + "/healthz")

The server's own stdout and stderr go to files in ``data_dir`` (a pipe nobody
reads would block the server once full); ``stderr_text()`` reads them back.
Nothing here changes the calling process's environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import async_sessionmaker

from xynergy.platform.config import Settings
from xynergy.platform.db.engine import create_engine_from_settings
from xynergy.platform.db.migrate import upgrade_to_head
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.tenancy import service
from xynergy.platform.tenancy.repository import TenantRepository
from xynergy.platform.tenancy.service import IssuedKey

__all__ = ["LOOPBACK", "LiveServer", "free_port", "live_server", "server_env", "xynergy_command"]

LOOPBACK = "127.0.0.1"
INTERNAL_SECRET = "live-server-internal-secret-" + "x" * 32
STARTUP_TIMEOUT_SECONDS = 60.0
SHUTDOWN_TIMEOUT_SECONDS = 10.0
CLI_TIMEOUT_SECONDS = 60.0
_POLL_SECONDS = 0.05
ResultT = TypeVar("ResultT")
# Rich wraps JSON at the terminal width; a wide virtual terminal keeps it parseable.
_CLI_COLUMNS = "1000"


def xynergy_command() -> list[str]:
    """The argv prefix that runs the ``xynergy`` console script of this interpreter."""
    script = Path(sys.executable).parent / "xynergy"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from xynergy.cli import main; main()"]


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def server_env(env: Mapping[str, str] | None, *, data_dir: Path) -> dict[str, str]:
    """The child environment: ours minus every ``XYNERGY_*``, test defaults, then ``env``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("XYNERGY_")}
    defaults = {
        "XYNERGY_ENVIRONMENT": "test",
        "XYNERGY_DATA_DIR": str(data_dir),
        "XYNERGY_INTERNAL_TOKEN_SECRET": INTERNAL_SECRET,
        "XYNERGY_ACCESS_LOG": "false",
        "XYNERGY_LOG_LEVEL": "WARNING",
        "COLUMNS": _CLI_COLUMNS,
    }
    return base | defaults | dict(env or {})


@dataclass
class LiveServer:
    """A running server process: where it listens and how to look at it."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    data_dir: Path
    env: dict[str, str]

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.process.pid

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{self.host}:{self.port}"

    def rss_bytes(self) -> int:
        """Resident memory of the server process now (``VmRSS`` from /proc)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no VmRSS for pid {self.pid}")

    def cpu_seconds(self) -> float:
        """User plus system CPU time the server process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # utime and stime: fields 14 and 15 of stat(5), i.e. 11 and 12 after the name.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stderr_text(self) -> str:
        """Everything the server wrote to stderr so far."""
        return (self.data_dir / "server.stderr.log").read_text(errors="replace")

    def stdout_text(self) -> str:
        """Everything the server wrote to stdout (its JSON log lines) so far."""
        return (self.data_dir / "server.stdout.log").read_text(errors="replace")

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``xynergy <args>`` against this server's settings (database, Redis, ...)."""
        result = subprocess.run(  # noqa: S603 - our own CLI, arguments from tests
            [*xynergy_command(), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_SECONDS,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"xynergy {' '.join(args)} failed: {result.stderr or result.stdout}")
        return result

    def cli_json(self, *args: str) -> Any:
        """Run ``xynergy <args> --json`` and parse what it prints."""
        return json.loads(self.cli(*args, "--json").stdout)

    def settings(self) -> Settings:
        """Settings pointing at this server's database (for in-process set-up)."""
        return _settings_of(self.env, self.data_dir)

    def tenant_id(self, name: str) -> str:
        """The id of tenant ``name``, created on first use."""
        return _run_async(_ensure_tenant(self.settings(), name))

    def issue_key_record(
        self, *, tenant: str = "acme", scopes: Sequence[str] = ("content:read",)
    ) -> IssuedKey:
        """A new key for tenant ``tenant`` (created if needed): record and secret.

        Written straight into the server's database in this process (the CLI
        takes seconds to import; use ``cli`` when the CLI itself is under test).
        """
        return _run_async(_issue(self.settings(), tenant, list(scopes)))

    def issue_key(self, *, tenant: str = "acme", scopes: Sequence[str] = ("content:read",)) -> str:
        """A new key secret for tenant ``tenant`` (created if needed) with ``scopes``."""
        return self.issue_key_record(tenant=tenant, scopes=scopes).secret

    def bootstrap_admin_key(self) -> str:
        """The operator tenant's first admin key: what ``xynergy bootstrap`` does and prints.

        In this process, like ``issue_key`` (the CLI takes seconds to import; its own
        tests run the command).
        """
        issued = _run_async(_bootstrap(self.settings()))
        if issued is None:
            raise RuntimeError("the operator tenant has an admin key already")
        return issued.secret


def _settings_of(env: Mapping[str, str], data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=env.get("XYNERGY_DATABASE_URL") or None,
        internal_token_secret=env["XYNERGY_INTERNAL_TOKEN_SECRET"],
    )


def _run_async(work: Coroutine[Any, Any, ResultT]) -> ResultT:
    # A thread of its own, so this also works from inside an async test's loop.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work).result()


async def _ensure_tenant(settings: Settings, name: str) -> str:
    engine = create_engine_from_settings(settings)
    try:
        async with unit_of_work(async_sessionmaker(engine, expire_on_commit=False)) as session:
            existing = await TenantRepository(session).get_by_name(name)
            if existing is not None:
                return existing.id
            return (await service.create_tenant(session, name=name)).id
    finally:
        await engine.dispose()


async def _issue(settings: Settings, tenant: str, scopes: list[str]) -> IssuedKey:
    tenant_id = await _ensure_tenant(settings, tenant)
    engine = create_engine_from_settings(settings)
    try:
        async with unit_of_work(async_sessionmaker(engine, expire_on_commit=False)) as session:
            return await service.create_key(
                session, tenant_id=tenant_id, name="live-server test", scopes=scopes
            )
    finally:
        await engine.dispose()


async def _bootstrap(settings: Settings) -> IssuedKey | None:
    engine = create_engine_from_settings(settings)
    try:
        async with unit_of_work(async_sessionmaker(engine, expire_on_commit=False)) as session:
            return await service.ensure_bootstrap_admin_key(session)
    finally:
        await engine.dispose()


def _migrate(settings: Settings) -> None:
    # A thread of its own: the migrations run their own event loop (asyncio.run).
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(upgrade_to_head, settings).result()


def _wait_healthy(server: LiveServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    url = server.base_url + "/healthz"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"server exited with {server.process.returncode}:\n{server.stderr_text()}"
            )
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(_POLL_SECONDS)
    raise TimeoutError(f"server not healthy after {timeout}s:\n{server.stderr_text()}")


def _stop(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):  # it may exit between poll and kill
        os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.wait()


@contextmanager
def live_server(
    env: Mapping[str, str] | None = None,
    *,
    data_dir: Path,
    port: int | None = None,
    migrate: bool = True,
    serve_args: Sequence[str] = (),
    startup_timeout: float = STARTUP_TIMEOUT_SECONDS,
    shutdown_timeout: float = SHUTDOWN_TIMEOUT_SECONDS,
) -> Iterator[LiveServer]:
    """Run ``xynergy serve`` on 127.0.0.1 with ``env`` until the block exits.

    Args:
        env: ``XYNERGY_*`` settings (and anything else) for the server and its CLI
            calls; the outer ``XYNERGY_*`` variables are not inherited.
        data_dir: the server's data dir (SQLite file, log files); created if absent.
        port: the port to listen on; a free one by default.
        migrate: migrate the database first (``xynergy migrate``'s work, in this process).
        serve_args: extra arguments for ``xynergy serve`` (e.g. ``--service``).
        startup_timeout: seconds to wait for ``/healthz``.
        shutdown_timeout: seconds between SIGTERM and SIGKILL.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    child_env = server_env(env, data_dir=data_dir)
    if migrate:
        # What `xynergy migrate` does, in this process: the CLI takes seconds to import.
        _migrate(_settings_of(child_env, data_dir))
    chosen = port or free_port()
    command = [
        *xynergy_command(),
        "serve",
        "--host",
        LOOPBACK,
        "--port",
        str(chosen),
        *serve_args,
    ]
    with (
        (data_dir / "server.stdout.log").open("wb") as stdout,
        (data_dir / "server.stderr.log").open("wb") as stderr,
    ):
        process = subprocess.Popen(command, env=child_env, stdout=stdout, stderr=stderr)  # noqa: S603
    server = LiveServer(
        process=process, host=LOOPBACK, port=chosen, data_dir=data_dir, env=child_env
    )
    try:
        _wait_healthy(server, startup_timeout)
        yield server
    finally:
        _stop(process, shutdown_timeout)
