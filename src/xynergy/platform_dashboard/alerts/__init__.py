"""Alerts: rules per tenant and platform-wide, evaluated every minute, notified once
per transition through a signed webhook (the platform outbox) and a log line."""
