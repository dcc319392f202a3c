"""AI Assistant: latency added to the first token over the AI Routing Engine.

Two variants, in the same process, in the same run, on the all-in-one app (the
AI Routing Engine and the AI Assistant mounted, full platform stack, lifespan),
with the AI Routing Engine's offline provider (deterministic, no network, no
account), so what is measured is the platform's own work:

* ``AI Routing Engine`` (the baseline): ``POST /ai-routing-engine/v1/chat/completions``
  with ``stream: true`` and one user message;
* ``AI Assistant``: ``POST /ai-assistant/api/conversation/message`` with
  ``stream: true`` into the connection's own conversation (each connection is one
  user's conversation, as in the chat page): the assistant stores the user
  message, builds the bounded context, streams from the AI Routing Engine through
  the ``ServiceClient`` and relays the deltas;
* ``Engine, same context`` (informative): ``/v1/chat/completions`` again, with a
  prompt of about the size the assistant sends: the system prompt and the
  connection's latest turns (its prompts and the replies it streamed) that fit
  the assistant's default context budget. The assistant's p50 minus this row's
  is what the assistant itself adds; this row's minus the baseline's is what a
  longer prompt costs the engine.

First token: from just before the request to the first SSE event whose delta has
non-empty ``content`` (the assistant's leading role-only chunk does not count).
``done ms`` is the time to the end of the stream (the assistant stores the reply
before its last event). Requests go through the platform's in-process streaming
call (``xynergy.platform.service_streams.asgi_stream``), not httpx's
``ASGITransport``, which buffers a body to its end and would report the last
token as the first. Every prompt differs (a counter), so no answer comes from a
cache.

Per concurrency level (1 and 64 connections, closed loop), rounds alternate the
order of the variants; percentiles pool the rounds' samples. ``added ms`` is the
row's p50 minus the baseline's p50 at the same concurrency, ``ratio`` the quotient.
The goal line (<= 5 ms added at p50, 1 connection) is informational, never asserted.

    .venv/bin/python bench/assistant_latency.py [--requests 100] [--per-connection 4]
        [--rounds 2] [--warmup 20] [--json]

``XYNERGY_*`` variables of the caller's environment are ignored (removed from this
process), so a developer's settings cannot change what is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

# isort: split
# bench's own modules: bench/ is sys.path[0] when run as a script.
from runtime_support import Databases, bench_settings, percentile, progress, quiet_logs, serving
from starlette.applications import Starlette

from xynergy.ai_assistant.app import SLUG as AI_ASSISTANT
from xynergy.ai_assistant.app import create_ai_assistant_app
from xynergy.ai_assistant.config import AssistantSettings
from xynergy.ai_assistant.context.tokens import prompt_tokens
from xynergy.ai_routing.app import SLUG as AI_ROUTING_ENGINE
from xynergy.ai_routing.app import create_ai_routing_app
from xynergy.ai_routing.config import AiSettings
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.runtime import Platform
from xynergy.platform.service_streams import asgi_stream
from xynergy.platform.tenancy import service as tenancy
from xynergy.server import build_all_in_one

BASELINE = "AI Routing Engine"
ASSISTANT = "AI Assistant"
SAME_CONTEXT = "Engine, same context"
VARIANTS = (BASELINE, SAME_CONTEXT, ASSISTANT)
MODEL = "xynergy-offline"
SCOPES = ["assistant:chat", "ai:generate"]
DIRECT_PATH = f"/{AI_ROUTING_ENGINE}/v1/chat/completions"
ASSISTANT_PATH = f"/{AI_ASSISTANT}/api/conversation/message"
BASE_URL = "http://bench"
# Far above any answer here: a stalled stream fails the run instead of hanging it.
READ_TIMEOUT_SECONDS = 60.0
GOAL_ADDED_MS = 5.0
UNLIMITED_TOKENS = "1000000000000/minute"
CONCURRENCY = (1, 64)
# Turns of a connection's history kept for the same-context variant.
HISTORY_TURNS_MAX = 1_000
# Plain words: nothing the offline provider's tool rules would pick a tool for.
PROMPT = "Hello there, please say something short about the weather, number {n}."


@dataclass(frozen=True, slots=True)
class Sample:
    first_ms: float
    done_ms: float
    text: str = ""  # the streamed reply (kept for the same-context variant)


@dataclass(frozen=True, slots=True)
class Row:
    connections: int
    variant: str
    requests: int
    p50_ms: float
    p99_ms: float
    done_p50_ms: float
    added_ms: float
    ratio: float


def _content(event: bytes) -> str:
    """The text of an SSE event's content deltas ("" for none)."""
    pieces = []
    for line in event.split(b"\n"):
        if not line.startswith(b"data: ") or line == b"data: [DONE]":
            continue
        payload = json.loads(line[len(b"data: ") :])
        for choice in payload.get("choices", ()):
            pieces.append(choice.get("delta", {}).get("content") or "")
    return "".join(pieces)


async def _timed_stream(
    app: Starlette, path: str, headers: dict[str, str], body: Any, *, keep_text: bool = False
) -> Sample:
    """One streamed request: time to the first content delta, and to the end."""
    started = time.perf_counter()
    first: float | None = None
    async with asgi_stream(
        app,
        base_url=BASE_URL,
        method="POST",
        path=path,
        headers=headers,
        body=json.dumps(body).encode(),
        read_timeout=READ_TIMEOUT_SECONDS,
    ) as opened:
        if opened.status != 200:
            raise RuntimeError(f"{path} answered {opened.status}: {await opened.read()!r}")
        buffer = event = b""
        text: list[str] = []
        async for chunk in opened.chunks:
            if first is not None and not keep_text:
                continue  # drain to the end
            buffer += chunk
            while b"\n\n" in buffer:
                event, buffer = buffer.split(b"\n\n", 1)
                piece = _content(event)
                if piece and first is None:
                    first = time.perf_counter()
                text.append(piece)
                if not keep_text and first is not None:
                    break
    done = time.perf_counter()
    if first is None:
        raise RuntimeError(f"{path} streamed no content; its last event: {event[:500]!r}")
    return Sample((first - started) * 1000, (done - started) * 1000, "".join(text))


class Bench:
    """The running app, a key, and one conversation per connection."""

    def __init__(self, app: Starlette, secret: str) -> None:
        self.app = app
        self.headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        self.conversations: dict[int, str] = {}
        # Each connection's turns as the assistant keeps them: (role, text), newest last.
        self.histories: dict[int, list[tuple[str, str]]] = {}
        self._counter = 0
        self._assistant = AssistantSettings()

    def _prompt(self) -> str:
        self._counter += 1
        return PROMPT.format(n=self._counter)

    async def direct(self, _connection: int) -> Sample:
        body = {
            "model": MODEL,
            "messages": [{"role": "user", "content": self._prompt()}],
            "stream": True,
        }
        return await _timed_stream(self.app, DIRECT_PATH, self.headers, body)

    async def assistant(self, connection: int) -> Sample:
        prompt = self._prompt()
        body = {
            "message": prompt,
            "stream": True,
            "conversation_id": self.conversations[connection],
        }
        sample = await _timed_stream(self.app, ASSISTANT_PATH, self.headers, body, keep_text=True)
        history = self.histories.setdefault(connection, [])
        history += [("user", prompt), ("assistant", sample.text)]
        del history[: -2 * HISTORY_TURNS_MAX]  # bounded: far more than a budget holds
        return sample

    async def same_context(self, connection: int) -> Sample:
        """The engine, with about the prompt the assistant would send on this connection."""
        settings = self._assistant
        turns = [*self.histories.get(connection, []), ("user", self._prompt())]
        messages = [("system", settings.system_prompt), turns[-1]]
        for turn in reversed(turns[:-1]):
            if prompt_tokens([*messages, turn]) > settings.context_budget_tokens:
                break
            messages.insert(1, turn)
        body = {
            "model": MODEL,
            "messages": [{"role": role, "content": text} for role, text in messages],
            "max_tokens": settings.reply_max_tokens,
            "stream": True,
        }
        return await _timed_stream(self.app, DIRECT_PATH, self.headers, body)

    async def open_conversations(self, count: int) -> None:
        for connection in range(count):
            if connection in self.conversations:
                continue
            response = await self._json("/api/conversations", {"title": f"bench {connection}"})
            self.conversations[connection] = response["id"]

    async def _json(self, path: str, body: Any) -> Any:
        async with asgi_stream(
            self.app,
            base_url=BASE_URL,
            method="POST",
            path=f"/{AI_ASSISTANT}{path}",
            headers=self.headers,
            body=json.dumps(body).encode(),
            read_timeout=READ_TIMEOUT_SECONDS,
        ) as opened:
            content = await opened.read(1 << 20)
            if opened.status != 201:
                raise RuntimeError(f"{path} answered {opened.status}: {content!r}")
            return json.loads(content)


async def _closed_loop(
    call: Callable[[int], Awaitable[Sample]], connections: int, per_connection: int
) -> list[Sample]:
    async def connection(index: int) -> list[Sample]:
        return [await call(index) for _ in range(per_connection)]

    results = await asyncio.gather(*(connection(i) for i in range(connections)))
    return [sample for samples in results for sample in samples]


async def _create_key(platform: Platform) -> str:
    async with unit_of_work(platform.sessionmaker) as session:
        tenant = await tenancy.create_tenant(session, name="bench-" + uuid.uuid4().hex[:8])
    async with unit_of_work(platform.sessionmaker) as session:
        issued = await tenancy.create_key(
            session, tenant_id=tenant.id, name="bench", scopes=list(SCOPES)
        )
    return issued.secret


async def run(args: argparse.Namespace) -> dict[tuple[int, str], list[Sample]]:
    samples: dict[tuple[int, str], list[Sample]] = {}
    with tempfile.TemporaryDirectory(prefix="xyn-bench-assistant-") as tmp:
        databases = Databases(Path(tmp), None)
        await databases.prepare()
        url, data_dir = await databases.fresh("SQLite")
        settings = bench_settings(url, data_dir)
        app = build_all_in_one(
            settings,
            services={
                # The token rate limit counted, never reached, as bench_settings does
                # for the request rate limits.
                AI_ROUTING_ENGINE: partial(
                    create_ai_routing_app, ai=AiSettings(tokens_per_minute=UNLIMITED_TOKENS)
                ),
                AI_ASSISTANT: create_ai_assistant_app,
            },
        )
        async with serving(app):
            bench = Bench(app, await _create_key(app.state.platform))
            await bench.open_conversations(max(CONCURRENCY))
            progress(f"warm-up: {args.warmup} requests per variant")
            await _closed_loop(bench.direct, 1, args.warmup)
            await _closed_loop(bench.assistant, 1, args.warmup)
            await _closed_loop(bench.same_context, 1, args.warmup)
            for connections in CONCURRENCY:
                per_connection = args.requests if connections == 1 else args.per_connection
                for round_number in range(args.rounds):
                    variants = [
                        (BASELINE, bench.direct),
                        (SAME_CONTEXT, bench.same_context),
                        (ASSISTANT, bench.assistant),
                    ]
                    if round_number % 2:
                        variants.reverse()
                    for variant, call in variants:
                        progress(
                            f"{connections} connection(s), round {round_number + 1}, {variant}"
                        )
                        found = await _closed_loop(call, connections, per_connection)
                        samples.setdefault((connections, variant), []).extend(found)
    return samples


def _rows(samples: dict[tuple[int, str], list[Sample]]) -> list[Row]:
    rows = []
    for connections in CONCURRENCY:
        base = statistics.median(s.first_ms for s in samples[(connections, BASELINE)])
        for variant in VARIANTS:
            found = samples[(connections, variant)]
            p50 = statistics.median(s.first_ms for s in found)
            rows.append(
                Row(
                    connections=connections,
                    variant=variant,
                    requests=len(found),
                    p50_ms=p50,
                    p99_ms=percentile([s.first_ms for s in found], 0.99),
                    done_p50_ms=statistics.median(s.done_ms for s in found),
                    added_ms=p50 - base,
                    ratio=p50 / base if base else 0.0,
                )
            )
    return rows


def _table(rows: list[Row], args: argparse.Namespace, load_before: float) -> str:
    header = (
        f"{'conns':>5}  {'variant':<20} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'done p50':>8} {'added ms':>8} {'ratio':>6}"
    )
    lines = [
        "time to first token of a streamed reply (offline provider, all-in-one in process, "
        f"SQLite); {args.rounds} rounds per level, variants alternating",
        f"machine: nproc={os.cpu_count()}, Python {sys.version.split()[0]}, load avg (1 min) "
        f"{load_before:.2f} before / {os.getloadavg()[0]:.2f} after",
        "",
        header,
        "-" * len(header),
    ]
    for row in rows:
        lines.append(
            f"{row.connections:>5}  {row.variant:<20} {row.requests:>8} {row.p50_ms:>8.2f} "
            f"{row.p99_ms:>8.2f} {row.done_p50_ms:>8.2f} {row.added_ms:>+8.2f} {row.ratio:>6.2f}"
        )
    lines.append("-" * len(header))
    by_key = {(row.connections, row.variant): row for row in rows}
    for connections in CONCURRENCY:
        own = by_key[(connections, ASSISTANT)].p50_ms - by_key[(connections, SAME_CONTEXT)].p50_ms
        longer = by_key[(connections, SAME_CONTEXT)].added_ms
        lines.append(
            f"{connections} connection(s): the assistant's own work {own:+.2f} ms p50, "
            f"the engine's longer prompt {longer:+.2f} ms p50"
        )
    for row in rows:
        if row.connections == 1 and row.variant == ASSISTANT:
            verdict = "met" if row.added_ms <= GOAL_ADDED_MS else "NOT met"
            lines.append(
                f"goal: added latency to first token <= {GOAL_ADDED_MS:.0f} ms p50 at 1 "
                f"connection -> {row.added_ms:+.2f} ms ({verdict}; informational, never an "
                "assertion)"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Parse flags, run, print the table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100, help="per round, 1 connection")
    parser.add_argument(
        "--per-connection", type=int, default=4, help="requests per connection per round, 64"
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=20, help="requests per variant first")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.requests < 10 or args.per_connection < 1 or args.rounds < 1 or args.warmup < 1:
        parser.error("--requests >= 10; --per-connection, --rounds, --warmup >= 1")
    for name in [name for name in os.environ if name.startswith("XYNERGY_")]:
        del os.environ[name]
    quiet_logs()
    load_before = os.getloadavg()[0]
    rows = _rows(asyncio.run(run(args)))
    if args.json:
        print(json.dumps([asdict(row) for row in rows], indent=2))
    else:
        print(_table(rows, args, load_before))


if __name__ == "__main__":
    main()
