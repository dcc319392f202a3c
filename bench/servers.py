"""One uvicorn subprocess per measurement, started and stopped by its PID."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["UVICORN_FLAGS", "serve", "status"]

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


@contextmanager
def serve(
    factory: str, env: dict[str, str], log: Path, headers: dict[str, str], path: str = "/ping"
) -> Iterator[str]:
    """Run ``apps:<factory>`` until the block ends; yields the URL of ``path`` (which
    may carry a query) once it answers 200 with ``headers``. Server output (the
    access log) goes to ``log``."""
    port = _free_port()
    command = [
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
    url = f"http://{HOST}:{port}{path}"
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            _wait_ready(process, url, headers, log)
            yield url
        finally:
            _stop(process)
