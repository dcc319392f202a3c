"""The compact usage event every AI call appends to the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["UsageEvent"]


@dataclass(frozen=True, slots=True)
class UsageEvent:
    """One answered (or failed) AI request, as billed.

    ``cost_nanos`` is in billionths of a US dollar: catalogue prices are per
    million tokens with up to three decimals, so every cost is an exact integer.
    """

    tenant_id: str
    key_id: str | None
    request_id: str
    task: str
    model: str
    provider: str
    input_tokens: int
    output_tokens: int
    cost_nanos: int
    cache_hit: bool
    deduplicated: bool
    latency_ms: int
    status: str  # "ok" | "error"
    occurred_at: datetime
    # What a cache hit or a joined call would have cost had it reached the provider.
    saved_nanos: int = 0
