"""Intent rules, scores and lexical clustering, without a platform."""

from __future__ import annotations

from xynergy.marketing_engine.research.clustering import cluster_labels
from xynergy.marketing_engine.research.scoring import (
    TermPrior,
    classify_intent,
    demand_index,
    difficulty_from_position,
)
from xynergy.marketing_engine.research.sources import parse_ideas


class TestIntent:
    def test_rules(self) -> None:
        assert classify_intent("buy yoga mat") == "transactional"
        assert classify_intent("yoga studio near me") == "transactional"
        assert classify_intent("best yoga mat") == "commercial"
        assert classify_intent("acme app login") == "navigational"
        assert classify_intent("how to start yoga") == "informational"


class TestScores:
    def test_tenant_prior_raises_demand(self) -> None:
        prior = TermPrior.from_phrases(["yoga mat", "yoga class", "yoga retreat"])
        assert demand_index("yoga flow", prior) > demand_index("tai chi", prior)

    def test_better_position_is_less_difficult(self) -> None:
        assert difficulty_from_position(1) < difficulty_from_position(50)
        assert difficulty_from_position(None) == 95


class TestClustering:
    def test_similar_phrases_share_a_label(self) -> None:
        labels = cluster_labels(["yoga mat", "best yoga mats", "pilates class"])
        assert labels["best yoga mats"] == "yoga mat"
        assert labels["pilates class"] == "pilates class"


class TestParseIdeas:
    def test_bullets_numbering_and_long_lines_dropped(self) -> None:
        text = "1. Yoga Mat\n- best yoga mats!\n" + "word " * 20 + "\n\n"
        assert parse_ideas(text, max_chars=100) == ["yoga mat", "best yoga mats"]
