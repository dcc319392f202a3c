"""Backends a fault test may take down: its own Redis and its own PostgreSQL cluster.

The machine's PostgreSQL (5432) and Redis (6379) serve everyone else's tests and
are never stopped. A fault test starts its own on a free loopback port, points a
dedicated cluster (``dedicated_cluster``) at it, and kills or restarts that one
by its PID or data directory. As root, PostgreSQL runs as the ``postgres`` user
(initdb refuses root); its data directory is removed at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest

from tests.cluster.conftest import CLUSTER_RATE_LIMITS
from tests.cluster.support import HTTP_TIMEOUT_SECONDS, admin_headers, tool
from tests.conftest import _unavailable
from tests.platform.outage_servers import OwnRedis, free_port

__all__ = [
    "MODEL",
    "OwnPostgres",
    "OwnRedis",
    "dedicated_cluster",
    "tenant_key",
]

PG_BIN_ROOT = Path("/usr/lib/postgresql")
PG_START_TIMEOUT_SECONDS = 60
_PG_USER = "postgres"
# A priced model answered by the offline provider: real costs, no network.
MODEL = "cluster-priced"
INPUT_USD_PER_MTOK = "1.000"
OUTPUT_USD_PER_MTOK = "2.000"
# Every class out of the fault tests' way: they measure the backends, not the limits.
GENEROUS_LIMITS = CLUSTER_RATE_LIMITS | {
    "ai_generate": "1000000/hour",
    "ai_expensive": "1000000/hour",
}
TENANT_SCOPES = ("ai:generate", "ai:usage", "ai:budgets", "content:read", "content:write")


def _pg_bin() -> Path:
    versions = sorted(PG_BIN_ROOT.glob("*/bin/initdb"))
    if not versions:
        _unavailable("postgresql", "initdb not installed (apt-get install postgresql)")
    return versions[-1].parent


@dataclass
class OwnPostgres:
    """A throwaway PostgreSQL cluster (initdb) on its own loopback port."""

    port: int = field(default_factory=free_port)
    data_dir: Path = field(init=False)
    _root: Path = field(init=False)

    def __post_init__(self) -> None:
        self._bin = _pg_bin()
        self._root = Path(tempfile.mkdtemp(prefix="xynergy-own-pg-"))
        self.data_dir = self._root / "data"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            entry = pwd.getpwnam(_PG_USER)
            os.chown(self._root, entry.pw_uid, entry.pw_gid)

    @property
    def admin_dsn(self) -> str:
        """libpq URL of the ``postgres`` database (trust auth, loopback)."""
        return f"postgresql://{_PG_USER}@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = PG_START_TIMEOUT_SECONDS) -> None:
        command = [str(self._bin / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", _PG_USER, "--", *command]
        result = subprocess.run(  # noqa: S603 - Debian's PostgreSQL binaries, our arguments
            command, capture_output=True, text=True, timeout=timeout, check=False, cwd=self._root
        )
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {result.stderr or result.stdout}")

    def init(self) -> None:
        """initdb (trust auth for the loopback only, no fsync: a test's database)."""
        self._run("initdb", "-D", str(self.data_dir), "-U", _PG_USER, "-A", "trust", "--no-sync")

    def start(self) -> None:
        """Start it and wait until it accepts connections."""
        options = (
            f"-p {self.port} -k {self._root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c max_connections=100"
        )
        self._run(
            "pg_ctl", "-D", str(self.data_dir), "-l", str(self._root / "server.log"),
            "-o", options, "-w", "-t", str(PG_START_TIMEOUT_SECONDS), "start",
        )  # fmt: skip
        asyncio.run(self._wait_accepting())

    def stop(self) -> None:
        """Stop it as an operator's restart would (``-m fast``: sessions cut)."""
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")

    def running(self) -> bool:
        """True while its postmaster runs."""
        return (self.data_dir / "postmaster.pid").exists()

    async def _wait_accepting(self) -> None:
        deadline = time.monotonic() + PG_START_TIMEOUT_SECONDS
        while True:
            try:
                connection = await asyncpg.connect(self.admin_dsn, timeout=2)
            except (OSError, asyncpg.PostgresError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
            else:
                await connection.close()
                return

    def destroy(self) -> None:
        """Stop it if it runs and remove its files."""
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            if self.running():
                self.stop()
        shutil.rmtree(self._root, ignore_errors=True)


def priced_catalogue(path: Path) -> Path:
    """A catalogue whose one model (``MODEL``) is priced and answered offline."""
    path.write_text(
        json.dumps(
            {
                "providers": [{"name": "sim", "kind": "offline"}],
                "models": [
                    {
                        "name": MODEL,
                        "provider": "sim",
                        "upstream_model": "offline-deterministic-v1",
                        "input_price_per_mtok": INPUT_USD_PER_MTOK,
                        "output_price_per_mtok": OUTPUT_USD_PER_MTOK,
                        "context_window": 32_000,
                    }
                ],
                "include_offline_model": False,
            }
        )
    )
    return path


@contextmanager
def dedicated_cluster(
    work_dir: Path,
    *,
    database_name: str,
    extra_env: Mapping[str, str] | None = None,
    postgres_admin_dsn: str | None = None,
    redis_url: str | None = None,
) -> Iterator[Any]:
    """3 replicas and nginx of their own (not the session's), priced AI, generous limits."""
    for binary in ("nginx", "wrk"):
        if shutil.which(binary) is None and not Path(f"/usr/sbin/{binary}").exists():
            _unavailable(binary, "not installed (apt-get install nginx-light wrk)")
    env = {
        "XYNERGY_RATE_LIMITS": json.dumps(GENEROUS_LIMITS),
        "XYNERGY_ACCESS_LOG": "false",
        "XYNERGY_AI_CATALOGUE": str(priced_catalogue(work_dir / "catalogue.json")),
        "XYNERGY_AI_TOKENS_PER_MINUTE": "100000000/minute",
        **(extra_env or {}),
    }
    with tool("cluster").running_cluster(
        replicas=3,
        extra_env=env,
        work_dir=work_dir / "cluster",
        database_name=database_name,
        postgres_admin_dsn=postgres_admin_dsn,
        redis_url=redis_url,
    ) as running:
        names = ", ".join(f"{r.name}=:{r.port} (pid {r.pid})" for r in running.replicas)
        print(f"\ndedicated cluster: nginx at {running.proxy_url}; {names}")  # noqa: T201
        yield running


def tenant_key(cluster: Any, name: str) -> tuple[str, str, str]:
    """A new tenant and a key of it with ``TENANT_SCOPES``: (tenant id, key id, secret)."""
    headers = admin_headers(cluster)
    with httpx.Client(base_url=cluster.proxy_url, timeout=HTTP_TIMEOUT_SECONDS) as client:
        created = client.post("/admin/tenants", json={"name": name}, headers=headers)
        assert created.status_code == 201, created.text
        tenant_id = str(created.json()["id"])
        issued = client.post(
            "/admin/keys",
            json={"name": name, "scopes": list(TENANT_SCOPES)},
            headers=admin_headers(cluster) | {"X-Xynergy-Tenant": tenant_id},
        )
        assert issued.status_code == 201, issued.text
        body = issued.json()
        return tenant_id, str(body["key"]["id"]), str(body["secret"])


def skip_unless_postgres_binaries() -> None:
    """Skip (fail under CI) without Debian's PostgreSQL server binaries."""
    _pg_bin()
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(_PG_USER)
        except KeyError:
            pytest.fail("running as root without a postgres user to run PostgreSQL as")
