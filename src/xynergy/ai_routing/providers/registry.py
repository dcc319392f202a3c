"""Build one provider object per catalogue entry, on the platform's shared HTTP sessions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
from pydantic import SecretStr

from xynergy.ai_routing.catalogue import Catalogue, ProviderSpec
from xynergy.ai_routing.providers.anthropic import AnthropicProvider
from xynergy.ai_routing.providers.base import Provider
from xynergy.ai_routing.providers.offline import OfflineProvider
from xynergy.ai_routing.providers.openai import OpenAIProvider
from xynergy.platform.http import OutboundHTTP
from xynergy.platform.logging import get_logger

__all__ = ["ProviderKey", "build_providers"]

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ProviderKey:
    """A provider's key and how to name it when the provider refuses it."""

    value: SecretStr = field(repr=False)
    describe: Callable[[], str]


def _timeout(spec: ProviderSpec, http: OutboundHTTP) -> aiohttp.ClientTimeout:
    default = http.timeout()
    if spec.timeout_seconds is None:
        return default
    # A provider's own limit bounds the whole call and each read alike.
    return aiohttp.ClientTimeout(
        total=spec.timeout_seconds,
        connect=default.connect,
        sock_read=min(spec.timeout_seconds, default.sock_read or spec.timeout_seconds),
    )


def _build(
    spec: ProviderSpec, http: OutboundHTTP, key: ProviderKey | None, max_response_bytes: int
) -> Provider:
    if spec.kind == "offline":
        return OfflineProvider(spec.name)
    adapter = OpenAIProvider if spec.kind == "openai" else AnthropicProvider
    return adapter(
        spec,
        session=http.session(f"ai-{spec.name}"),
        api_key=None if key is None else key.value.get_secret_value(),
        describe_key=None if key is None else key.describe,
        timeout=_timeout(spec, http),
        max_response_bytes=max_response_bytes,
    )


def build_providers(
    catalogue: Catalogue,
    http: OutboundHTTP,
    *,
    keys: dict[str, ProviderKey | None],
    max_response_bytes: int,
) -> dict[str, Provider]:
    """Provider name -> provider, for every provider in the catalogue, with its key."""
    return {
        spec.name: _build(spec, http, keys.get(spec.name), max_response_bytes)
        for spec in catalogue.providers
    }
