"""Keyword research: normalise, look up the cache, else gather owned data and AI ideas,
merge, score and cluster; optionally track chosen suggestions in the ASO Engine.

A result computed while the AI Routing Engine was unavailable (or refused for
now: budget, rate limit) is served, marked ``sources.ai``, but not cached, so
the next call tries the AI again instead of repeating the degraded answer for
24 hours.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from xynergy.marketing_engine.config import MarketingSettings
from xynergy.marketing_engine.research.building import build_suggestions
from xynergy.marketing_engine.research.clustering import CLUSTERING_METHOD
from xynergy.marketing_engine.research.schemas import (
    ResearchRequest,
    ResearchResponse,
    ResearchSources,
)
from xynergy.marketing_engine.research.sources import expand_with_ai, fetch_owned
from xynergy.marketing_engine.research.text import normalise_locale, normalise_phrase
from xynergy.marketing_engine.research.tracking import track_phrases
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.cache import PlatformCache
from xynergy.platform.exceptions import Forbidden, ValidationFailed
from xynergy.platform.services import ServiceClient

__all__ = ["NAMESPACE", "ResearchQuery", "normalise_request", "research"]

NAMESPACE = "marketing-research"
# Bumped when the shape or the method of a cached result changes.
_RESULT_VERSION = 1


@dataclass(frozen=True, slots=True)
class ResearchQuery:
    """A validated, normalised request: identical queries share one cache entry."""

    seeds: tuple[str, ...]
    description: str
    locale: str
    limit: int
    with_content: bool
    track: tuple[str, ...] | bool

    def cache_parts(self) -> list[Any]:
        return [
            _RESULT_VERSION,
            list(self.seeds),
            self.description,
            self.locale,
            self.limit,
            self.with_content,
        ]


def _phrases(values: list[str], *, field: str, max_chars: int) -> tuple[str, ...]:
    phrases: list[str] = []
    for index, raw in enumerate(values):
        if len(raw) > max_chars:
            raise ValidationFailed(
                f"{field}[{index}] is longer than {max_chars} characters; nothing was done."
            )
        phrase = normalise_phrase(raw)
        if not phrase:
            raise ValidationFailed(f"{field}[{index}] is empty once normalised.")
        if phrase not in phrases:
            phrases.append(phrase)
    return tuple(sorted(phrases))


def normalise_request(
    body: ResearchRequest, settings: MarketingSettings, *, with_content: bool
) -> ResearchQuery:
    """Check the configured bounds (422 naming the field) and normalise the request."""
    if len(body.seeds) > settings.research_seeds_max:
        raise ValidationFailed(
            f"seeds: at most {settings.research_seeds_max} seed topics are allowed, "
            f"got {len(body.seeds)}; nothing was done."
        )
    if len(body.description) > settings.research_description_max_chars:
        raise ValidationFailed(
            f"description is longer than {settings.research_description_max_chars} "
            "characters; nothing was done."
        )
    limit = body.limit or settings.research_results_default
    if limit > settings.research_results_max:
        raise ValidationFailed(f"limit must be at most {settings.research_results_max}.")
    locale = normalise_locale(body.locale)
    if locale is None:
        raise ValidationFailed("locale must look like en, en-US, zh-Hant-TW or es-419.")
    track: tuple[str, ...] | bool = False
    if isinstance(body.add_to_tracked, bool):
        track = body.add_to_tracked
    else:
        if len(body.add_to_tracked) > settings.research_results_max:
            raise ValidationFailed(
                f"add_to_tracked: at most {settings.research_results_max} phrases are allowed."
            )
        track = _phrases(
            body.add_to_tracked, field="add_to_tracked", max_chars=settings.research_seed_max_chars
        )
    return ResearchQuery(
        seeds=_phrases(body.seeds, field="seeds", max_chars=settings.research_seed_max_chars),
        description=" ".join(body.description.lower().split()),
        locale=locale,
        limit=limit,
        with_content=with_content,
        track=track,
    )


class _Uncacheable(Exception):
    """Carries a degraded result out of the cache's compute without it being stored."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__("degraded research result")
        self.payload = payload


async def _compute(
    query: ResearchQuery,
    *,
    services: ServiceClient,
    settings: MarketingSettings,
    page_size: int,
    caller: AuthContext,
) -> dict[str, Any]:
    owned, ai = await asyncio.gather(
        fetch_owned(
            services,
            caller=caller,
            locale=query.locale,
            page_size=page_size,
            maximum=settings.research_owned_keywords_max,
            with_content=query.with_content,
            trending_window_days=settings.research_trending_window_days,
        ),
        expand_with_ai(
            services,
            caller=caller,
            seeds=list(query.seeds),
            description=query.description,
            locale=query.locale,
            max_tokens=settings.research_ai_max_tokens,
            max_chars=settings.research_seed_max_chars,
        ),
    )
    items = build_suggestions(seeds=query.seeds, owned=owned, ai_ideas=ai.ideas, limit=query.limit)
    sources = ResearchSources(
        tracked_keywords=len(owned.tracked),
        tracked_keywords_truncated=owned.tracked_truncated,
        trending_keywords=len(owned.trending),
        content_pieces=owned.content_pieces,
        ai=ai.status,
        ai_provider=ai.provider,
        ai_detail=ai.detail,
    )
    payload = {
        "seeds": list(query.seeds),
        "locale": query.locale,
        "items": [item.model_dump(mode="json") for item in items],
        "clustering_method": CLUSTERING_METHOD,
        "sources": sources.model_dump(mode="json"),
    }
    if ai.status != "used":
        raise _Uncacheable(payload)
    return payload


async def research(
    body: ResearchRequest,
    *,
    services: ServiceClient,
    cache: PlatformCache,
    settings: MarketingSettings,
    page_size: int,
    caller: AuthContext,
) -> ResearchResponse:
    """Suggestions for ``body``, from the cache when an identical request was answered."""
    query = normalise_request(body, settings, with_content=caller.allows("content:read"))
    if query.track and not caller.allows("keywords:write"):
        raise Forbidden("add_to_tracked needs the scope keywords:write, which this key lacks.")
    computed = False

    async def compute() -> dict[str, Any]:
        nonlocal computed
        computed = True
        return await _compute(
            query, services=services, settings=settings, page_size=page_size, caller=caller
        )

    try:
        payload = await cache.get_or_compute(
            NAMESPACE,
            caller.tenant_id,
            query.cache_parts(),
            compute,
            tags=[cache.tag(NAMESPACE, caller.tenant_id)],
            ttl=settings.research_cache_ttl_seconds,
        )
    except _Uncacheable as degraded:
        payload = degraded.payload
    response = ResearchResponse.model_validate({**payload, "cached": not computed})
    if query.track:
        response.tracking = await track_phrases(
            response.items, query.track, services=services, caller=caller, locale=query.locale
        )
        if response.tracking.added:
            # The cached result says these are untracked; the next research reads again.
            await cache.invalidate(cache.tag(NAMESPACE, caller.tenant_id))
    return response
