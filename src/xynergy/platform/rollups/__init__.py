"""Per-minute rollups of the platform's traffic, cache and AI use, kept in SQL.

Time series without a metrics server: every replica counts in process and writes
its own rows behind the requests (:mod:`.recorder`); the dashboard sums them
(``xynergy.platform_dashboard.series``). Latencies are kept as mergeable
histogram buckets (:mod:`.buckets`); old rows go in bounded batches
(:mod:`.retention`). The counting spots see only :mod:`.sink`, so this package
imports nothing at its top: ``platform.monitoring`` depends on it.
"""
