"""Service metrics on the platform registry: created once, shared on restart."""

from __future__ import annotations

import pytest
from prometheus_client import Counter, Gauge

from xynergy.platform.monitoring import PlatformMetrics


class TestServiceMetric:
    def test_a_second_registration_returns_the_first_metric(self) -> None:
        metrics = PlatformMetrics()
        first = metrics.service_metric(Counter, "xynergy_test_things", "Things.", ["kind"])
        first.labels(kind="a").inc()
        again = metrics.service_metric(Counter, "xynergy_test_things", "Things.", ["kind"])
        assert again is first
        assert b'xynergy_test_things_total{kind="a"} 1.0' in metrics.render()

    def test_the_same_name_as_another_kind_is_refused(self) -> None:
        metrics = PlatformMetrics()
        metrics.service_metric(Counter, "xynergy_test_backlog", "Backlog.")
        with pytest.raises(TypeError):
            metrics.service_metric(Gauge, "xynergy_test_backlog", "Backlog.")

    def test_registries_of_two_platforms_stay_apart(self) -> None:
        one, two = PlatformMetrics(), PlatformMetrics()
        assert one.service_metric(Gauge, "xynergy_test_g", "G.") is not two.service_metric(
            Gauge, "xynergy_test_g", "G."
        )
