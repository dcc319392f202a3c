"""AI response cache on a repeated workload: the hit rate, from the platform's own metrics.

The review's success criterion: a cache hit rate over 85 % on a repeated workload.
A workload of AI requests as the services send them is replayed against the
all-in-one app in process (the AI Routing Engine mounted, the admin app at the root
for ``/metrics``; full platform stack, lifespan, a fresh migrated SQLite database
per row) with the offline provider, so no network and no account:

* ``--tenants`` tenants, tenant n sending a share proportional to 1/n (a few large
  tenants, a tail of small ones); each has ``--subjects`` subjects of its own (a
  business in a place: what it sells, where), and asks ``TEMPLATES`` (task, wording,
  API, as the Marketing Engine, the ASO Engine and the assistant ask) about them, the
  prompts' popularity Zipf-distributed (exponent ``--zipf``) in an order of its own.
  The cache never shares an entry between tenants: each pays its own first asks;
* ``--unique`` of the requests are free-form questions asked once (never a hit);
* the templates' API decides the path: ``POST /api/generate/intelligent`` or
  ``POST /v1/chat/completions`` (the offline model named); free-form ones are chats;
* 20 % of requests carry the prompt with extra whitespace (a doubled space, a
  trailing newline), which the gateway's normalisation folds into the same key.

The workload is generated once (seeded) and every row replays the same list, in
the same order, over ``--connections`` concurrent closed-loop workers.

Rows:

* ``exact-match ideal``: computed, not measured: ``1 - distinct keys / requests``,
  the best any exact-match cache can do on this workload (every first ask misses);
* ``platform cache``: hits and misses read from ``xynergy_cache_requests_total
  {namespace="ai"}`` on the app's ``/metrics`` (before and after), provider calls
  from ``xynergy_ai_upstream_calls_total``; ``2nd half`` is the hit rate over the
  second half of the requests alone (the cache warm);
* ``no cache`` (the baseline): the same with ``XYNERGY_AI_CACHE_ENABLED=false``.

``provider calls`` counts what reached a provider; ``ratio`` is that against the
baseline's (the share of AI spend left). ``hit``/``miss`` ``p50``/``p99`` are per
request in process, for answers from the cache and from the model apart; they depend
on the machine and its load, the hit rates do not (except for a few misses that
concurrency turns into shared in-flight calls). The goal line
(hit rate > 85 %) is informational, never an assertion; the assertion is
``tests/platform/test_review_success_criteria.py``.

    .venv/bin/python bench/cache_hit_rate.py [--requests 20000] [--tenants 20]
        [--subjects 10] [--zipf 1.0] [--unique 0.1] [--connections 16] [--seed 16] [--json]

``XYNERGY_*`` variables of the caller's environment are ignored (removed from this
process), so a developer's settings cannot change what is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import httpx

# isort: split
# bench's own modules: bench/ is sys.path[0] when run as a script.
from runtime_support import Databases, bench_settings, percentile, progress, quiet_logs, serving

from xynergy.ai_routing.app import SLUG as AI_ROUTING_ENGINE
from xynergy.ai_routing.app import create_ai_routing_app
from xynergy.ai_routing.config import AiSettings
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.runtime import Platform
from xynergy.platform.tenancy import service as tenancy
from xynergy.server import build_all_in_one

IDEAL = "exact-match ideal (1 - distinct/requests)"
CACHED = "platform cache (in process)"
NO_CACHE = "no cache (XYNERGY_AI_CACHE_ENABLED=false)"
GOAL_HIT_RATE = 0.85
MODEL = "xynergy-offline"
GENERATE_PATH = f"/{AI_ROUTING_ENGINE}/api/generate/intelligent"
CHAT_PATH = f"/{AI_ROUTING_ENGINE}/v1/chat/completions"
VARIANT_SHARE = 0.2
UNLIMITED_TOKENS = "1000000000000/minute"
# (task, wording, max_tokens, chat): what the services ask the engine for, and through
# which API (chat: /v1/chat/completions, an OpenAI client; else the platform's own).
# No word of AiSettings.time_sensitive_patterns: every answer gets the stable TTL (24 h).
TEMPLATES = (
    ("keywords", "Suggest ten search keywords for {subject}.", 120, False),
    ("keywords", "Which long-tail keywords would {subject} rank for?", 120, False),
    ("content", "Write a 50-word app store description for {subject}.", 160, False),
    ("content", "Write three headline ideas for the home page of {subject}.", 80, True),
    ("campaign", "Plan a three-channel launch campaign for {subject}.", 240, False),
    ("campaign", "Personalise a spring promotion template for {subject}.", 200, False),
    ("analysis", "Name the main competitors of {subject} and how to stand out.", 200, True),
    ("summary", "Summarise in two sentences what customers praise about {subject}.", 80, True),
    ("classification", "Classify the search intent of: best {subject} near me.", 16, False),
    ("other", "Draft a friendly reply to a customer of {subject} about opening hours.", 120, True),
)
BUSINESSES = (
    "yoga studio", "bike shop", "bakery", "dental clinic", "coffee roaster", "bookshop",
    "language school", "pet groomer", "florist", "climbing gym", "tax adviser",
    "vegan restaurant", "hair salon", "plumber", "wine bar", "toy store", "photo studio",
    "surf school", "tailor", "escape room",
)  # fmt: skip
PLACES = (
    "Lisbon", "Leeds", "Lyon", "Graz", "Malmo", "Porto", "Gdansk", "Bruges", "Turin",
    "Cork", "Basel", "Tartu", "Split", "Aarhus", "Ghent", "Bilbao", "Brno", "Bergen",
    "Delft", "Nantes",
)  # fmt: skip
# A question asked once (the assistant's free-form turns): never a cache hit.
FREE_FORM = "How should I reply to this customer review about our delivery times?"
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Ask:
    """One request of the workload."""

    tenant: int
    chat: bool  # /v1/chat/completions, else /api/generate/intelligent
    task: str
    prompt: str  # as sent (possibly with extra whitespace)
    max_tokens: int

    def key(self) -> tuple[object, ...]:
        """What an exact-match cache over the normalised request tells apart."""
        return (self.tenant, self.chat, _SPACE.sub(" ", self.prompt).strip(), self.max_tokens)

    def path_and_body(self) -> tuple[str, dict[str, Any]]:
        if self.chat:
            messages = [{"role": "user", "content": self.prompt}]
            return CHAT_PATH, {"model": MODEL, "messages": messages, "max_tokens": self.max_tokens}
        return GENERATE_PATH, {
            "task": self.task,
            "prompt": self.prompt,
            "max_tokens": self.max_tokens,
        }


def _subjects(rng: random.Random) -> list[str]:
    subjects = [f"a {b} in {p}" for b, p in itertools.product(BUSINESSES, PLACES)]
    rng.shuffle(subjects)
    return subjects


def _with_extra_whitespace(prompt: str, rng: random.Random) -> str:
    words = prompt.split(" ")
    at = rng.randrange(1, len(words))
    return " ".join(words[:at]) + "  " + " ".join(words[at:]) + "\n"


def workload(
    *, requests: int, tenants: int, subjects: int, zipf: float, unique: float, seed: int
) -> list[Ask]:
    """The repeated workload every row replays (deterministic for a seed)."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible workload, not a secret
    pool = _subjects(rng)
    if tenants * subjects > len(pool):
        raise SystemExit(f"--tenants x --subjects: at most {len(pool)}")
    catalogues = []
    for tenant in range(tenants):
        own = pool[tenant * subjects : (tenant + 1) * subjects]
        prompts = [
            (task, wording.format(subject=subject), tokens, chat)
            for subject in own
            for task, wording, tokens, chat in TEMPLATES
        ]
        rng.shuffle(prompts)  # popularity order, its own per tenant
        catalogues.append(prompts)
    popularity = [1 / rank**zipf for rank in range(1, subjects * len(TEMPLATES) + 1)]
    owners = rng.choices(range(tenants), weights=[1 / n for n in range(1, tenants + 1)], k=requests)
    asks = []
    for number, tenant in enumerate(owners):
        if rng.random() < unique:
            task, prompt, max_tokens, chat = "other", f"{FREE_FORM} (question {number})", 120, True
        else:
            task, prompt, max_tokens, chat = rng.choices(catalogues[tenant], weights=popularity)[0]
        if rng.random() < VARIANT_SHARE:
            prompt = _with_extra_whitespace(prompt, rng)
        asks.append(Ask(tenant, chat, task, prompt, max_tokens))
    return asks


@dataclass(frozen=True, slots=True)
class Row:
    variant: str
    requests: int
    hits: int
    misses: int
    hit_rate: float
    second_half_hit_rate: float | None
    provider_calls: int
    deduplicated: int
    ratio: float
    # Per answer from the cache, and per answer from the model (None: none measured).
    hit_p50_ms: float | None
    hit_p99_ms: float | None
    miss_p50_ms: float | None
    miss_p99_ms: float | None
    errors: int


@dataclass(frozen=True, slots=True)
class Counts:
    """The gateway's counters on /metrics at one moment."""

    hits: float
    misses: float
    provider_calls: float
    deduplicated: float

    def __sub__(self, other: Counts) -> Counts:
        return Counts(
            self.hits - other.hits,
            self.misses - other.misses,
            self.provider_calls - other.provider_calls,
            self.deduplicated - other.deduplicated,
        )


def _metric_sum(text: str, name: str, **labels: str) -> float:
    """The sum of every sample of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        series = line.split(" ", 1)[0]
        if series != name and not series.startswith(name + "{"):
            continue
        if all(f'{key}="{value}"' in series for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def _counts(client: httpx.AsyncClient, metrics_key: str) -> Counts:
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {metrics_key}"})
    response.raise_for_status()
    text = response.text
    return Counts(
        hits=_metric_sum(text, "xynergy_cache_requests_total", namespace="ai", result="hit"),
        misses=_metric_sum(text, "xynergy_cache_requests_total", namespace="ai", result="miss"),
        provider_calls=_metric_sum(text, "xynergy_ai_upstream_calls_total"),
        deduplicated=_metric_sum(text, "xynergy_ai_deduplicated_requests_total"),
    )


async def _keys(platform: Platform, tenants: int) -> tuple[list[str], str]:
    """A key with ``ai:generate`` per tenant, and one with ``metrics:read``."""
    secrets = []
    for number in range(tenants + 1):
        async with unit_of_work(platform.sessionmaker) as session:
            tenant = await tenancy.create_tenant(
                session, name=f"bench-{number}-{uuid.uuid4().hex[:8]}"
            )
            scopes = ["metrics:read"] if number == tenants else ["ai:generate"]
            issued = await tenancy.create_key(
                session, tenant_id=tenant.id, name="bench", scopes=scopes
            )
        secrets.append(issued.secret)
    return secrets[:tenants], secrets[tenants]


@dataclass(slots=True)
class Latencies:
    """Milliseconds per request, apart for answers from the cache and from the model."""

    hits: list[float] = field(default_factory=list)
    misses: list[float] = field(default_factory=list)
    errors: int = 0

    def add(self, other: Latencies) -> Latencies:
        return Latencies(
            self.hits + other.hits, self.misses + other.misses, self.errors + other.errors
        )


def _was_cached(ask: Ask, answer: Any) -> bool:
    return bool(answer["xynergy"]["cached"] if ask.chat else answer["cached"])


async def _replay(
    client: httpx.AsyncClient, asks: list[Ask], secrets: list[str], connections: int
) -> Latencies:
    """Every ask, ``connections`` at a time (closed loop)."""
    pending: Iterator[Ask] = iter(asks)
    latencies = Latencies()

    async def worker() -> None:
        for ask in pending:
            path, body = ask.path_and_body()
            headers = {"Authorization": f"Bearer {secrets[ask.tenant]}"}
            started = time.perf_counter()
            response = await client.post(path, json=body, headers=headers)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                latencies.errors += 1
                if latencies.errors == 1:
                    progress(f"first error: {path} {response.status_code} {response.text[:300]}")
            elif _was_cached(ask, response.json()):
                latencies.hits.append(elapsed)
            else:
                latencies.misses.append(elapsed)

    await asyncio.gather(*(worker() for _ in range(connections)))
    return latencies


async def _measure(
    databases: Databases, asks: list[Ask], args: argparse.Namespace, *, cache: bool
) -> tuple[Counts, Counts, Latencies]:
    """One row: counts over all requests, over the second half alone; latencies."""
    url, data_dir = await databases.fresh("SQLite")
    ai = AiSettings(cache_enabled=cache, tokens_per_minute=UNLIMITED_TOKENS)
    app = build_all_in_one(
        bench_settings(url, data_dir),
        services={AI_ROUTING_ENGINE: partial(create_ai_routing_app, ai=ai)},
    )
    half = len(asks) // 2
    async with serving(app) as client:
        secrets, metrics_key = await _keys(app.state.platform, args.tenants)
        before = await _counts(client, metrics_key)
        first = await _replay(client, asks[:half], secrets, args.connections)
        middle = await _counts(client, metrics_key)
        rest = await _replay(client, asks[half:], secrets, args.connections)
        after = await _counts(client, metrics_key)
    return after - before, after - middle, first.add(rest)


def _ideal(asks: list[Ask]) -> Row:
    distinct = len({ask.key() for ask in asks})
    second = asks[len(asks) // 2 :]
    seen_first = {ask.key() for ask in asks[: len(asks) // 2]}
    new_later = len({ask.key() for ask in second} - seen_first)
    return Row(
        variant=IDEAL,
        requests=len(asks),
        hits=len(asks) - distinct,
        misses=distinct,
        hit_rate=1 - distinct / len(asks),
        second_half_hit_rate=1 - new_later / len(second),
        provider_calls=distinct,
        deduplicated=0,
        ratio=0.0,  # filled in against the baseline
        hit_p50_ms=None,
        hit_p99_ms=None,
        miss_p50_ms=None,
        miss_p99_ms=None,
        errors=0,
    )


def _p50(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _p99(values: list[float]) -> float | None:
    return percentile(values, 0.99) if values else None


def _measured_row(variant: str, counts: tuple[Counts, Counts, Latencies], requests: int) -> Row:
    total, second, latencies = counts
    lookups = total.hits + total.misses
    second_lookups = second.hits + second.misses
    return Row(
        variant=variant,
        requests=requests,
        hits=round(total.hits),
        misses=round(total.misses),
        hit_rate=total.hits / lookups if lookups else 0.0,
        second_half_hit_rate=second.hits / second_lookups if second_lookups else 0.0,
        provider_calls=round(total.provider_calls),
        deduplicated=round(total.deduplicated),
        ratio=0.0,
        hit_p50_ms=_p50(latencies.hits),
        hit_p99_ms=_p99(latencies.hits),
        miss_p50_ms=_p50(latencies.misses),
        miss_p99_ms=_p99(latencies.misses),
        errors=latencies.errors,
    )


async def run(args: argparse.Namespace, asks: list[Ask]) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="xyn-bench-cache-") as tmp:
        databases = Databases(Path(tmp), None)
        await databases.prepare()
        progress(f"{CACHED}: {len(asks)} requests, {args.connections} connections")
        cached = await _measure(databases, asks, args, cache=True)
        progress(f"{NO_CACHE}: the same")
        uncached = await _measure(databases, asks, args, cache=False)
    rows = [
        _ideal(asks),
        _measured_row(CACHED, cached, len(asks)),
        _measured_row(NO_CACHE, uncached, len(asks)),
    ]
    baseline = rows[-1].provider_calls or 1
    return [replace(row, ratio=row.provider_calls / baseline) for row in rows]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _table(rows: list[Row], args: argparse.Namespace, load_before: float) -> str:
    header = (
        f"{'variant':<42} {'requests':>8} {'hits':>6} {'misses':>6} {'hit rate':>8} "
        f"{'2nd half':>8} {'provider calls':>14} {'dedup':>5} {'ratio':>5} "
        f"{'hit p50':>7} {'hit p99':>7} {'miss p50':>8} {'miss p99':>8} {'errors':>6}"
    )
    distinct = rows[0].misses
    lines = [
        f"AI response cache on a repeated workload: {args.requests} requests, {args.tenants} "
        f"tenants x {args.subjects} subjects x {len(TEMPLATES)} templates (Zipf s={args.zipf}), "
        f"{args.unique:.0%} asked once, seed {args.seed} ({distinct} distinct keys)",
        f"all-in-one in process, offline provider, SQLite; {args.connections} connections",
        f"machine: nproc={os.cpu_count()}, Python {sys.version.split()[0]}, load avg (1 min) "
        f"{load_before:.2f} before / {os.getloadavg()[0]:.2f} after",
        'hit rate: xynergy_cache_requests_total{namespace="ai"} hits / (hits + misses) from '
        "the app's /metrics; ratio: provider calls / the no-cache row's; hit/miss p50/p99: ms "
        "per answer from the cache / from the model (closed loop, in process)",
        "",
        header,
        "-" * len(header),
    ]
    for row in rows:
        second = row.second_half_hit_rate
        lines.append(
            f"{row.variant:<42} {row.requests:>8} {row.hits:>6} {row.misses:>6} "
            f"{row.hit_rate:>8.1%} {'-' if second is None else f'{second:.1%}':>8} "
            f"{row.provider_calls:>14} {row.deduplicated:>5} {row.ratio:>5.2f} "
            f"{_ms(row.hit_p50_ms):>7} {_ms(row.hit_p99_ms):>7} {_ms(row.miss_p50_ms):>8} "
            f"{_ms(row.miss_p99_ms):>8} {row.errors:>6}"
        )
    lines.append("-" * len(header))
    cached = next(row for row in rows if row.variant == CACHED)
    verdict = "met" if cached.hit_rate > GOAL_HIT_RATE else "NOT met"
    lines.append(
        f"goal: hit rate > {GOAL_HIT_RATE:.0%} on a repeated workload -> {cached.hit_rate:.1%} "
        f"({verdict}; informational, never an assertion); ideal {rows[0].hit_rate:.1%}"
    )
    if any(row.errors for row in rows):
        lines.append("warning: some requests failed (errors column); those rows are suspect")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Parse flags, run, print the table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--subjects", type=int, default=10, help="per tenant (its own)")
    parser.add_argument("--zipf", type=float, default=1.0, help="popularity exponent")
    parser.add_argument("--unique", type=float, default=0.1, help="share asked only once")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if min(args.requests, args.tenants, args.subjects, args.connections) < 1 or args.zipf <= 0:
        parser.error("--requests, --tenants, --subjects, --connections >= 1; --zipf > 0")
    if not 0 <= args.unique <= 1:
        parser.error("--unique is a share, 0 to 1")
    for name in [name for name in os.environ if name.startswith("XYNERGY_")]:
        del os.environ[name]
    quiet_logs()
    load_before = os.getloadavg()[0]
    asks = workload(
        requests=args.requests,
        tenants=args.tenants,
        subjects=args.subjects,
        zipf=args.zipf,
        unique=args.unique,
        seed=args.seed,
    )
    rows = asyncio.run(run(args, asks))
    if args.json:
        print(json.dumps([asdict(row) for row in rows], indent=2))
    else:
        print(_table(rows, args, load_before))


if __name__ == "__main__":
    main()
