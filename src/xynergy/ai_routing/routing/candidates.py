"""Which models may answer a request, best first."""

from __future__ import annotations

from xynergy.ai_routing.catalogue import Catalogue, ModelSpec
from xynergy.ai_routing.providers.capabilities import tool_refusal, uses_tools
from xynergy.ai_routing.providers.tokens import prompt_text
from xynergy.ai_routing.routing.requests import ChatRequest
from xynergy.platform.exceptions import NotFound, ValidationFailed
from xynergy.platform.tokens import approximate_tokens

__all__ = ["choose_candidates"]


def choose_candidates(catalogue: Catalogue, request: ChatRequest, limit: int) -> list[ModelSpec]:
    """At most ``limit`` models: the named one and its fallbacks, or the catalogue
    ranked by the request's preference; models whose context window cannot hold
    the prompt and ``max_tokens`` are left out."""
    if request.model is not None:
        named = catalogue.model(request.model)
        if named is None:
            raise NotFound(f"The model {request.model!r} is not in the catalogue.")
        ordered = [named, *(m for name in named.fallbacks if (m := catalogue.model(name)))]
    else:
        ordered = catalogue.ranked(request.preference)
    needed = approximate_tokens(prompt_text(request.messages, request.tools)) + request.max_tokens
    fitting = [model for model in ordered if model.context_window >= needed]
    if fitting and uses_tools(request.messages, request.tools):
        fitting = _able_to_use_tools(catalogue, request, fitting)
    if not fitting:
        raise ValidationFailed(
            f"The prompt and max_tokens need about {needed} tokens; no candidate model "
            "has a context window that large."
        )
    return fitting[:limit]


def _able_to_use_tools(
    catalogue: Catalogue, request: ChatRequest, models: list[ModelSpec]
) -> list[ModelSpec]:
    """The models whose provider can honour the request's tool use; 422 if none can."""
    able: list[ModelSpec] = []
    refusals: list[str] = []
    for model in models:
        kind = catalogue.provider(model.provider).kind
        why = tool_refusal(kind, request.messages, request.tools)
        if why is None:
            able.append(model)
        else:
            refusals.append(f"{model.name} ({why})")
    if not able:
        raise ValidationFailed(
            "No candidate model can honour this request's tool use: " + "; ".join(refusals) + "."
        )
    return able
