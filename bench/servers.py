"""One server subprocess per measurement, started and stopped by its PID.

Two servers: plain ``uvicorn`` with ``UVICORN_FLAGS`` (the bare baselines), and
``xynergy``, the server ``xynergy serve`` runs (``xynergy.platform.serving``:
uvicorn with the limited httptools protocol and the ``server_*`` settings), started
through ``apps.py``'s ``__main__`` so the platform rows measure what ships.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PLAIN", "SERVERS", "UVICORN_FLAGS", "XYNERGY", "Served", "serve", "status"]

BENCH_DIR = Path(__file__).resolve().parent
HOST = "127.0.0.1"
# Identical for every variant; the same loop, parser and no uvicorn access log
# as `xynergy serve` (which also turns proxy headers off).
UVICORN_FLAGS = (
    "--loop",
    "uvloop",
    "--http",
    "httptools",
    "--no-access-log",
    "--no-proxy-headers",
    "--log-level",
    "warning",
    "--workers",
    "1",
)
PLAIN = "uvicorn"
XYNERGY = "xynergy"
SERVERS = {
    PLAIN: "uvicorn " + " ".join(UVICORN_FLAGS),
    XYNERGY: "xynergy serve's server (platform/serving.py: uvicorn, uvloop, "
    "httptools with head/connection limits, no access log, no proxy headers)",
}
_READY_TIMEOUT_SECONDS = 30.0
_STOP_TIMEOUT_SECONDS = 10.0


def _free_port() -> int:
    # The port is free when we close the socket; another process could take it
    # before uvicorn binds, which readiness would then report as a failed start.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def status(url: str, headers: dict[str, str]) -> int | None:
    """The HTTP status of ``GET url``, or None when nothing answers."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=2)
    try:
        target = f"{parts.path}?{parts.query}" if parts.query else parts.path
        connection.request("GET", target, headers=headers)
        return connection.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def _wait_ready(
    process: subprocess.Popen[bytes], url: str, headers: dict[str, str], log: Path
) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{_tail(log)}")
        answer = status(url, headers)
        if answer == 200:
            return
        if answer is not None:
            raise RuntimeError(f"GET {url} answered {answer}, not 200:\n{_tail(log)}")
        time.sleep(0.1)
    raise RuntimeError(f"server not ready after {_READY_TIMEOUT_SECONDS}s:\n{_tail(log)}")


def _tail(log: Path, lines: int = 20) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()  # SIGTERM to this PID only: uvicorn shuts down gracefully
    try:
        process.wait(timeout=_STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass(frozen=True, slots=True)
class Served:
    """A running server: the URL to load and its process id."""

    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """User plus system CPU time the server process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # utime and stime are fields 14 and 15 of stat(5); fields[0] here is field 3.
        ticks = int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")


def _command(server: str, factory: str, port: int) -> list[str]:
    if server == XYNERGY:
        apps = str(BENCH_DIR / "apps.py")
        return [sys.executable, apps, factory, HOST, str(port)]
    return [
        sys.executable,
        "-m",
        "uvicorn",
        f"apps:{factory}",
        "--factory",
        "--app-dir",
        str(BENCH_DIR),
        "--host",
        HOST,
        "--port",
        str(port),
        *UVICORN_FLAGS,
    ]


@contextmanager
def serve(
    factory: str,
    env: dict[str, str],
    log: Path,
    headers: dict[str, str],
    path: str = "/ping",
    server: str = PLAIN,
) -> Iterator[Served]:
    """Run ``apps:<factory>`` on ``server`` (``PLAIN`` or ``XYNERGY``) until the block
    ends; yields the URL of ``path`` (which may carry a query) and the server's PID
    once it answers 200 with ``headers``. Server output (the access log) goes to
    ``log``."""
    port = _free_port()
    command = _command(server, factory, port)
    url = f"http://{HOST}:{port}{path}"
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            _wait_ready(process, url, headers, log)
            yield Served(url, process.pid)
        finally:
            _stop(process)
