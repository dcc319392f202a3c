"""Latency histograms that add up: fixed log-scale buckets, one count column each.

Percentiles cannot be averaged across replicas or minutes (the mean of two p99s
is not the p99 of their union); bucket counts can be summed. So every rollup row
stores how many requests fell in each bucket, SQL sums the buckets over any set
of rows, and the percentile is read from the merged counts.

Bucket 0 holds requests under 1 ms; bucket ``i`` (1..34) holds
``[2^((i-1)/2), 2^(i/2))`` ms, so bounds grow by √2 and an estimate is within
that factor of the truth; the last bucket holds everything from 2^17 ms (131 s).
The layout is part of the stored data: changing it needs a migration.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["BUCKET_COLUMNS", "BUCKET_COUNT", "bucket_index", "percentile_ms"]

BUCKET_COUNT = 36
BUCKET_COLUMNS: tuple[str, ...] = tuple(f"latency_b{index:02d}" for index in range(BUCKET_COUNT))
_LAST = BUCKET_COUNT - 1


def bucket_index(seconds: float) -> int:
    """The bucket a request of ``seconds`` falls in."""
    milliseconds = seconds * 1000.0
    if milliseconds < 1.0:
        return 0
    return min(int(2.0 * math.log2(milliseconds)) + 1, _LAST)


def _lower_ms(index: int) -> float:
    return 0.0 if index == 0 else 2.0 ** ((index - 1) / 2)


def _upper_ms(index: int) -> float:
    return 2.0 ** (index / 2)


def percentile_ms(counts: Sequence[int], quantile: float) -> float | None:
    """The ``quantile`` (0..1) of merged bucket ``counts`` in ms; None without data.

    Interpolates inside the bucket that holds the rank: linearly in the first
    (which starts at 0), geometrically in the others (their bounds are a ratio
    apart); the open last bucket answers its lower bound.
    """
    total = sum(counts)
    if total <= 0:
        return None
    rank = max(quantile * total, 1e-9)
    seen = 0
    for index, count in enumerate(counts):
        if count <= 0:
            continue
        if seen + count >= rank:
            fraction = (rank - seen) / count
            if index == 0:
                return _upper_ms(0) * fraction
            if index == _LAST:
                return _lower_ms(index)
            low, high = _lower_ms(index), _upper_ms(index)
            return float(low * (high / low) ** fraction)
        seen += count
    return _lower_ms(_LAST)
