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

import aiohttp
import uvloop

__all__ = ["percentile", "run_load"]


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values)) - 1))
    return sorted_values[rank]


async def _worker(
    session: aiohttp.ClientSession,
    url: str,
    deadline: float,
    latencies: list[float],
    errors: list[int],
) -> None:
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        try:
            async with session.get(url) as response:
                await response.read()
                ok = response.status < 400
        except aiohttp.ClientError:
            ok = False
        if ok:
            latencies.append(time.perf_counter() - started)
        else:
            errors.append(1)


async def run_load(
    url: str, headers: dict[str, str], connections: int, duration: float
) -> dict[str, float]:
    """Keep ``connections`` keep-alive connections busy for ``duration`` seconds."""
    latencies: list[float] = []
    errors: list[int] = []
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        started = time.perf_counter()
        deadline = started + duration
        await asyncio.gather(
            *(_worker(session, url, deadline, latencies, errors) for _ in range(connections))
        )
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": len(errors),
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
