"""Running Alembic migrations programmatically (``xynergy migrate``, tests)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from xynergy.platform.config import Settings

__all__ = ["SchemaState", "alembic_config", "read_schema_state", "upgrade_to_head"]

_MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(database_url: str) -> Config:
    """An Alembic config for ``database_url`` using the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    return config


def upgrade_to_head(settings: Settings) -> None:
    """Migrate the configured database to the newest revision (blocking)."""
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings.resolved_database_url), "head")


@dataclass(frozen=True, slots=True)
class SchemaState:
    """The revisions a database is at, beside those this code's migrations end at."""

    current: frozenset[str]
    heads: frozenset[str]

    @property
    def is_current(self) -> bool:
        """Whether the database holds exactly the schema this code expects."""
        return self.current == self.heads


def _current_revisions(connection: Connection) -> frozenset[str]:
    return frozenset(MigrationContext.configure(connection).get_current_heads())


async def read_schema_state(engine: AsyncEngine) -> SchemaState:
    """Where ``engine``'s database stands against the packaged migrations."""
    async with engine.connect() as connection:
        current = await connection.run_sync(_current_revisions)
    # The URL only names the dialect here: the script directory is read from files.
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return SchemaState(current=current, heads=frozenset(scripts.get_heads()))
