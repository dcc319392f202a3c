"""Cron schedules of workflow definitions, per tenant, fired by DBOS's scheduler."""
