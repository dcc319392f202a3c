"""What the cluster tests share: the tools' modules, keys, wrk runs, polling replicas.

The cluster itself is tools/cluster.py (``make cluster``), imported from tools/
(not a package) by ``tool``. Keys are issued through the proxy with the cluster's
bootstrap admin key, as an operator would.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from tests.helpers import auth
from tests.live_server import LiveServer

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools"
WRK_SCRIPT = Path(__file__).with_name("wrk_counts.lua")
WRK_TIMEOUT_SECONDS = 120.0
HTTP_TIMEOUT_SECONDS = 30.0
_STATUS_LINE = re.compile(r"^STATUS (\d+) (\d+)$", re.MULTILINE)
_LATENCY_LINE = re.compile(r"^LATENCY_US (\d+) (\d+) (\d+)$", re.MULTILINE)


def tool(name: str) -> ModuleType:
    """``tools/<name>.py`` as a module (tools/ is not a package; its modules import each other)."""
    if str(TOOLS) not in sys.path:
        sys.path.insert(0, str(TOOLS))
    return importlib.import_module(name)


def admin_headers(cluster: Any, secret: str | None = None) -> dict[str, str]:
    """An admin key's headers, acting for the operator tenant (the bootstrap key by default)."""
    return auth(secret or cluster.admin_key) | {"X-Xynergy-Tenant": cluster.admin_tenant_id}


def issue_key(cluster: Any, scopes: Sequence[str], name: str = "cluster test") -> tuple[str, str]:
    """A new key of the operator tenant with ``scopes``, issued through the proxy: (id, secret)."""
    response = httpx.post(
        cluster.proxy_url + "/admin/keys",
        json={"name": name, "scopes": list(scopes)},
        headers=admin_headers(cluster),
        timeout=HTTP_TIMEOUT_SECONDS,
    )
    assert response.status_code == HTTPStatus.CREATED, response.text
    created = response.json()
    return str(created["key"]["id"]), str(created["secret"])


def live_server(replica: Any) -> LiveServer:
    """``replica`` as a ``tests.live_server.LiveServer`` (for the durability helpers)."""
    return LiveServer(
        process=replica.process,
        host="127.0.0.1",
        port=replica.port,
        data_dir=replica.data_dir,
        env=replica.env,
    )


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run measured."""

    statuses: Counter[int]
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float

    @property
    def total(self) -> int:
        """Answers counted."""
        return sum(self.statuses.values())

    def describe(self) -> str:
        """One line of figures."""
        codes = ", ".join(f"{code}: {count}" for code, count in sorted(self.statuses.items()))
        rate = self.total / self.seconds if self.seconds else 0.0
        return (
            f"{self.total} answers in {self.seconds:.1f} s ({rate:.0f}/s) [{codes}]; "
            f"latency p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms, max {self.max_ms:.1f} ms"
        )


def wrk_command(url: str, *, seconds: float, connections: int, threads: int = 2) -> list[str]:
    """``wrk`` against ``url`` with the counting script."""
    binary = shutil.which("wrk") or "/usr/bin/wrk"
    return [
        binary,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_SCRIPT),
        url,
    ]


def wrk_env(headers: Mapping[str, str], *, method: str = "GET", body: Any = None) -> dict[str, str]:
    """The environment the counting script reads its request from."""
    env = dict(os.environ)
    env["WRK_HEADERS"] = "\n".join(f"{name}: {value}" for name, value in headers.items())
    env["WRK_METHOD"] = method
    env["WRK_BODY"] = json.dumps(body) if body is not None else ""
    return env


def parse_wrk(output: str, seconds: float) -> WrkResult:
    """The counting script's lines in ``output``."""
    statuses: Counter[int] = Counter(
        {int(code): int(count) for code, count in _STATUS_LINE.findall(output)}
    )
    latency = _LATENCY_LINE.search(output)
    assert latency is not None, output
    p50, p99, longest = (int(value) / 1000 for value in latency.groups())
    return WrkResult(statuses, seconds, p50, p99, longest)


def run_wrk(
    url: str,
    headers: Mapping[str, str],
    *,
    seconds: float,
    connections: int,
    method: str = "GET",
    body: Any = None,
) -> WrkResult:
    """Load ``url`` with wrk for ``seconds``; what it counted."""
    started = time.monotonic()
    result = subprocess.run(  # noqa: S603 - Debian's wrk, arguments from the test
        wrk_command(url, seconds=seconds, connections=connections),
        env=wrk_env(headers, method=method, body=body),
        capture_output=True,
        text=True,
        timeout=WRK_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return parse_wrk(result.stdout, time.monotonic() - started)


@contextmanager
def background_wrk(
    url: str, headers: Mapping[str, str], *, seconds: float, connections: int = 16
) -> Iterator[subprocess.Popen[str]]:
    """wrk loading ``url`` while the block runs; stopped by its PID when the block exits."""
    process = subprocess.Popen(  # noqa: S603 - Debian's wrk, arguments from the test
        wrk_command(url, seconds=seconds, connections=connections),
        env=wrk_env(headers),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.communicate(timeout=WRK_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def time_until_each(
    base_urls: Sequence[str], check: Callable[[httpx.Client, str], bool], *, timeout: float
) -> dict[str, float | None]:
    """Seconds until ``check(client, base_url)`` first holds, per base URL, polled at once.

    None for a URL where it did not hold within ``timeout``.
    """
    started = time.monotonic()
    go = threading.Event()

    def poll(base_url: str) -> float | None:
        with httpx.Client(timeout=5.0) as client:
            go.wait()
            deadline = started + timeout
            while time.monotonic() < deadline:
                if check(client, base_url):
                    return time.monotonic() - started
                time.sleep(0.01)
        return None

    with ThreadPoolExecutor(max_workers=len(base_urls)) as pool:
        futures = {url: pool.submit(poll, url) for url in base_urls}
        go.set()
        return {url: future.result() for url, future in futures.items()}


def access_log_lines(
    cluster: Any, request_id: str | None = None, *, wait_seconds: float = 5.0
) -> list[dict[str, Any]]:
    """nginx's access log lines (JSON), those of ``request_id`` only when given.

    nginx writes a line when it finalises the request, which can be just after the
    client has its answer (a refused body is still being read and discarded), so
    lines of ``request_id`` are waited for up to ``wait_seconds``.
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        lines = []
        for raw in Path(cluster.proxy_access_log).read_text().splitlines():
            entry = json.loads(raw)
            if request_id is None or entry["request_id"] == request_id:
                lines.append(entry)
        if lines or request_id is None or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def replica_names(cluster: Any) -> dict[str, str]:
    """nginx's upstream address -> replica name."""
    return {f"127.0.0.1:{replica.port}": replica.name for replica in cluster.replicas}
