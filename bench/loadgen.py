"""Fallback load generator (when ``wrk`` is not installed): aiohttp, one process.

Run as a script by the runner, in its own process so it never shares an event
loop or a GIL with the server. Prints one JSON object. It is far slower than
wrk: on a small machine it can saturate before the server does, which pulls
the ratio towards 1.00; prefer wrk for numbers worth quoting.

    python bench/loadgen.py -c 64 -d 10 --header "Authorization: Bearer ..." \
        http://127.0.0.1:8000/ping
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field

import aiohttp
import uvloop

__all__ = ["percentile", "run_load"]


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values)) - 1))
    return sorted_values[rank]


@dataclass
class _Tally:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0


async def _worker(session: aiohttp.ClientSession, url: str, deadline: float, tally: _Tally) -> None:
    # One connection's worth of closed-loop traffic: next request when the last ends.
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        try:
            async with session.get(url) as response:
                await response.read()
                ok = response.status < 400
        except aiohttp.ClientError:
            ok = False
        if ok:
            tally.latencies.append(time.perf_counter() - started)
        else:
            tally.errors += 1


async def run_load(
    url: str, headers: dict[str, str], connections: int, duration: float
) -> dict[str, float]:
    """Keep ``connections`` keep-alive connections busy for ``duration`` seconds."""
    tally = _Tally()
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        started = time.perf_counter()
        deadline = started + duration
        await asyncio.gather(*(_worker(session, url, deadline, tally) for _ in range(connections)))
        elapsed = time.perf_counter() - started
    latencies = sorted(tally.latencies)
    return {
        "requests": len(latencies),
        "errors": tally.errors,
        "requests_per_second": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("-c", "--connections", type=int, default=64)
    parser.add_argument("-d", "--duration", type=float, default=10.0)
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    args = parser.parse_args()
    headers = dict(h.split(": ", 1) for h in args.header)
    # uvloop, as the server uses: the client's own overhead is what limits it.
    print(json.dumps(uvloop.run(run_load(args.url, headers, args.connections, args.duration))))


if __name__ == "__main__":
    main()
