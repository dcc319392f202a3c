"""The DBOS engine's process-level rules: the system database and the executor id."""

from __future__ import annotations

from pathlib import Path

import pytest

from xynergy.platform.config import Settings
from xynergy.system_runtime.config import RUN_CODE_VERSION, RuntimeSettings
from xynergy.system_runtime.engine.host import DbosHost, system_database_url

_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
_SECRET = "s" * 40


class TestSystemDatabase:
    def test_sqlite_is_a_file_beside_the_platforms(self, tmp_path: Path) -> None:
        settings = Settings(data_dir=tmp_path)
        assert (
            system_database_url(settings) == f"sqlite:///{tmp_path.resolve()}/xynergy.dbos.sqlite"
        )

    def test_postgresql_is_the_same_database_through_psycopg(self) -> None:
        settings = Settings(database_url=_PG)
        assert system_database_url(settings) == "postgresql://postgres@127.0.0.1:5432/test"


class TestExecutorId:
    async def test_production_on_postgresql_refuses_the_shared_default(self) -> None:
        settings = Settings(
            environment="production", database_url=_PG, internal_token_secret=_SECRET
        )
        with pytest.raises(RuntimeError, match="XYNERGY_RUNTIME_EXECUTOR_ID"):
            await DbosHost.acquire(settings, RuntimeSettings())

    def test_the_default_version_is_the_run_codes_not_the_packages(self) -> None:
        # An upgrade of the package must not strand the runs the previous one queued.
        assert RuntimeSettings().application_version == RUN_CODE_VERSION
