"""Helpers of the spend tests: a priced offline catalogue, rollup rows written directly."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from xynergy.ai_routing.config import AiSettings
from xynergy.ai_routing.usage.models import UsageDailyRow
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.runtime import Platform

PRICED_MODEL = "priced-offline"


def priced_offline_ai(tmp_path: Path, **settings: Any) -> AiSettings:
    """A catalogue whose one model is answered offline at a real price (1 and 2 USD per
    million tokens), so cache hits have something to save."""
    path = tmp_path / "catalogue.json"
    path.write_text(
        json.dumps(
            {
                "providers": [{"name": "offline", "kind": "offline"}],
                "models": [
                    {
                        "name": PRICED_MODEL,
                        "provider": "offline",
                        "upstream_model": "offline",
                        "input_price_per_mtok": "1.000",
                        "output_price_per_mtok": "2.000",
                        "context_window": 32_000,
                    }
                ],
            }
        )
    )
    return AiSettings(catalogue=path, **settings)


def daily_row(tenant_id: str, day: date, **fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "tenant_id": tenant_id,
        "day": day,
        "key_id": "",
        "model": "m1",
        "task": "chat",
        "requests": 1,
        "input_tokens": 10,
        "output_tokens": 20,
        "cost_nanos": 1_000,
        "saved_nanos": 0,
        "cache_hits": 0,
        "deduplicated": 0,
        "errors": 0,
    }
    values.update(fields)
    return values


async def insert_daily(platform: Platform, rows: Sequence[dict[str, Any]]) -> None:
    """Rollup rows as the ledger writer would have made them (one executemany)."""
    async with unit_of_work(platform.sessionmaker) as session:
        await session.execute(insert(UsageDailyRow.__table__), list(rows))
