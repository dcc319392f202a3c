"""RSS while the AI response cache fills with distinct answers, and past its bound.

    .venv/bin/python bench/cache_fill_memory.py
    .venv/bin/python bench/cache_fill_memory.py --requests 30000 --step 3000

Why: the cluster soak's replicas grow a few MiB per hour after warm-up. Is that a
leak or the bounded in-process cache (``XYNERGY_CACHE_MEMORY_MAX_ENTRIES``, 10,000 by
default) filling up? This sends distinct AI chat requests (every one a miss, every
answer stored) to the all-in-one app in process (offline model, SQLite) and prints
the RSS after each step, next to the first step's (the baseline row). Growth that
stops once the requests pass the bound is the cache; growth that goes on is a leak.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
import uuid
from functools import partial
from pathlib import Path

# isort: split
# bench's own modules: bench/ is sys.path[0] when run as a script.
from cache_hit_rate import UNLIMITED_TOKENS, _keys
from process_memory import rss_bytes
from runtime_support import bench_settings, quiet_logs, serving

from xynergy.ai_routing.app import SLUG as AI_ROUTING_ENGINE
from xynergy.ai_routing.app import create_ai_routing_app
from xynergy.ai_routing.config import AiSettings
from xynergy.platform.db.migrate import upgrade_to_head
from xynergy.server import build_all_in_one

MIB = 1024 * 1024
CONCURRENCY = 16
CHAT_PATH = "/ai-routing-engine/v1/chat/completions"


async def run(requests: int, step: int) -> list[tuple[int, float]]:
    """(requests sent so far, RSS in MiB) after each step."""
    with tempfile.TemporaryDirectory(prefix="xynergy-bench-cache-fill-") as tmp:
        data_dir = Path(tmp)
        settings = bench_settings(f"sqlite+aiosqlite:///{data_dir}/xynergy.db", data_dir)
        await asyncio.to_thread(upgrade_to_head, settings)
        ai = AiSettings(tokens_per_minute=UNLIMITED_TOKENS)
        app = build_all_in_one(
            settings, services={AI_ROUTING_ENGINE: partial(create_ai_routing_app, ai=ai)}
        )
        points: list[tuple[int, float]] = []
        async with serving(app) as client:
            secrets, _metrics_key = await _keys(app.state.platform, 1)
            headers = {"Authorization": f"Bearer {secrets[0]}"}

            async def ask() -> None:
                prompt = f"a question asked once: {uuid.uuid4().hex}"
                body = {
                    "model": "xynergy-offline",
                    "messages": [{"role": "user", "content": prompt}],
                }
                response = await client.post(CHAT_PATH, json=body, headers=headers)
                if response.status_code != 200:
                    raise RuntimeError(f"{response.status_code}: {response.text[:300]}")

            sent = 0
            while sent < requests:
                for _ in range(step // CONCURRENCY):
                    await asyncio.gather(*(ask() for _ in range(CONCURRENCY)))
                sent += step // CONCURRENCY * CONCURRENCY
                gc.collect()
                points.append((sent, rss_bytes() / MIB))
        return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=24_000)
    parser.add_argument("--step", type=int, default=2_000)
    args = parser.parse_args()
    if args.requests < args.step or args.step < CONCURRENCY:
        parser.error(f"need --requests >= --step >= {CONCURRENCY}")
    quiet_logs()
    points = asyncio.run(run(args.requests, args.step))
    base = points[0][1]
    print("distinct AI answers stored vs RSS (all-in-one in process, offline model, SQLite)")
    print(f"{'requests':>9} {'RSS MiB':>8} {'vs first step':>14}")
    for sent, rss in points:
        print(f"{sent:>9} {rss:8.1f} {rss - base:+13.1f}")


if __name__ == "__main__":
    main()
