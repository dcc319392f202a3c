"""Wiring alerts into the dashboard app: settings, the outbox resolver, the minutely job."""

from __future__ import annotations

from fastapi import FastAPI

from xynergy.platform.runtime import Platform
from xynergy.platform_dashboard.alerts.config import AlertSettings
from xynergy.platform_dashboard.alerts.evaluate import JOB_NAME, AlertEvaluator
from xynergy.platform_dashboard.alerts.resolver import ALERT_CHANNEL, resolve_rules

__all__ = ["start_alerts"]


def start_alerts(app: FastAPI, platform: Platform, alerts: AlertSettings | None = None) -> None:
    """At start-up: the System Runtime evaluates the rules every minute (once per
    tick across replicas) and the platform's dispatcher delivers their webhooks."""
    settings = alerts or getattr(app.state, "alerts", None) or AlertSettings()
    app.state.alerts = settings
    evaluator = AlertEvaluator(platform, settings)
    app.state.alert_evaluator = evaluator
    platform.outbox.register(ALERT_CHANNEL, resolve_rules)
    platform.add_every_minute(JOB_NAME, evaluator)
