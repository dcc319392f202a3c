"""Search intent by rules, a difficulty score and a demand index, each naming its method.

The demand index is a *relative* 0-100 estimate, never a search volume: it
combines (1) how often the phrase's words occur in the tenant's own keywords
and content (a prior derived from data the tenant owns), (2) a compact
hand-curated list of search modifiers known to carry demand (below; written for
this module, not taken from any data set), and (3) phrase length (head terms are
searched more than long-tail ones).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from xynergy.marketing_engine.research.text import content_tokens

__all__ = [
    "DEMAND_METHOD",
    "DIFFICULTY_HEURISTIC_METHOD",
    "DIFFICULTY_RANKING_METHOD",
    "INTENT_METHOD",
    "TermPrior",
    "classify_intent",
    "demand_index",
    "difficulty_from_position",
    "difficulty_heuristic",
]

INTENT_METHOD = "rules:modifier-lexicon-v1"
DEMAND_METHOD = "prior:tenant-term-frequency+modifier-list+length-v1"
DIFFICULTY_RANKING_METHOD = "ranking-history:latest-position-v1"
DIFFICULTY_HEURISTIC_METHOD = "heuristic:length+intent+content-coverage-v1"

# Checked in this order: the first lexicon with a match decides.
_TRANSACTIONAL = frozenset(
    "buy order purchase price prices pricing cost cheap discount coupon deal deals sale "
    "shop subscribe subscription download install trial hire book booking rent quote".split()
)
_COMMERCIAL = frozenset(
    "best top review reviews vs versus compare comparison alternative alternatives "
    "affordable premium recommended rated ranking".split()
)
_NAVIGATIONAL = frozenset(
    "login log-in signin sign-in account website official app contact".split()
)
_INFORMATIONAL = frozenset(
    "how what why when where who guide tutorial tips ideas examples checklist learn "
    "meaning definition benefits strategies".split()
)
_TRANSACTIONAL_PHRASES = ("near me", "free trial", "for sale")
_SIGN_IN = ("sign in", "log in")

# Relative demand of common search modifiers (0-1); hand-curated for this module.
_MODIFIER_DEMAND: dict[str, float] = {
    "best": 1.0, "free": 1.0, "near": 0.9, "how": 0.9, "online": 0.8, "app": 0.8,
    "cheap": 0.7, "top": 0.7, "price": 0.7, "review": 0.6, "guide": 0.6, "ideas": 0.6,
    "tips": 0.6, "what": 0.6, "buy": 0.6, "software": 0.5, "service": 0.5, "course": 0.5,
    "beginners": 0.5, "examples": 0.4, "vs": 0.4, "alternatives": 0.4, "affordable": 0.4,
    "checklist": 0.3, "strategies": 0.3, "template": 0.3,
}  # fmt: skip
_LENGTH_WEIGHT, _TENANT_WEIGHT, _MODIFIER_WEIGHT = 0.45, 0.35, 0.20
_MAX_INDEX = 100

# Difficulty by word count (head terms compete with everyone); 5+ words: the last.
_DIFFICULTY_BY_WORDS = (80, 62, 48, 38, 30)
_INTENT_DIFFICULTY = {"transactional": 10, "commercial": 8, "navigational": 0, "informational": 0}
_COVERED_BONUS = 12
_DEMAND_DIFFICULTY_SHARE = 0.15
# A ranking position p maps to FLOOR + SPAN * log(p) / log(NOT_RANKED).
_POSITION_FLOOR, _POSITION_SPAN, _NOT_RANKED = 15, 80, 1001


def classify_intent(phrase: str) -> str:
    """informational, commercial, transactional or navigational, by modifier rules."""
    words = set(phrase.split())
    if words & _TRANSACTIONAL or any(p in phrase for p in _TRANSACTIONAL_PHRASES):
        return "transactional"
    if words & _COMMERCIAL:
        return "commercial"
    if words & _NAVIGATIONAL or any(p in phrase for p in _SIGN_IN):
        return "navigational"
    return "informational"


@dataclass(frozen=True, slots=True)
class TermPrior:
    """Word frequencies over the tenant's own phrases (tracked keywords and content)."""

    counts: Counter[str]
    top: int

    @classmethod
    def from_phrases(cls, phrases: Iterable[str]) -> TermPrior:
        counts: Counter[str] = Counter()
        for phrase in phrases:
            counts.update(content_tokens(phrase))
        return cls(counts, max(counts.values(), default=0))

    def weight(self, phrase: str) -> float:
        """0-1: mean log-scaled frequency of the phrase's words in the tenant's data."""
        tokens = content_tokens(phrase)
        if not tokens or not self.top:
            return 0.0
        scale = math.log1p(self.top)
        return sum(math.log1p(self.counts[t]) / scale for t in tokens) / len(tokens)


def demand_index(phrase: str, prior: TermPrior) -> int:
    """A relative demand index, 0-100 (see the module docstring for the method)."""
    words = phrase.split()
    length = 1.0 / max(1, len(words))
    modifier = max((_MODIFIER_DEMAND.get(w, 0.0) for w in words), default=0.0)
    score = _LENGTH_WEIGHT * length + _TENANT_WEIGHT * prior.weight(phrase)
    score += _MODIFIER_WEIGHT * modifier
    return max(0, min(_MAX_INDEX, round(_MAX_INDEX * score)))


def difficulty_from_position(position: int | None) -> int:
    """Difficulty from where the tenant already ranks: ranking well means within reach."""
    value = _NOT_RANKED if position is None else position
    scaled = _POSITION_FLOOR + _POSITION_SPAN * math.log(value) / math.log(_NOT_RANKED)
    return max(0, min(_MAX_INDEX, round(scaled)))


def difficulty_heuristic(phrase: str, *, intent: str, demand: int, covered: bool) -> int:
    """Difficulty without ranking data: shorter, commercial, in-demand phrases are harder;
    a phrase the tenant's content already targets is easier."""
    words = len(phrase.split())
    base = _DIFFICULTY_BY_WORDS[min(words, len(_DIFFICULTY_BY_WORDS)) - 1]
    score = base + _INTENT_DIFFICULTY[intent] + _DEMAND_DIFFICULTY_SHARE * demand
    if covered:
        score -= _COVERED_BONUS
    return max(0, min(_MAX_INDEX, round(score)))
