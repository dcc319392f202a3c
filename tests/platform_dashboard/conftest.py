"""Fixtures of the Platform Dashboard's tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from xynergy.platform.config import Settings


@pytest.fixture
def settings(make_settings: Callable[..., Settings], database_url: str) -> Settings:
    """SQLite and PostgreSQL."""
    return make_settings(database_url=database_url)
