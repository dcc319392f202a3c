"""The data a tenant owns, read from the ASO Engine, and the AI expansion.

Every read is bounded: tracked keywords up to ``research_owned_keywords_max``
(cursor pages of the platform's maximum page size), content pieces up to the
same bound, trending keywords as the ASO Engine caps them. All calls go through
the inter-service client on behalf of the caller.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from xynergy.marketing_engine.clients import (
    ASO_ENGINE,
    DependencyError,
    call_json,
    generate_text,
)
from xynergy.marketing_engine.research.text import normalise_phrase
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.exceptions import UpstreamTimeout, UpstreamUnavailable
from xynergy.platform.services import ServiceClient

__all__ = [
    "AiExpansion",
    "OwnedData",
    "expand_with_ai",
    "fetch_owned",
    "parse_ideas",
]

_DIRECTIONS = ("improved", "worsened")
# AI refusals that mean "not now" rather than "wrong request": out of budget, rate limited.
_AI_SOFT_REFUSALS = frozenset({402, 429})
_IDEA_MAX_WORDS = 6
_IDEA_SPLIT = re.compile(r"[\n;,|]+")
_BULLET = re.compile(r"^\s*(?:[-*\u2022]+|\d+[.)]|#+)\s*")


@dataclass(slots=True)
class OwnedData:
    """The tenant's tracked keywords, their latest positions and content coverage."""

    tracked: set[str] = field(default_factory=set)
    tracked_truncated: bool = False
    # phrase -> latest position (None: not ranked) for keywords that moved.
    positions: dict[str, int | None] = field(default_factory=dict)
    trending: set[str] = field(default_factory=set)
    covered: set[str] = field(default_factory=set)
    content_titles: list[str] = field(default_factory=list)
    content_pieces: int | None = None


@dataclass(frozen=True, slots=True)
class AiExpansion:
    ideas: list[str]
    status: str
    provider: str | None = None
    detail: str | None = None


async def _pages(
    services: ServiceClient,
    path: str,
    *,
    caller: AuthContext,
    scopes: tuple[str, ...],
    params: Mapping[str, str],
    page_size: int,
    maximum: int,
) -> tuple[list[dict[str, Any]], bool]:
    """Up to ``maximum`` items of a cursor-paginated ASO list, and whether more were left."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while len(items) < maximum:
        query = {**params, "limit": str(min(page_size, maximum - len(items)))}
        if cursor:
            query["cursor"] = cursor
        page = await call_json(
            services, ASO_ENGINE, "GET", path, caller=caller, scopes=scopes, params=query
        )
        items.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return items, False
    return items[:maximum], True


async def fetch_owned(
    services: ServiceClient,
    *,
    caller: AuthContext,
    locale: str,
    page_size: int,
    maximum: int,
    with_content: bool,
    trending_window_days: int,
) -> OwnedData:
    """Tracked keywords, trending movements and (if allowed) content coverage, concurrently."""
    read = ("keywords:read",)

    async def trending(direction: str) -> list[dict[str, Any]]:
        params = {"window": str(trending_window_days), "direction": direction, "locale": locale}
        body = await call_json(
            services,
            ASO_ENGINE,
            "GET",
            "/api/keywords/trending",
            caller=caller,
            scopes=read,
            params=params,
        )
        items: list[dict[str, Any]] = body["items"]
        return items

    async def content() -> list[dict[str, Any]] | None:
        if not with_content:
            return None
        items, _ = await _pages(
            services,
            "/api/content",
            caller=caller,
            scopes=("content:read",),
            params={},
            page_size=page_size,
            maximum=maximum,
        )
        return items

    keywords_task = _pages(
        services,
        "/api/keywords",
        caller=caller,
        scopes=read,
        params={"locale": locale},
        page_size=page_size,
        maximum=maximum,
    )
    (keywords, truncated), improved, worsened, pieces = await asyncio.gather(
        keywords_task, trending("improved"), trending("worsened"), content()
    )
    owned = OwnedData(tracked={normalise_phrase(k["phrase"]) for k in keywords})
    owned.tracked.discard("")
    owned.tracked_truncated = truncated
    for item in worsened:
        owned.positions[normalise_phrase(item["phrase"])] = item.get("latest_position")
    for item in improved:
        phrase = normalise_phrase(item["phrase"])
        owned.positions[phrase] = item.get("latest_position")
        owned.trending.add(phrase)
    if pieces is not None:
        owned.content_pieces = len(pieces)
        for piece in pieces:
            owned.covered.update(normalise_phrase(k) for k in piece.get("target_keywords", []))
            owned.content_titles.append(normalise_phrase(piece.get("title", "")))
        owned.covered.discard("")
    return owned


def parse_ideas(text: str, *, max_chars: int) -> list[str]:
    """One normalised phrase per line (or comma/semicolon), bullets and numbering dropped."""
    ideas: list[str] = []
    for chunk in _IDEA_SPLIT.split(text):
        phrase = normalise_phrase(_BULLET.sub("", chunk))
        if phrase and len(phrase) <= max_chars and len(phrase.split()) <= _IDEA_MAX_WORDS:
            ideas.append(phrase)
    return ideas


def _prompt(seeds: list[str], description: str, locale: str) -> str:
    # The subject follows the first colon (the offline provider reads it from there).
    prompt = f"Suggest search keyword phrases in locale {locale}, one per line, for: "
    prompt += ", ".join(seeds) + "."
    if description:
        prompt += "\nThe business: " + description
    return prompt


async def expand_with_ai(
    services: ServiceClient,
    *,
    caller: AuthContext,
    seeds: list[str],
    description: str,
    locale: str,
    max_tokens: int,
    max_chars: int,
) -> AiExpansion:
    """Ideas from the AI Routing Engine; when it is down or refuses for now, none and why."""
    try:
        answer = await generate_text(
            services,
            caller=caller,
            task="keywords",
            prompt=_prompt(seeds, description, locale),
            max_tokens=max_tokens,
        )
    except (UpstreamUnavailable, UpstreamTimeout) as exc:
        return AiExpansion([], "unavailable", detail=exc.detail)
    except DependencyError as exc:
        if exc.status_code not in _AI_SOFT_REFUSALS:
            raise
        return AiExpansion([], "refused", detail=exc.detail)
    ideas = parse_ideas(str(answer.get("text", "")), max_chars=max_chars)
    return AiExpansion(ideas, "used", provider=answer.get("provider"))
