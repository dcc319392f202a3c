"""Build one provider object per catalogue entry, on the platform's shared HTTP sessions."""

from __future__ import annotations

import os

import aiohttp

from xynergy.ai_routing.catalogue import Catalogue, ProviderSpec
from xynergy.ai_routing.providers.anthropic import AnthropicProvider
from xynergy.ai_routing.providers.base import Provider
from xynergy.ai_routing.providers.offline import OfflineProvider
from xynergy.ai_routing.providers.openai import OpenAIProvider
from xynergy.platform.http import OutboundHTTP
from xynergy.platform.logging import get_logger

__all__ = ["build_providers"]

log = get_logger(__name__)


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


def _build(spec: ProviderSpec, http: OutboundHTTP, max_response_bytes: int) -> Provider:
    if spec.kind == "offline":
        return OfflineProvider(spec.name)
    api_key = os.environ.get(spec.api_key_env) if spec.api_key_env else None
    if spec.api_key_env and not api_key:
        log.warning("ai.provider_key_missing", provider=spec.name, env=spec.api_key_env)
    adapter = OpenAIProvider if spec.kind == "openai" else AnthropicProvider
    return adapter(
        spec,
        session=http.session(f"ai-{spec.name}"),
        api_key=api_key,
        timeout=_timeout(spec, http),
        max_response_bytes=max_response_bytes,
    )


def build_providers(
    catalogue: Catalogue, http: OutboundHTTP, *, max_response_bytes: int
) -> dict[str, Provider]:
    """Provider name -> provider, for every provider in the catalogue."""
    return {spec.name: _build(spec, http, max_response_bytes) for spec in catalogue.providers}
