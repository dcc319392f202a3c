"""The ``xynergy`` command line against a real SQLite data dir.

Plain (sync) tests: every command runs its own event loop with ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import async_sessionmaker
from typer.testing import CliRunner

from xynergy.cli import app
from xynergy.migrations.models import Base
from xynergy.platform.auth.keys import hash_key
from xynergy.platform.auth.verifier import KeyVerifier
from xynergy.platform.config import Settings
from xynergy.platform.db.engine import create_engine_from_settings
from xynergy.platform.exceptions import Unauthorized

KEY_PATTERN = re.compile(r"xyn_(?:live|test)_[0-9A-Za-z]{49}")
# Every XYNERGY_* setting the command should not pick up from the outer environment.
_UNSET = ("XYNERGY_DATABASE_URL", "XYNERGY_REDIS_URL", "XYNERGY_ENVIRONMENT")


@dataclass
class Cli:
    """Runs ``xynergy`` commands on one data dir and keeps every byte they print."""

    runner: CliRunner
    data_dir: Path
    printed: list[str]

    def __call__(self, *args: str, ok: bool = True) -> Result:
        result = self.runner.invoke(app, list(args), catch_exceptions=True)
        self.printed += [result.stdout, result.stderr]
        if ok:
            assert result.exit_code == 0, (args, result.output, result.exception)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)

    @property
    def settings(self) -> Settings:
        database = self.data_dir / "xynergy.db"
        return Settings(data_dir=self.data_dir, database_url=f"sqlite+aiosqlite:///{database}")

    def verify(self, secret: str) -> bool:
        """Whether a fresh replica would accept ``secret`` (no cache)."""

        async def run() -> bool:
            engine = create_engine_from_settings(self.settings)
            verifier = KeyVerifier(
                self.settings, async_sessionmaker(engine, expire_on_commit=False), None
            )
            try:
                await verifier.verify(secret)
                return True
            except Unauthorized:
                return False
            finally:
                await engine.dispose()

        return asyncio.run(run())


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    data_dir = tmp_path / "data"
    env: dict[str, str | None] = {name: None for name in _UNSET}
    env.update({"XYNERGY_DATA_DIR": str(data_dir), "NO_COLOR": "1", "COLUMNS": "200"})
    runner = CliRunner(env=env)
    return Cli(runner, data_dir, [])


@pytest.fixture
def migrated(cli: Cli) -> Cli:
    cli("migrate")
    return cli


@pytest.fixture
def tenant_id(migrated: Cli) -> str:
    return str(migrated.json("tenants", "create", "acme")["id"])


def _assert_no_hash_printed(cli: Cli, *secrets: str) -> None:
    everything = "\n".join(cli.printed)
    for secret in secrets:
        assert hash_key(secret) not in everything


class TestMigrate:
    def test_creates_the_schema_in_the_data_dir(self, cli: Cli) -> None:
        result = cli("migrate")
        database = cli.data_dir / "xynergy.db"
        assert database.exists()
        assert str(database) in result.stdout

        async def tables() -> set[str]:
            engine = create_engine_from_settings(cli.settings)
            try:
                async with engine.connect() as connection:
                    return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
            finally:
                await engine.dispose()

        assert asyncio.run(tables()) >= set(Base.metadata.tables)

    def test_is_idempotent(self, cli: Cli) -> None:
        cli("migrate")
        cli("migrate")


class TestBootstrap:
    def test_prints_one_admin_key_once(self, migrated: Cli) -> None:
        first = migrated.json("bootstrap")
        secret = first["secret"]
        assert KEY_PATTERN.fullmatch(secret)
        assert first["key"]["scopes"] == ["admin"]
        assert migrated.verify(secret)

        again = migrated("bootstrap", "--json")
        assert KEY_PATTERN.search(again.stdout) is None
        assert secret not in again.stdout
        plain = migrated("bootstrap")
        assert KEY_PATTERN.search(plain.stdout) is None
        _assert_no_hash_printed(migrated, secret)

    def test_creates_the_operator_tenant(self, migrated: Cli) -> None:
        created = migrated.json("bootstrap")
        tenants = migrated.json("tenants", "list")["items"]
        assert [t["id"] for t in tenants] == [created["key"]["tenant_id"]]

    def test_issues_a_new_admin_key_after_the_last_one_is_revoked(self, migrated: Cli) -> None:
        first = migrated.json("bootstrap")
        tenant = first["key"]["tenant_id"]
        migrated.json("keys", "revoke", first["key"]["id"], "--tenant", tenant)
        second = migrated.json("bootstrap")
        assert second["key"]["tenant_id"] == tenant
        assert second["secret"] != first["secret"]
        assert migrated.verify(second["secret"])
        assert not migrated.verify(first["secret"])


class TestTenants:
    def test_create_prints_the_tenant(self, migrated: Cli) -> None:
        tenant = migrated.json("tenants", "create", "acme")
        assert set(tenant) == {"id", "name", "created_at"}
        assert tenant["name"] == "acme"

    def test_duplicate_name_fails_cleanly(self, migrated: Cli, tenant_id: str) -> None:
        result = migrated("tenants", "create", "acme", ok=False)
        assert result.exit_code != 0
        assert "already exists" in result.output
        assert "Traceback" not in result.output
        assert len(migrated.json("tenants", "list")["items"]) == 1

    def test_list_pages_newest_first(self, migrated: Cli) -> None:
        created = [migrated.json("tenants", "create", f"t{n}")["id"] for n in range(3)]
        first = migrated.json("tenants", "list", "--limit", "2")
        assert [t["id"] for t in first["items"]] == created[:0:-1]
        assert first["next_cursor"]
        rest = migrated.json("tenants", "list", "--limit", "2", "--cursor", first["next_cursor"])
        assert [t["id"] for t in rest["items"]] == [created[0]]
        assert rest["next_cursor"] is None

    def test_garbage_cursor_fails_cleanly(self, migrated: Cli) -> None:
        result = migrated("tenants", "list", "--cursor", "garbage!", ok=False)
        assert result.exit_code != 0
        assert "cursor" in result.output
        assert "Traceback" not in result.output


class TestKeys:
    def test_create_prints_the_secret_once_and_list_never(
        self, migrated: Cli, tenant_id: str
    ) -> None:
        created = migrated.json("keys", "create", "--tenant", tenant_id, "--scopes", "content:read")
        secret = created["secret"]
        assert KEY_PATTERN.fullmatch(secret)
        assert created["key"]["tenant_id"] == tenant_id
        assert created["key"]["scopes"] == ["content:read"]
        assert migrated.verify(secret)

        listing = migrated("keys", "list", "--tenant", tenant_id, "--json")
        items = json.loads(listing.stdout)["items"]
        assert [k["id"] for k in items] == [created["key"]["id"]]
        assert secret not in listing.stdout
        assert "key_hash" not in listing.stdout
        table = migrated("keys", "list", "--tenant", tenant_id)
        assert secret not in table.stdout
        assert created["key"]["id"] in table.stdout
        _assert_no_hash_printed(migrated, secret)

    def test_plain_create_prints_the_secret(self, migrated: Cli, tenant_id: str) -> None:
        result = migrated("keys", "create", "--tenant", tenant_id, "--scopes", "content:read")
        secrets = KEY_PATTERN.findall(result.stdout)
        assert len(secrets) == 1
        assert migrated.verify(secrets[0])
        _assert_no_hash_printed(migrated, secrets[0])

    def test_unknown_scope_fails_without_a_traceback(self, migrated: Cli, tenant_id: str) -> None:
        result = migrated(
            "keys", "create", "--tenant", tenant_id, "--scopes", "content:read,nope", ok=False
        )
        assert result.exit_code != 0
        assert "nope" in result.output
        assert "Traceback" not in result.output
        assert KEY_PATTERN.search(result.output) is None
        assert json.loads(migrated("keys", "list", "--tenant", tenant_id, "--json").stdout) == {
            "items": [],
            "next_cursor": None,
        }

    def test_unknown_tenant_fails_cleanly(self, migrated: Cli) -> None:
        result = migrated(
            "keys", "create", "--tenant", "f" * 32, "--scopes", "content:read", ok=False
        )
        assert result.exit_code != 0
        assert "Traceback" not in result.output
        assert KEY_PATTERN.search(result.output) is None

    def test_rotate_with_zero_grace_replaces_the_key(self, migrated: Cli, tenant_id: str) -> None:
        old = migrated.json("keys", "create", "--tenant", tenant_id, "--scopes", "content:read")
        old_id = old["key"]["id"]

        new = migrated.json("keys", "rotate", old_id, "--tenant", tenant_id, "--grace-seconds", "0")

        assert new["key"]["rotated_from"] == old_id
        assert new["secret"] != old["secret"]
        assert not migrated.verify(old["secret"])
        assert migrated.verify(new["secret"])
        listed = {k["id"]: k for k in migrated.json("keys", "list", "--tenant", tenant_id)["items"]}
        assert listed[old_id]["grace_until"] is not None
        assert listed[new["key"]["id"]]["rotated_from"] == old_id
        _assert_no_hash_printed(migrated, old["secret"], new["secret"])

    def test_rotate_keeps_the_old_key_during_the_default_grace(
        self, migrated: Cli, tenant_id: str
    ) -> None:
        old = migrated.json("keys", "create", "--tenant", tenant_id, "--scopes", "content:read")
        new = migrated.json("keys", "rotate", old["key"]["id"], "--tenant", tenant_id)
        assert migrated.verify(old["secret"])
        assert migrated.verify(new["secret"])

    def test_revoke_sets_revoked_at(self, migrated: Cli, tenant_id: str) -> None:
        created = migrated.json("keys", "create", "--tenant", tenant_id, "--scopes", "content:read")
        key_id = created["key"]["id"]

        revoked = migrated.json("keys", "revoke", key_id, "--tenant", tenant_id)

        assert revoked["id"] == key_id
        assert revoked["revoked_at"] is not None
        assert not migrated.verify(created["secret"])
        again = migrated.json("keys", "revoke", key_id, "--tenant", tenant_id)
        assert again["revoked_at"] == revoked["revoked_at"]
        _assert_no_hash_printed(migrated, created["secret"])

    def test_revoke_of_another_tenants_key_is_not_found(
        self, migrated: Cli, tenant_id: str
    ) -> None:
        created = migrated.json("keys", "create", "--tenant", tenant_id, "--scopes", "content:read")
        other = migrated.json("tenants", "create", "other")["id"]
        result = migrated("keys", "revoke", created["key"]["id"], "--tenant", other, ok=False)
        assert result.exit_code != 0
        assert "Traceback" not in result.output
        assert migrated.verify(created["secret"])
