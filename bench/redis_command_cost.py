"""What one Redis round trip costs the gateway's process, in CPU (issue 15, item 8).

    .venv/bin/python bench/redis_command_cost.py
    .venv/bin/python bench/redis_command_cost.py --redis redis://127.0.0.1:6379/15 --commands 20000

Why: with PostgreSQL and Redis the gateway's cross-replica guarantees (a rate limit
admitted exactly across replicas, a budget never overspent, one upstream call for
identical requests on any replica, breakers open everywhere) each cost a round trip
to Redis per proxied call: about ten today (bench/README.md, "Issue 15: gateway hot
path"). The minimal proxy the gateway is measured against makes none. This prints
what one round trip costs the *client* process (user + system CPU of this process,
the Redis server's own excluded) through the platform's own client
(``xynergy.platform.runtime.create_redis``: redis-py's asyncio client on a blocking
pool, as the gateway uses it), so the gateway's floor can be computed: round trips
per request times this.

Rows: one ``GET`` from one task (the **baseline**), then the same and other command
shapes from 64 concurrent tasks (the bench's 64 connections): ``GET``, a pipeline of
two commands (one round trip), ``EVALSHA`` of a three-command script (the budget
reserve's shape), and ``SET`` of a 400-byte value (a cached answer). **ratio** is
CPU per operation over the baseline's. Keys live under a random prefix and are
deleted at the end; only 127.0.0.1 (or ``--redis``) is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from xynergy.platform.config import Settings
from xynergy.platform.runtime import create_redis

CONCURRENCY = 64
VALUE_BYTES = 400
# GET, INCRBY, EXPIREAT: the shape of the budget reservation's script.
SCRIPT = """
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIREAT', KEYS[1], ARGV[2])
return spent
"""


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    tasks: int
    cpu_us: float  # client CPU per operation
    per_second: float  # operations per wall-clock second


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _measure(
    name: str, operation: Callable[[], Awaitable[object]], tasks: int, count: int
) -> Row:
    each = max(count // tasks, 1)

    async def worker() -> None:
        for _ in range(each):
            await operation()

    await asyncio.gather(*(worker() for _ in range(tasks)))  # warm: connections open
    cpu, wall = _cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    cpu, wall = _cpu_seconds() - cpu, time.perf_counter() - wall
    done = each * tasks
    return Row(name, tasks, cpu * 1e6 / done, done / wall)


async def _rows(client: Redis, prefix: str, count: int) -> list[Row]:
    key, counter = f"{prefix}:value", f"{prefix}:counter"
    await client.set(key, "x" * VALUE_BYTES)
    script = client.register_script(SCRIPT)
    expire_at = int(time.time()) + 3600

    async def pipeline() -> object:
        async with client.pipeline(transaction=False) as pipe:
            pipe.get(key)
            pipe.incrby(counter, 1)
            return await pipe.execute()

    def evalsha() -> Awaitable[object]:
        return script(keys=[counter], args=[1, expire_at])

    def get() -> Awaitable[object]:
        return client.get(key)

    def store() -> Awaitable[object]:
        return client.set(f"{prefix}:stored", "y" * VALUE_BYTES, ex=60)

    return [
        await _measure("GET (baseline: one task)", get, 1, count // 4),
        await _measure("GET", get, CONCURRENCY, count),
        await _measure("pipeline: GET + INCRBY (one round trip)", pipeline, CONCURRENCY, count),
        await _measure("EVALSHA: GET, INCRBY, EXPIREAT", evalsha, CONCURRENCY, count),
        await _measure(f"SET of {VALUE_BYTES} bytes with a TTL", store, CONCURRENCY, count),
    ]


async def run(url: str, count: int) -> list[Row]:
    client = create_redis(Settings(redis_url=url))
    assert client is not None
    prefix = "xynbench:" + secrets.token_hex(4)
    try:
        return await _rows(client, prefix, count)
    finally:
        await client.delete(f"{prefix}:value", f"{prefix}:counter", f"{prefix}:stored")
        await client.aclose()


def _table(rows: list[Row]) -> str:
    baseline = rows[0].cpu_us
    lines = [
        f"{'operation':44} {'tasks':>5} {'client CPU µs/op':>16} {'ops/s':>9} {'ratio':>6}",
        "-" * 84,
    ]
    for row in rows:
        lines.append(
            f"{row.name:44} {row.tasks:>5} {row.cpu_us:>16.1f} {row.per_second:>9,.0f} "
            f"{row.cpu_us / baseline:>6.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Client CPU of one Redis round trip.")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--commands", type=int, default=20_000, help="per row (>= 256)")
    args = parser.parse_args(argv)
    if args.commands < 256:
        parser.error("--commands must be at least 256")
    rows = asyncio.run(run(args.redis, args.commands))
    print(f"redis-py asyncio client, the platform's pool; {args.redis}; {args.commands} per row")
    print(_table(rows))
    print("ratio: client CPU per operation / the baseline's (one GET from one task)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
