"""Lexical clustering: phrases sharing enough (stemmed, stopword-free) words group together.

Leader clustering: phrases are visited strongest first; each joins the existing
cluster whose head it most resembles (Jaccard similarity of word sets at or
above the threshold), or heads a new one. O(phrases x clusters), deterministic,
and the label is a real phrase: the cluster's head.
"""

from __future__ import annotations

from collections.abc import Sequence

from xynergy.marketing_engine.research.text import content_tokens

__all__ = ["CLUSTERING_METHOD", "SIMILARITY_THRESHOLD", "cluster_labels", "jaccard"]

CLUSTERING_METHOD = "lexical:jaccard-leader-v1"
# Two phrases of two words sharing one ("yoga mat", "yoga class") score 1/3 and
# stay apart; "yoga mat" and "best yoga mat" score 2/3 and group.
SIMILARITY_THRESHOLD = 0.5


def jaccard(left: frozenset[str], right: frozenset[str]) -> float:
    """|left & right| / |left | right| (0 for two empty sets)."""
    union = left | right
    return len(left & right) / len(union) if union else 0.0


def cluster_labels(
    phrases: Sequence[str], *, threshold: float = SIMILARITY_THRESHOLD
) -> dict[str, str]:
    """phrase -> label of its cluster; ``phrases`` are given strongest first."""
    heads: list[tuple[str, frozenset[str]]] = []
    labels: dict[str, str] = {}
    for phrase in phrases:
        tokens = content_tokens(phrase) or frozenset(phrase.split())
        best_label, best_score = None, -1.0
        for label, head_tokens in heads:
            score = jaccard(tokens, head_tokens)
            if score >= threshold and score > best_score:
                best_label, best_score = label, score
                if score == 1.0:
                    break
        if best_label is None:
            heads.append((phrase, tokens))
            best_label = phrase
        labels[phrase] = best_label
    return labels
