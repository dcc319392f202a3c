"""Database layer: one async engine per process, one unit of work per request."""

from xynergy.platform.db.base import Base, utcnow
from xynergy.platform.db.engine import create_engine_from_settings
from xynergy.platform.db.session import SessionDep, get_session, on_commit, unit_of_work

__all__ = [
    "Base",
    "SessionDep",
    "create_engine_from_settings",
    "get_session",
    "on_commit",
    "unit_of_work",
    "utcnow",
]
