"""Fault: SIGTERM to a replica under load; nginx drains it and nobody sees an error.

wrk loads an authenticated read through nginx (16 connections) while two SSE
streams and two WebSockets follow runs on the replica about to stop; a step of
each run is held at the ledger far longer than a stop may take. SIGTERM makes
uvicorn close its listener and finish what it is serving: nginx's next
connection attempt is refused and the request goes to another replica
(``proxy_next_upstream error timeout``), the requests in flight there are
answered, the WebSockets are closed with 1012 (service restart) and the SSE
streams end with a final ``dropped`` event, reason ``shutting_down``
(``platform.draining``), so the replica exits within ``EXIT_BOUND_SECONDS``
instead of when the runs end (without it, uvicorn waits for the streams).
Counted: wrk's answers per status and its socket errors (zero of both allowed
beyond 2xx: every request here is short, none is in flight past a drain
timeout), each stream's last event, and, once the replica is started again, the
file descriptors and PostgreSQL/Redis connections of the two that kept serving,
back at their figures from before the load (pools keep at most their size).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from http import HTTPStatus
from typing import Any

import httpx
import pytest

from tests.cluster.support import (
    WRK_TIMEOUT_SECONDS,
    access_log_lines,
    issue_key,
    parse_wrk,
    replica_names,
    run_wrk,
    tool,
    wrk_command,
    wrk_env,
)
from tests.cluster.traffic import Figures, figures, stream_events, wait_until
from tests.helpers import auth
from tests.system_runtime.durability_support import RUN_SCOPES, chain_definition

pytestmark = pytest.mark.cluster

DEFINITION = "cluster-drain"
STEPS = ("drain_first", "drain_held", "drain_last")
HOLD_SECONDS = 30.0
LOAD_SECONDS = 9.0
TERM_AFTER_SECONDS = 2.0
CONNECTIONS = 16
# The streams end at once; the runtime then gives its runs shutdown_grace_seconds (5).
EXIT_BOUND_SECONDS = 15.0
EXIT_TIMEOUT_SECONDS = HOLD_SECONDS + 30.0
SETTLE_TIMEOUT_SECONDS = 30.0
# Idle pool connections may stay open up to the pool size: the replicas' own figure.
FD_SLACK = 8
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def _socket_errors(output: str) -> dict[str, int]:
    found = _SOCKET_ERRORS.search(output)
    if found is None:
        return {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    return dict(zip(("connect", "read", "write", "timeout"), map(int, found.groups()), strict=True))


def _settled(now: Figures, before: Figures, redis_pool_max: int) -> bool:
    # Pools keep what they opened, up to their size: PostgreSQL's were filled by the
    # warm-up; Redis's may grow with the extra load each survivor took on, to its cap.
    return (
        now.fds <= before.fds + FD_SLACK
        and now.postgres <= before.postgres + 1
        and now.redis <= redis_pool_max
    )


def test_sigterm_under_load_is_drained_without_client_errors(cluster: Any) -> None:
    _key_id, secret = issue_key(cluster, RUN_SCOPES, name="drain test")
    headers = auth(secret)
    stored = httpx.post(
        cluster.proxy_url + "/system-runtime/api/workflow-definitions",
        json=chain_definition(DEFINITION, STEPS, {"drain_held": HOLD_SECONDS}),
        headers=headers,
        timeout=30,
    )
    assert stored.status_code == HTTPStatus.CREATED, stored.text
    read_url = cluster.proxy_url + "/system-runtime/api/workflow-definitions?limit=5"
    target = cluster.replicas[1]
    others = [replica for replica in cluster.replicas if replica.name != target.name]
    redis_pool_max = int(cluster.env["XYNERGY_REDIS_MAX_CONNECTIONS"])

    # Warm every replica's pools first, so the baseline is a serving replica's figure.
    warm = run_wrk(read_url, headers, seconds=2, connections=CONNECTIONS)
    assert set(warm.statuses) == {HTTPStatus.OK}, warm.describe()
    time.sleep(1.0)
    baseline = {replica.name: figures(replica.pid) for replica in others}

    # Runs started on the target itself, followed there over SSE and WebSocket.
    run_ids = []
    for _ in range(4):
        started = httpx.post(
            target.base_url + "/system-runtime/api/workflows/start",
            json={"definition": DEFINITION},
            headers=headers,
            timeout=30,
        )
        assert started.status_code == HTTPStatus.ACCEPTED, started.text
        run_ids.append(str(started.json()["id"]))
    seen = [threading.Event() for _ in run_ids]

    async def follow() -> list[list[str] | BaseException]:
        return await asyncio.gather(
            *(
                stream_events(
                    target.base_url, run_id, secret, websocket=index % 2 == 1, seen=seen[index]
                )
                for index, run_id in enumerate(run_ids)
            ),
            return_exceptions=True,
        )

    streams: list[Any] = []
    follower = threading.Thread(target=lambda: streams.extend(asyncio.run(follow())))
    follower.start()
    assert all(event.wait(30) for event in seen), "a stream did not open"

    batch = uuid.uuid4().hex[:8]
    load = subprocess.Popen(  # noqa: S603 - Debian's wrk, arguments from the test
        wrk_command(read_url, seconds=LOAD_SECONDS, connections=CONNECTIONS),
        env=wrk_env(headers | {"X-Request-ID": f"drain-{batch}"}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(TERM_AFTER_SECONDS)
    term_at = time.monotonic()
    os.kill(target.pid, signal.SIGTERM)
    exit_code = target.process.wait(timeout=EXIT_TIMEOUT_SECONDS)
    exited_after = time.monotonic() - term_at
    output, errors = load.communicate(timeout=WRK_TIMEOUT_SECONDS)
    assert load.returncode == 0, errors
    result = parse_wrk(output, LOAD_SECONDS)
    socket_errors = _socket_errors(output)
    follower.join(timeout=60)
    assert not follower.is_alive(), "a stream outlived its run"

    restarted = tool("cluster").restart_replica(cluster, target)
    names = replica_names(cluster)
    served_by = Counter(
        names.get(line["upstream"].split(", ")[-1], line["upstream"])
        for line in access_log_lines(cluster)
        if line["request_id"] == f"drain-{batch}"
    )
    passed_on = sum(
        1
        for line in access_log_lines(cluster)
        if line["request_id"] == f"drain-{batch}" and ", " in line["upstream"]
    )
    settled_after = wait_until(
        lambda: all(
            _settled(figures(replica.pid), baseline[replica.name], redis_pool_max)
            for replica in others
        ),
        SETTLE_TIMEOUT_SECONDS,
        interval=0.5,
    )
    after = {replica.name: figures(replica.pid) for replica in others}

    print(  # noqa: T201
        f"\nSIGTERM to {target.name} {TERM_AFTER_SECONDS:.0f} s into {LOAD_SECONDS:.0f} s of wrk "
        f"({CONNECTIONS} connections): exited {exit_code} after {exited_after:.1f} s\n"
        f"  wrk: {result.describe()}; socket errors {socket_errors}\n"
        f"  served by {dict(sorted(served_by.items()))}; passed on to another replica "
        f"by nginx: {passed_on}\n"
        f"  streams (last events): {[s[-2:] if isinstance(s, list) else repr(s) for s in streams]}\n"
        f"  others back to baseline after {settled_after} s: "
        + "; ".join(
            f"{name}: {baseline[name].describe()} -> {after[name].describe()}" for name in baseline
        )
        + f"\n  {target.name} restarted as pid {restarted.pid}"
    )
    # uvicorn re-raises the SIGTERM it handled once it has shut down cleanly.
    assert exit_code in (0, -signal.SIGTERM), target.log_text()[-3000:]
    assert "Traceback" not in target.log_text(), target.log_text()[-3000:]
    # No client saw an error: every answer a 200, no socket errors.
    assert set(result.statuses) == {HTTPStatus.OK}, result.describe()
    assert socket_errors == {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    assert result.total > 0
    # The replica did not wait for its streams' runs to end.
    assert exited_after <= EXIT_BOUND_SECONDS, exited_after
    # Each stream was ended by the server saying so (SSE: a final dropped event;
    # WebSocket: close 1012, service restart): the client reconnects elsewhere.
    for index, events in enumerate(streams):
        assert isinstance(events, list), events
        if index % 2 == 1:
            assert events[-1] == "close:1012", events
        else:
            assert events[-1] == "dropped:shutting_down", events
    assert settled_after is not None, (baseline, after)
    assert all(replica.process.poll() is None for replica in cluster.replicas)
