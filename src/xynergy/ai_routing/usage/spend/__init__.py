"""Spend reports of the AI Routing Engine, read from the daily usage rollup."""
