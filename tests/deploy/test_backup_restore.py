"""The backup procedure of deploy/README.md, run for real on the test PostgreSQL server.

A fresh database is migrated with ``xynergy migrate`` (the platform's schema and
DBOS's), written to through a running ``xynergy serve`` (a tenant, a key, content),
dumped with ``pg_dump -Fc``, restored with ``pg_restore`` into a second fresh
database, and a server started on the copy reads the data back with the same key.
Both databases are dropped at the end.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import POSTGRES_ADMIN_URL, _pg_admin, _unavailable
from tests.live_server import CLI_TIMEOUT_SECONDS, live_server, server_env, xynergy_command

pytestmark = pytest.mark.postgres

CONTENT = "/aso-engine/api/content"
TOOL_TIMEOUT_SECONDS = 120


def _app_url(database: str) -> str:
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + database


def _libpq_url(database: str) -> str:
    """The same database as pg_dump and pg_restore spell it (no SQLAlchemy driver)."""
    return _app_url(database).replace("postgresql+asyncpg://", "postgresql://")


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        _unavailable(name, "not on PATH (Debian: postgresql-client)")
    assert path is not None
    return path


@pytest.fixture
def databases() -> Iterator[tuple[str, str]]:
    """Two empty databases (original, restored), dropped afterwards whatever happens."""
    names = tuple("xyn_backup_" + uuid.uuid4().hex[:12] for _ in range(2))
    created: list[str] = []
    try:
        try:
            for name in names:
                # Generated from hex digits above; CREATE DATABASE takes no bound parameters.
                create = "CREATE DATABASE " + name
                asyncio.run(_pg_admin(create))  # guard: allow XG001 generated identifier
                created.append(name)
        except (OSError, asyncpg.PostgresError) as exc:
            _unavailable("PostgreSQL", exc)
        yield names[0], names[1]
    finally:
        for name in created:
            drop = "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"
            asyncio.run(_pg_admin(drop))  # guard: allow XG001 generated identifier


def _xynergy(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(  # noqa: S603 - our own CLI
        [*xynergy_command(), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, f"xynergy {' '.join(args)}: {result.stderr}"
    return result.stdout


def _run(argv: list[str]) -> None:
    result = subprocess.run(  # noqa: S603 - PostgreSQL's own tools, arguments from the test
        argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT_SECONDS, check=False
    )
    assert result.returncode == 0, f"{argv[0]}: {result.stderr}"


def test_dump_and_restore_keep_every_record(databases: tuple[str, str], tmp_path: Path) -> None:
    original, restored = databases
    pg_dump, pg_restore = _tool("pg_dump"), _tool("pg_restore")
    env = {"XYNERGY_DATABASE_URL": _app_url(original)}
    _xynergy(server_env(env, data_dir=tmp_path / "migrate"), "migrate")

    with live_server(env, data_dir=tmp_path / "before", migrate=False) as server:
        key = server.issue_key(tenant="acme", scopes=("content:read", "content:write"))
        headers = {"Authorization": f"Bearer {key}"}
        created = httpx.post(
            server.base_url + CONTENT,
            json={"title": "Backed up", "body": "kept across a restore", "author": "ops"},
            headers=headers | {"Idempotency-Key": uuid.uuid4().hex},
            timeout=30,
        )
        assert created.status_code == 201, created.text
        content_id = created.json()["id"]

    dump = tmp_path / "xynergy.dump"
    # The commands deploy/README.md gives ("Backups and restores").
    _run([pg_dump, "--format=custom", "--file", str(dump), _libpq_url(original)])
    _run([pg_restore, "--no-owner", "--exit-on-error", "--dbname", _libpq_url(restored), str(dump)])

    restored_env = {"XYNERGY_DATABASE_URL": _app_url(restored)}
    info = _xynergy(server_env(restored_env, data_dir=tmp_path / "info"), "info", "--json")
    assert '"schema": "current"' in info
    with live_server(restored_env, data_dir=tmp_path / "after", migrate=False) as server:
        # The key was restored with the rest: the same secret still signs in.
        read = httpx.get(
            f"{server.base_url}{CONTENT}/{content_id}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
    assert read.status_code == 200, read.text
    assert (read.json()["title"], read.json()["body"]) == ("Backed up", "kept across a restore")
