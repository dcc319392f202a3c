"""Merge candidate phrases from every source, score, rank, cut and cluster them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from xynergy.marketing_engine.research.clustering import cluster_labels
from xynergy.marketing_engine.research.schemas import Suggestion
from xynergy.marketing_engine.research.scoring import (
    DEMAND_METHOD,
    DIFFICULTY_HEURISTIC_METHOD,
    DIFFICULTY_RANKING_METHOD,
    INTENT_METHOD,
    TermPrior,
    classify_intent,
    demand_index,
    difficulty_from_position,
    difficulty_heuristic,
)
from xynergy.marketing_engine.research.sources import OwnedData
from xynergy.marketing_engine.research.text import content_tokens

__all__ = ["build_suggestions"]

# Strongest first: the suggestion's ``source`` is its strongest origin.
_ORIGIN_ORDER = ("trending", "owned", "seed", "ai")
# Added to the demand index when ranking: owned evidence beats a guess.
_ORIGIN_BONUS = {"trending": 30, "owned": 20, "seed": 15, "ai": 0}


def _relevant(phrase: str, seed_tokens: frozenset[str]) -> bool:
    return bool(content_tokens(phrase) & seed_tokens)


def _merge(seeds: Sequence[str], owned: OwnedData, ai_ideas: Iterable[str]) -> dict[str, set[str]]:
    """phrase -> its origins. Owned phrases count only when they share a word with a seed."""
    seed_tokens = frozenset().union(*(content_tokens(s) for s in seeds))
    origins: dict[str, set[str]] = {}

    def add(phrase: str, origin: str) -> None:
        origins.setdefault(phrase, set()).add(origin)

    for phrase in seeds:
        add(phrase, "seed")
    for phrase in owned.tracked | owned.covered:
        if _relevant(phrase, seed_tokens):
            add(phrase, "owned")
    for phrase in owned.trending:
        if _relevant(phrase, seed_tokens):
            add(phrase, "trending")
    for phrase in ai_ideas:
        add(phrase, "ai")
    return origins


def build_suggestions(
    *, seeds: Sequence[str], owned: OwnedData, ai_ideas: Iterable[str], limit: int
) -> list[Suggestion]:
    """The ``limit`` strongest suggestions, clustered, each stating its methods."""
    prior = TermPrior.from_phrases([*owned.tracked, *owned.covered, *owned.content_titles])
    scored: list[tuple[int, str, dict[str, Any]]] = []
    for phrase, origins in _merge(seeds, owned, ai_ideas).items():
        ordered = [o for o in _ORIGIN_ORDER if o in origins]
        intent = classify_intent(phrase)
        demand = demand_index(phrase, prior)
        position = owned.positions.get(phrase)
        if position is not None:
            difficulty = difficulty_from_position(position)
            difficulty_method = DIFFICULTY_RANKING_METHOD
        else:
            difficulty = difficulty_heuristic(
                phrase, intent=intent, demand=demand, covered=phrase in owned.covered
            )
            difficulty_method = DIFFICULTY_HEURISTIC_METHOD
        fields = {
            "phrase": phrase,
            "intent": intent,
            "intent_method": INTENT_METHOD,
            "difficulty": difficulty,
            "difficulty_method": difficulty_method,
            "demand": demand,
            "demand_method": DEMAND_METHOD,
            "source": ordered[0],
            "origins": ordered,
            "tracked": phrase in owned.tracked,
            "position": position,
        }
        scored.append((demand + _ORIGIN_BONUS[ordered[0]], phrase, fields))
    scored.sort(key=lambda entry: (-entry[0], entry[1]))
    chosen = [fields for _, _, fields in scored[:limit]]
    labels = cluster_labels([fields["phrase"] for fields in chosen])
    return [Suggestion(**fields, cluster=labels[fields["phrase"]]) for fields in chosen]
