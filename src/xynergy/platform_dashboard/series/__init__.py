"""GET /api/metrics/series: time series summed from the platform's rollup tables."""
