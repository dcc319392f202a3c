"""The AI Routing Engine's reloadable part: the catalogue and every provider key.

Registered with the platform's secrets registry at start-up. A reload reads the
catalogue file and each provider's ``api_key_env`` (or its ``_FILE``), builds the
whole new lineup, and only then swaps it in; a catalogue that does not parse or
validate, or a key file that cannot be read, leaves the running lineup serving.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pydantic import ValidationError

from xynergy.ai_routing.catalogue import BUILTIN_CATALOGUE, Catalogue, parse_catalogue
from xynergy.ai_routing.config import AiSettings
from xynergy.ai_routing.lineup import Lineup, LiveLineup, models_body
from xynergy.ai_routing.providers.registry import ProviderKey, build_providers
from xynergy.platform.http import OutboundHTTP
from xynergy.platform.logging import get_logger
from xynergy.platform.secrets import LoadedSecret, SecretError, SecretReader, SecretsRegistry, Swap

__all__ = ["CATALOGUE_SOURCE", "PART_NAME", "AiLineupPart"]

log = get_logger(__name__)

PART_NAME = "ai-routing-engine"
# The catalogue is reported and polled beside the keys, under its setting's name.
CATALOGUE_SOURCE = "XYNERGY_AI_CATALOGUE"
_PROBLEMS_REPORTED = 5
_REASON_MAX_CHARS = 500


class AiLineupPart:
    """Builds and validates a new lineup from files and the environment."""

    name = PART_NAME

    def __init__(
        self,
        *,
        ai: AiSettings,
        http: OutboundHTTP,
        registry: SecretsRegistry,
        max_response_bytes: int,
        live: Callable[[], LiveLineup | None],
        install: Callable[[Lineup], None],
    ) -> None:
        self._ai = ai
        self._http = http
        self._registry = registry
        self._max_response_bytes = max_response_bytes
        self._live = live
        self._install = install

    def prepare(self, reader: SecretReader) -> Swap:
        """The new catalogue and keys, validated; the returned swap installs them."""
        catalogue = self._catalogue(reader)
        keys: dict[str, ProviderKey | None] = {}
        for spec in catalogue.providers:
            if spec.api_key_env is None:
                continue
            loaded = reader.secret(spec.api_key_env)
            if loaded is None:
                log.warning("ai.provider_key_missing", provider=spec.name, env=spec.api_key_env)
            keys[spec.name] = None if loaded is None else self._key(loaded)
        providers = build_providers(
            catalogue, self._http, keys=keys, max_response_bytes=self._max_response_bytes
        )
        lineup = Lineup(catalogue, providers, models_body(catalogue))

        def swap() -> None:
            live = self._live()
            if live is None:
                self._install(lineup)
            else:
                live.swap(lineup)

        return swap

    def _catalogue(self, reader: SecretReader) -> Catalogue:
        path = self._ai.catalogue
        if path is None:
            return BUILTIN_CATALOGUE
        text = reader.config_file(CATALOGUE_SOURCE, path, max_bytes=self._ai.catalogue_max_bytes)
        try:
            return parse_catalogue(text, path)
        except ValueError as exc:
            raise SecretError(CATALOGUE_SOURCE, _describe(exc)) from None

    def _key(self, loaded: LoadedSecret) -> ProviderKey:
        registry = self._registry

        def describe() -> str:
            # Asked when a provider refuses the key: how long ago it last changed.
            changed = registry.changed_at(loaded.name)
            if changed is None:
                return loaded.source
            return f"{loaded.source}, reloaded {max(0, round(time.time() - changed))} s ago"

        return ProviderKey(value=loaded.value, describe=describe)


def _describe(exc: ValueError) -> str:
    """What is wrong with a catalogue, on one short line (where, then what)."""
    if isinstance(exc, ValidationError):
        problems = [
            f"{'.'.join(str(part) for part in error['loc']) or 'catalogue'}: {error['msg']}"
            for error in exc.errors(include_url=False)[:_PROBLEMS_REPORTED]
        ]
        return "invalid catalogue: " + "; ".join(problems)
    return " ".join(str(exc).split())[:_REASON_MAX_CHARS]
