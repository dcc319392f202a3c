"""The catalogue and the providers built from it (with their keys), swapped as one.

A request reads :attr:`LiveLineup.current` once and keeps that snapshot to its
end: a reload replaces the reference, never the objects a request holds, so an
upstream call in flight finishes with the key it started with and the next call
uses the new one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from xynergy.ai_routing.catalogue import Catalogue
from xynergy.ai_routing.providers.base import Provider

__all__ = ["LiveLineup", "Lineup", "models_body"]


def models_body(catalogue: Catalogue) -> bytes:
    """``GET /v1/models``'s answer for ``catalogue``, rendered once per lineup.

    OpenAI's entry (``id``, ``object``, ``created``, ``owned_by``) plus two
    extension fields OpenAI clients ignore: ``context_window`` (the most tokens
    of prompt and reply together the engine lets the model take) and ``pricing``
    (USD per million tokens, exact decimals as text), so a caller can size its
    prompts and estimate a cost before it calls.
    """
    return json.dumps(
        {
            "object": "list",
            "data": [
                {
                    "id": model.name,
                    "object": "model",
                    "created": 0,
                    "owned_by": model.provider,
                    "context_window": model.context_window,
                    "pricing": {
                        "input_usd_per_mtok": str(model.input_price_per_mtok),
                        "output_usd_per_mtok": str(model.output_price_per_mtok),
                    },
                }
                for model in catalogue.models
            ],
        },
        separators=(",", ":"),
    ).encode()


@dataclass(frozen=True, slots=True)
class Lineup:
    """One consistent configuration: every model's provider is in ``providers``."""

    catalogue: Catalogue
    providers: dict[str, Provider]
    models_body: bytes


class LiveLineup:
    """The lineup in use; replaced whole by a reload."""

    def __init__(self, lineup: Lineup) -> None:
        self.current = lineup

    def swap(self, lineup: Lineup) -> None:
        """Put ``lineup`` in use for every request that starts from now on."""
        self.current = lineup
