"""Soak: mixed traffic through nginx; every replica's RSS, fds and tasks stay flat; no 5xx.

``traffic.MixedTraffic`` sends reads, definition writes, AI calls (the offline
model, most prompts asked before: cache hits, about a third new: misses), public
intake posts (from many loopback source addresses), workflow starts and a
WebSocket following a run, for ``XYNERGY_SOAK_SECONDS`` (120 by default; 1800
for the full half hour). Every ``SAMPLE_SECONDS`` each replica's resident memory
and open file descriptors are read from /proc and its event loop's task count
from ``xynergy_asyncio_tasks`` on its /metrics.

Flat, per replica, with the first third of the run as the warm-up reference:
the last third's highest RSS is at most 1.15 x the first third's highest plus
``RSS_SLACK``; the last third's median fd and task counts are at most the first
third's highest plus a small slack (a leak of one per request would pass these
by thousands). The series are written to ``SOAK_DIR`` (CSV and a PNG plot).
"""

from __future__ import annotations

import asyncio
import csv
import os
import statistics
import threading
import time
from collections.abc import Sequence
from http import HTTPStatus
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster.support import issue_key
from tests.cluster.traffic import MixedTraffic, figures, metric_sum
from tests.helpers import auth
from tests.system_runtime.durability_support import RUN_SCOPES, chain_definition

pytestmark = pytest.mark.cluster

SOAK_SECONDS = float(os.environ.get("XYNERGY_SOAK_SECONDS", "120"))
SAMPLE_SECONDS = 3.0 if SOAK_SECONDS <= 600 else 10.0
SOAK_DIR = Path(os.environ.get("XYNERGY_SOAK_DIR", "/tmp/xynergy-soak"))  # noqa: S108
RSS_GROWTH = 1.15
RSS_SLACK = 16 * 2**20
FD_SLACK = 8
TASK_SLACK = 20
DEFINITION = "cluster-soak"
SITE = "https://www.example.com"  # the intake form's page
SOAK_SCOPES = (
    *RUN_SCOPES,
    "ai:generate",
    "content:write",
    "intake:admin",
    "intake:read",
    "metrics:read",
)
Sample = tuple[float, str, int, int, float]  # seconds, replica, rss, fds, tasks


def _sample(replicas: Sequence[Any], secrets: Sequence[str], started: float) -> list[Sample]:
    rows: list[Sample] = []
    for replica, secret in zip(replicas, secrets, strict=True):
        seen = figures(replica.pid)
        page = httpx.get(replica.base_url + "/metrics", headers=auth(secret), timeout=10)
        tasks = metric_sum(page.text, "xynergy_asyncio_tasks") if page.status_code == 200 else None
        rows.append(
            (time.monotonic() - started, replica.name, seen.rss_bytes, seen.fds, tasks or -1.0)
        )
    return rows


def _ai_cache(replicas: Sequence[Any], secret: str, result: str) -> float:
    total = 0.0
    for replica in replicas:
        page = httpx.get(replica.base_url + "/metrics", headers=auth(secret), timeout=10)
        assert page.status_code == HTTPStatus.OK, page.text
        counted = metric_sum(
            page.text, "xynergy_cache_requests_total", namespace="ai", result=result
        )
        total += counted or 0.0
    return total


def _thirds(values: list[float]) -> tuple[list[float], list[float]]:
    third = max(1, len(values) // 3)
    return values[:third], values[-third:]


def _flatness(samples: list[Sample], name: str) -> dict[str, Any]:
    mine = [row for row in samples if row[1] == name]
    rss_first, rss_last = _thirds([float(row[2]) for row in mine])
    fds_first, fds_last = _thirds([float(row[3]) for row in mine])
    tasks_first, tasks_last = _thirds([row[4] for row in mine])
    return {
        "rss_first_max_mib": max(rss_first) / 2**20,
        "rss_last_max_mib": max(rss_last) / 2**20,
        "rss_ok": max(rss_last) <= max(rss_first) * RSS_GROWTH + RSS_SLACK,
        "fds_first_max": max(fds_first),
        "fds_last_median": statistics.median(fds_last),
        "fds_ok": statistics.median(fds_last) <= max(fds_first) + FD_SLACK,
        "tasks_first_max": max(tasks_first),
        "tasks_last_median": statistics.median(tasks_last),
        "tasks_ok": statistics.median(tasks_last) <= max(tasks_first) + TASK_SLACK,
    }


def _write_series(samples: list[Sample]) -> tuple[Path, Path]:
    SOAK_DIR.mkdir(parents=True, exist_ok=True)
    table = SOAK_DIR / "soak.csv"
    with table.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["seconds", "replica", "rss_bytes", "open_fds", "asyncio_tasks"])
        writer.writerows(samples)
    import matplotlib  # noqa: PLC0415 - a dev dependency, only this test draws

    matplotlib.use("Agg")
    from matplotlib import pyplot  # noqa: PLC0415

    figure, axes = pyplot.subplots(3, 1, figsize=(10, 9), sharex=True)
    names = sorted({row[1] for row in samples})
    panels = (
        (2, "RSS (MiB)", 1 / 2**20),
        (3, "open file descriptors", 1.0),
        (4, "asyncio tasks", 1.0),
    )
    for axis, (column, label, scale) in zip(axes, panels, strict=True):
        for name in names:
            rows = [row for row in samples if row[1] == name]
            axis.plot([row[0] for row in rows], [row[column] * scale for row in rows], label=name)
        axis.set_ylabel(label)
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
    axes[0].legend(loc="lower right")
    axes[0].set_title(f"xynergy soak: {SOAK_SECONDS:.0f} s of mixed traffic through nginx")
    axes[-1].set_xlabel("seconds")
    figure.tight_layout()
    plot = SOAK_DIR / "soak.png"
    figure.savefig(plot, dpi=90)
    pyplot.close(figure)
    return table, plot


def _create_form(cluster: Any) -> str:
    _id, secret = issue_key(cluster, ("intake:admin", "intake:read"), name="soak forms")
    created = httpx.post(
        cluster.proxy_url + "/intelligence-gateway/api/forms",
        json={"kind": "contact", "name": "Soak contact", "allowed_origins": [SITE]},
        headers=auth(secret),
        timeout=30,
    )
    assert created.status_code == HTTPStatus.CREATED, created.text
    return str(created.json()["public_id"])


def test_mixed_traffic_keeps_every_replica_flat_without_5xx(cluster: Any) -> None:
    _key_id, secret = issue_key(cluster, SOAK_SCOPES, name="soak test")
    stored = httpx.post(
        cluster.proxy_url + "/system-runtime/api/workflow-definitions",
        json=chain_definition(DEFINITION, ["soak_a", "soak_b"], {}),
        headers=auth(secret),
        timeout=30,
    )
    assert stored.status_code == HTTPStatus.CREATED, stored.text
    traffic = MixedTraffic(
        proxy_url=cluster.proxy_url,
        secret=secret,
        definition=DEFINITION,
        form_public_id=_create_form(cluster),
        site=SITE,
    )

    # The metrics class allows 60 scrapes a minute per key: one key per replica.
    scrapers = [
        issue_key(cluster, ("metrics:read",), name=f"soak scraper {n}")[1]
        for n in range(len(cluster.replicas))
    ]
    ai_cache = {result: _ai_cache(cluster.replicas, secret, result) for result in ("hit", "miss")}
    samples: list[Sample] = []
    done = threading.Event()
    started = time.monotonic()

    def sample_until_done() -> None:
        while not done.wait(SAMPLE_SECONDS):
            samples.extend(_sample(cluster.replicas, scrapers, started))

    sampler = threading.Thread(target=sample_until_done, name="soak-sampler", daemon=True)
    samples.extend(_sample(cluster.replicas, scrapers, started))
    sampler.start()
    asyncio.run(traffic.run(SOAK_SECONDS))
    done.set()
    sampler.join(timeout=30)
    elapsed = time.monotonic() - started

    table, plot = _write_series(samples)
    verdicts = {replica.name: _flatness(samples, replica.name) for replica in cluster.replicas}
    answers = sum(traffic.statuses.values())
    server_errors = {
        key: n for key, n in traffic.statuses.items() if key[0] != "websocket" and key[1] >= 500
    }
    hits, misses = (
        _ai_cache(cluster.replicas, secret, result) - ai_cache[result] for result in ("hit", "miss")
    )
    print(  # noqa: T201
        f"\nsoak {SOAK_SECONDS:.0f} s ({elapsed:.0f} s with the wind-down), {answers} answers "
        f"({answers / elapsed:.0f}/s): {traffic.describe()}\n"
        f"  AI response cache: {hits:.0f} hits, {misses:.0f} misses "
        f"({hits / max(1.0, hits + misses):.0%} hits)\n"
        f"  {len(samples)} samples every {SAMPLE_SECONDS:.0f} s; series {table}; plot {plot}"
    )
    for name, verdict in verdicts.items():
        shown = ", ".join(
            f"{key} {value:.1f}" if isinstance(value, float) else f"{key} {value}"
            for key, value in verdict.items()
        )
        print(f"  {name}: {shown}")  # noqa: T201

    assert server_errors == {}, traffic.describe()
    assert not traffic.errors, traffic.describe()
    kinds = {kind for kind, _status in traffic.statuses}
    assert kinds == {"read", "write", "ai", "workflow", "websocket", "intake"}, kinds
    # Every answer the one its request expects (2xx; a WebSocket closed with 1000).
    assert all(
        status == 1000 if kind == "websocket" else status < 300 for kind, status in traffic.statuses
    ), traffic.describe()
    assert hits > 0
    assert misses > 0
    assert all(row[4] >= 0 for row in samples), "xynergy_asyncio_tasks missing on /metrics"
    for name, verdict in verdicts.items():
        assert verdict["rss_ok"], (name, verdict)
        assert verdict["fds_ok"], (name, verdict)
        assert verdict["tasks_ok"], (name, verdict)
