"""Driving load: ``wrk`` when it is on PATH, else the aiohttp fallback (loadgen.py)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LoadGenerator", "LoadResult", "parse_wrk", "pick_generator"]

_LOADGEN = Path(__file__).resolve().parent / "loadgen.py"
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_LATENCY = r"([\d.]+)(us|ms|s|m)\b"


@dataclass(frozen=True, slots=True)
class LoadResult:
    """One load run: throughput, latency percentiles, and failed requests."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int

    def __str__(self) -> str:
        return (
            f"{self.requests_per_second:,.0f} req/s, p50 {self.p50_ms:.2f} ms, "
            f"p99 {self.p99_ms:.2f} ms, {self.errors} errors"
        )


def _latency_ms(output: str, label: str) -> float:
    match = re.search(rf"^\s*{re.escape(label)}\s+{_LATENCY}", output, re.MULTILINE)
    if match is None:
        raise ValueError(f"no {label!r} latency in wrk output:\n{output}")
    return float(match.group(1)) * _UNIT_MS[match.group(2)]


def parse_wrk(output: str) -> LoadResult:
    """Read req/s, p50, p99 and error counts from ``wrk --latency`` output."""
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    if rate is None:
        raise ValueError(f"no Requests/sec in wrk output:\n{output}")
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if socket_errors:
        errors += sum(int(count) for count in socket_errors.groups())
    return LoadResult(
        requests_per_second=float(rate.group(1)),
        p50_ms=_latency_ms(output, "50%"),
        p99_ms=_latency_ms(output, "99%"),
        errors=errors,
    )


@dataclass(frozen=True, slots=True)
class LoadGenerator:
    """How load is driven; ``wrk`` is None for the Python fallback."""

    wrk: str | None
    connections: int

    @property
    def description(self) -> str:
        if self.wrk:
            return f"wrk ({self.wrk}), 1 thread, {self.connections} connections"
        return f"python aiohttp fallback (bench/loadgen.py), {self.connections} connections"

    def run(self, url: str, headers: dict[str, str], duration: int) -> LoadResult:
        """Load ``url`` for ``duration`` seconds (a timeout guards a stuck generator)."""
        lines = [f"{name}: {value}" for name, value in headers.items()]
        if self.wrk:
            command = [self.wrk, "-t1", f"-c{self.connections}", f"-d{duration}s", "--latency"]
            command += [arg for line in lines for arg in ("-H", line)]
        else:
            command = [sys.executable, str(_LOADGEN), "-c", str(self.connections)]
            command += ["-d", str(duration)]
            command += [arg for line in lines for arg in ("--header", line)]
        done = subprocess.run(
            [*command, url], capture_output=True, text=True, check=False, timeout=duration + 30
        )
        if done.returncode != 0:
            raise RuntimeError(f"load generator failed ({done.returncode}): {done.stderr.strip()}")
        if self.wrk:
            return parse_wrk(done.stdout)
        data = json.loads(done.stdout)
        return LoadResult(
            requests_per_second=data["requests_per_second"],
            p50_ms=data["p50_ms"],
            p99_ms=data["p99_ms"],
            errors=int(data["errors"]),
        )


def pick_generator(choice: str, connections: int) -> LoadGenerator:
    """``auto``: wrk if on PATH, else Python; ``wrk`` insists; ``python`` forces the fallback."""
    wrk = shutil.which("wrk") if choice in ("auto", "wrk") else None
    if choice == "wrk" and wrk is None:
        raise SystemExit("--generator wrk: wrk is not on PATH")
    return LoadGenerator(wrk=wrk, connections=connections)
