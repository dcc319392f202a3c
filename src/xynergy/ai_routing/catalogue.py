"""The model catalogue: which providers exist and which models they serve, at what price.

Read once at start-up from the file named by ``XYNERGY_AI_CATALOGUE`` (YAML or
JSON), or the built-in default, which lists only the offline provider so that a
fresh install works without keys. A loaded catalogue keeps the built-in offline
model (listed, and answered when named) unless it says ``include_offline_model:
false``; preference routing never picks it unless the file lists it itself.
Prices are USD per million tokens; costs are computed in integer nano-dollars so
that ledger sums are exact.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

__all__ = [
    "BUILTIN_CATALOGUE",
    "OFFLINE_MODEL",
    "OFFLINE_PROVIDER",
    "Catalogue",
    "ModelSpec",
    "Preference",
    "ProviderSpec",
    "load_catalogue",
    "parse_catalogue",
]

ProviderKind = Literal["openai", "anthropic", "offline"]
QualityTier = Literal["basic", "standard", "premium"]
Preference = Literal["quality", "balanced", "cost"]

_TIER_RANK: dict[str, int] = {"basic": 0, "standard": 1, "premium": 2}
_OFFLINE_PROVIDER_NAME = "offline"
_OFFLINE_MODEL_NAME = "xynergy-offline"
_NANOS_PER_MICRO = 1_000  # price per 1M tokens x tokens = micro-dollars


class ProviderSpec(BaseModel):
    """An upstream: its protocol, address and where its key is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")
    kind: ProviderKind
    base_url: str | None = Field(default=None, max_length=2048)
    api_key_env: str | None = Field(
        default=None, pattern=r"^[A-Z_][A-Z0-9_]{0,127}$", description="Name, never the key."
    )
    timeout_seconds: float | None = Field(default=None, gt=0, le=600)

    @model_validator(mode="after")
    def _http_needs_url(self) -> ProviderSpec:
        if self.kind != "offline" and not self.base_url:
            raise ValueError(f"provider {self.name!r} ({self.kind}) needs a base_url")
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"provider {self.name!r}: base_url must be http(s)")
        return self


class ModelSpec(BaseModel):
    """A model clients may name, and what it costs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$")
    provider: str
    upstream_model: str = Field(min_length=1, max_length=200)
    input_price_per_mtok: Decimal = Field(ge=0, max_digits=12, decimal_places=3)
    output_price_per_mtok: Decimal = Field(ge=0, max_digits=12, decimal_places=3)
    context_window: int = Field(ge=1, le=10_000_000)
    quality_tier: QualityTier = "standard"
    fallbacks: tuple[str, ...] = Field(
        default=(), max_length=8, description="Models to try next when this one fails."
    )

    def cost_nanos(self, input_tokens: int, output_tokens: int) -> int:
        """The exact cost of a call in nano-dollars."""
        micros = (
            self.input_price_per_mtok * input_tokens + self.output_price_per_mtok * output_tokens
        )
        return int(micros * _NANOS_PER_MICRO)

    @property
    def tier_rank(self) -> int:
        return _TIER_RANK[self.quality_tier]

    @property
    def blended_price(self) -> Decimal:
        return self.input_price_per_mtok + self.output_price_per_mtok


class Catalogue(BaseModel):
    """Providers and models; every model names a provider that exists."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    providers: tuple[ProviderSpec, ...] = Field(min_length=1, max_length=64)
    models: tuple[ModelSpec, ...] = Field(min_length=1, max_length=1000)
    include_offline_model: bool = Field(
        default=True,
        description="Keep the built-in offline model listed and callable by name.",
    )
    # Models added rather than listed by the file: callable by name, never ranked.
    _named_only: frozenset[str] = PrivateAttr(default=frozenset())

    @field_validator("providers")
    @classmethod
    def _unique_providers(cls, value: tuple[ProviderSpec, ...]) -> tuple[ProviderSpec, ...]:
        names = [provider.name for provider in value]
        if len(names) != len(set(names)):
            raise ValueError("provider names must be unique")
        return value

    @model_validator(mode="after")
    def _models_name_providers(self) -> Catalogue:
        known = {provider.name for provider in self.providers}
        names = [model.name for model in self.models]
        if len(names) != len(set(names)):
            raise ValueError("model names must be unique")
        # A model may fall back to the built-in offline model the loader adds.
        callable_by_name = set(names) | (
            {_OFFLINE_MODEL_NAME} if self.include_offline_model else set()
        )
        for model in self.models:
            if model.provider not in known:
                raise ValueError(f"model {model.name!r} names unknown provider {model.provider!r}")
            unknown = sorted(set(model.fallbacks) - callable_by_name)
            if unknown:
                raise ValueError(f"model {model.name!r} falls back to unknown models {unknown}")
        if self.include_offline_model and _OFFLINE_MODEL_NAME not in names:
            taken = next((p for p in self.providers if p.name == _OFFLINE_PROVIDER_NAME), None)
            if taken is not None and taken.kind != "offline":
                raise ValueError(
                    f"provider name {_OFFLINE_PROVIDER_NAME!r} is the built-in offline "
                    "model's: rename the provider or set include_offline_model: false"
                )
        return self

    def with_offline_model(self) -> Catalogue:
        """This catalogue plus the built-in offline model, when it asks for it and
        does not list a model of that name itself."""
        if not self.include_offline_model or self.model(OFFLINE_MODEL.name) is not None:
            return self
        providers = self.providers
        if all(provider.name != OFFLINE_PROVIDER.name for provider in providers):
            providers = (*providers, OFFLINE_PROVIDER)
        extended = self.model_copy(
            update={"providers": providers, "models": (*self.models, OFFLINE_MODEL)}
        )
        extended._named_only = self._named_only | {OFFLINE_MODEL.name}
        return extended

    def model(self, name: str) -> ModelSpec | None:
        """The model called ``name``, if the catalogue has it."""
        return next((model for model in self.models if model.name == name), None)

    def provider(self, name: str) -> ProviderSpec:
        """The provider called ``name`` (models were checked to name one)."""
        return next(provider for provider in self.providers if provider.name == name)

    def ranked(self, preference: Preference) -> list[ModelSpec]:
        """Every model the catalogue lists (not the offline model it only keeps),
        best first for ``preference``.

        quality: highest tier, then cheapest. cost: cheapest, then highest tier.
        balanced: the standard tier first (then premium, then basic), cheapest first
        within a tier. Ties keep catalogue order, so the file decides between equals.
        """
        models = [model for model in self.models if model.name not in self._named_only]
        if preference == "quality":
            return sorted(models, key=lambda m: (-m.tier_rank, m.blended_price))
        if preference == "cost":
            return sorted(models, key=lambda m: (m.blended_price, -m.tier_rank))
        balanced_order = {"standard": 0, "premium": 1, "basic": 2}
        return sorted(models, key=lambda m: (balanced_order[m.quality_tier], m.blended_price))


OFFLINE_PROVIDER = ProviderSpec(name=_OFFLINE_PROVIDER_NAME, kind="offline")
OFFLINE_MODEL = ModelSpec(
    name=_OFFLINE_MODEL_NAME,
    provider=_OFFLINE_PROVIDER_NAME,
    upstream_model="offline-deterministic-v1",
    input_price_per_mtok=Decimal(0),
    output_price_per_mtok=Decimal(0),
    context_window=128_000,
    quality_tier="standard",
)
BUILTIN_CATALOGUE = Catalogue(providers=(OFFLINE_PROVIDER,), models=(OFFLINE_MODEL,))


def load_catalogue(path: Path | None) -> Catalogue:
    """The catalogue in ``path`` (``.json``, else YAML), or the built-in one."""
    if path is None:
        return BUILTIN_CATALOGUE
    return parse_catalogue(path.read_text(encoding="utf-8"), path)


def parse_catalogue(text: str, path: Path) -> Catalogue:
    """The catalogue in ``text``, read from ``path`` (``.json``, else YAML).

    Raises:
        ValueError: not JSON/YAML, or not a valid catalogue (pydantic's ValidationError).
    """
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{path} is not valid YAML: {exc}") from exc
    return Catalogue.model_validate(data).with_offline_model()
