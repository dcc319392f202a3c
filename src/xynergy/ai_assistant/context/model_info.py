"""What the AI Routing Engine says about a model: its context window and prices.

Read from the engine's ``GET /v1/models`` (its ``context_window`` and ``pricing``
extension fields), on the caller's behalf, and cached in the platform cache
(namespace ``assistant-models``, ``XYNERGY_ASSISTANT_MODEL_INFO_TTL_SECONDS``):
one small entry per model, so a turn's lookup is an in-process hit, and a
catalogue the engine reloads reaches the assistant within one TTL. A model the
engine does not list (it will refuse the call itself) or an engine that does
not say has no window here: the settings' budget alone applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from xynergy.ai_assistant import ai_client
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.exceptions import XynergyError
from xynergy.platform.runtime import Platform

__all__ = ["NAMESPACE", "ModelInfo", "model_info", "price_ceiling"]

NAMESPACE = "assistant-models"
# The entry holding the catalogue's highest prices (for cost estimates); not a
# model name (names start with a letter or a digit).
_CEILING = "*ceiling"


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A catalogue model as the engine lists it (None: the engine does not say)."""

    name: str
    context_window: int | None
    input_usd_per_mtok: Decimal | None
    output_usd_per_mtok: Decimal | None

    def cost_usd(self, input_tokens: int, output_tokens: int) -> Decimal | None:
        """What that many tokens cost on this model, when its prices are known."""
        if self.input_usd_per_mtok is None or self.output_usd_per_mtok is None:
            return None
        spent = self.input_usd_per_mtok * input_tokens + self.output_usd_per_mtok * output_tokens
        return spent / 1_000_000


def _price(pricing: Any, name: str) -> Decimal | None:
    value = pricing.get(name) if isinstance(pricing, dict) else None
    try:
        price = Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        return None
    return price if price is not None and price.is_finite() and price >= 0 else None


def _parsed(entry: dict[str, Any]) -> ModelInfo:
    window = entry.get("context_window")
    pricing = entry.get("pricing")
    return ModelInfo(
        name=str(entry.get("id")),
        context_window=window if isinstance(window, int) and window > 0 else None,
        input_usd_per_mtok=_price(pricing, "input_usd_per_mtok"),
        output_usd_per_mtok=_price(pricing, "output_usd_per_mtok"),
    )


def _cached(info: ModelInfo | None) -> list[Any] | None:
    if info is None:
        return None
    prices = [info.input_usd_per_mtok, info.output_usd_per_mtok]
    return [info.name, info.context_window, *(None if p is None else str(p) for p in prices)]


def _restored(value: Any) -> ModelInfo | None:
    if not isinstance(value, list):
        return None
    name, window, input_price, output_price = value
    return ModelInfo(
        name=name,
        context_window=window,
        input_usd_per_mtok=None if input_price is None else Decimal(input_price),
        output_usd_per_mtok=None if output_price is None else Decimal(output_price),
    )


async def _lookup(
    platform: Platform, *, caller: AuthContext, part: str, ttl: float
) -> ModelInfo | None:
    async def compute() -> list[Any] | None:
        listed = [
            _parsed(entry)
            for entry in await ai_client.list_models(platform.services, caller=caller)
        ]
        if part == _CEILING:
            return _cached(_ceiling(listed))
        return _cached(next((info for info in listed if info.name == part), None))

    try:
        value = await platform.cache.get_or_compute(
            NAMESPACE, caller.tenant_id, [part], compute, ttl=ttl
        )
    except XynergyError:
        # Not stored: the next turn asks again. The model call itself says what is wrong.
        return None
    return _restored(value)


def _ceiling(listed: list[ModelInfo]) -> ModelInfo | None:
    """The highest input and the highest output price of any model (possibly two
    models): whichever model the engine routes to, a cost at these is an upper bound."""
    inputs = [info.input_usd_per_mtok for info in listed if info.input_usd_per_mtok is not None]
    outputs = [info.output_usd_per_mtok for info in listed if info.output_usd_per_mtok is not None]
    if not inputs or not outputs or len(inputs) != len(listed) or len(outputs) != len(listed):
        return None  # a model without a price: no bound can be given
    return ModelInfo(_CEILING, None, max(inputs), max(outputs))


async def model_info(
    platform: Platform, *, caller: AuthContext, model: str, ttl: float
) -> ModelInfo | None:
    """``model`` as the engine lists it, or None when it does not."""
    return await _lookup(platform, caller=caller, part=model, ttl=ttl)


async def price_ceiling(platform: Platform, *, caller: AuthContext, ttl: float) -> ModelInfo | None:
    """The catalogue's highest prices (an upper bound of any model's), or None when
    some model has none."""
    return await _lookup(platform, caller=caller, part=_CEILING, ttl=ttl)
