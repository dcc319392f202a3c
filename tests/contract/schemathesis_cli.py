"""One schemathesis run against one mounted service, through its command line.

The command line, not schemathesis' Python engine: its options and its JSON run
report are the documented interface, stable across 4.x, and a failure prints the
same report (with a curl line per failing case) a developer gets by running the
printed command by hand. The run happens in a child process in its own working
directory, with a ``schemathesis.toml`` written there, so no configuration of the
developer's leaks in and nothing is written into the checkout.

Budget and randomness come from the environment:

- ``XYNERGY_SCHEMATHESIS_EXAMPLES``: generated test cases per operation (default
  ``DEFAULT_MAX_EXAMPLES``, sized so the five services take about three minutes
  on two busy cores); raise it for a longer run.
- ``XYNERGY_SCHEMATHESIS_SEED``: unset for derandomized generation (the same cases
  on every run, for a stable CI); ``random`` for a fresh seed, or a number to
  replay one. The seed used is printed with the counts.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CHECKS",
    "DEFAULT_MAX_EXAMPLES",
    "EXAMPLES_VARIABLE",
    "SEED_VARIABLE",
    "ContractRun",
    "RunOptions",
    "build_command",
    "links_covered",
    "options_from_environment",
    "run_schemathesis",
    "write_config",
]

EXAMPLES_VARIABLE = "XYNERGY_SCHEMATHESIS_EXAMPLES"
SEED_VARIABLE = "XYNERGY_SCHEMATHESIS_SEED"
DEFAULT_MAX_EXAMPLES = 10
# A fuzzed request that takes this long is a hung server, not a slow one.
REQUEST_TIMEOUT_SECONDS = 30
# Bound for one service's whole run, far above its normal duration.
RUN_TIMEOUT_SECONDS = 1800
_SEED_BITS = 32
# Stateful scenarios (create, then read, change or delete what was created) are
# cheap next to the coverage phase, and each one more covers more inferred links:
# the stateful phase gets this many times the per-operation budget.
STATEFUL_EXAMPLES_FACTOR = 6

_LINKS_LINE = re.compile(r"API Links:\s+(?P<covered>\d+) covered / (?P<selected>\d+) selected")

CHECKS: tuple[str, ...] = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How much to generate, and from which seed (``None``: derandomized)."""

    max_examples: int
    seed: int | None

    def describe(self) -> str:
        """``max 10 examples per operation, derandomized`` (or ``..., seed 1234``)."""
        randomness = "derandomized" if self.seed is None else f"seed {self.seed}"
        return f"max {self.max_examples} examples per operation, {randomness}"


@dataclass(frozen=True, slots=True)
class ContractRun:
    """What one run did and found, from schemathesis' JSON run report."""

    service: str
    operations_selected: int
    operations_tested: int
    examples: int
    failures: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    exit_code: int
    output: str
    # "covered/selected" of the stateful phase's OpenAPI links, when it ran.
    links: str | None = None

    @property
    def passed(self) -> bool:
        """No failure, no error, and schemathesis agrees (exit code 0)."""
        return self.exit_code == 0 and not self.failures and not self.errors

    def summary_line(self) -> str:
        """One line for the terminal summary."""
        line = (
            f"{self.service}: {self.operations_tested}/{self.operations_selected} operations, "
            f"{self.examples} examples"
        )
        if self.links is not None:
            line += f", {self.links} links followed"
        if not self.passed:
            line += f", {sum(f['count'] for f in self.failures)} failures"
        return line


def options_from_environment(environ: Mapping[str, str] = os.environ) -> RunOptions:
    """The budget and seed the environment asks for (see the module docstring)."""
    raw_examples = environ.get(EXAMPLES_VARIABLE, "").strip()
    max_examples = int(raw_examples) if raw_examples else DEFAULT_MAX_EXAMPLES
    if max_examples < 1:
        raise ValueError(f"{EXAMPLES_VARIABLE} must be at least 1, got {max_examples}")
    raw_seed = environ.get(SEED_VARIABLE, "").strip()
    seed: int | None
    if not raw_seed:
        seed = None
    elif raw_seed == "random":
        seed = random.getrandbits(_SEED_BITS)
    else:
        seed = int(raw_seed)
    return RunOptions(max_examples=max_examples, seed=seed)


def _schemathesis_command() -> list[str]:
    script = Path(sys.executable).parent / "schemathesis"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "schemathesis.cli"]


def write_config(options: RunOptions, path: Path) -> Path:
    """A ``schemathesis.toml`` for what the command line cannot say (per-phase budgets)."""
    stateful_examples = options.max_examples * STATEFUL_EXAMPLES_FACTOR
    path.write_text(f"[phases.stateful.generation]\nmax-examples = {stateful_examples}\n")
    return path


def build_command(
    schema_url: str,
    *,
    headers: Mapping[str, str],
    options: RunOptions,
    report: Path,
    config: Path,
) -> list[str]:
    """The ``schemathesis run`` argv for one service."""
    command = [
        *_schemathesis_command(),
        "--config-file",
        str(config),
        "run",
        schema_url,
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(options.max_examples),
        "--request-timeout",
        str(REQUEST_TIMEOUT_SECONDS),
        # One worker: with more, schemathesis 4.32 on Python 3.11 can fail inside
        # Hypothesis (concurrent ``ast.parse``), and two cores gain nothing from them.
        "--workers",
        "1",
        # Our own headers authenticate; generated ones would only be rejected keys.
        "--generation-with-security-parameters",
        "false",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        "--no-color",
    ]
    if options.seed is None:
        # Derandomized generation also keeps no database of past examples.
        command.append("--generation-deterministic")
    else:
        # A seed replays a run only if examples of earlier runs do not steer it.
        command += ["--seed", str(options.seed), "--generation-database", "none"]
    for name, value in headers.items():
        command += ["--header", f"{name}: {value}"]
    return command


def run_schemathesis(
    service: str,
    schema_url: str,
    *,
    headers: Mapping[str, str],
    options: RunOptions,
    work_dir: Path,
) -> ContractRun:
    """Run schemathesis against ``schema_url`` in ``work_dir`` and read its report."""
    work_dir.mkdir(parents=True, exist_ok=True)
    report = work_dir / "report.json"
    config = write_config(options, work_dir / "schemathesis.toml")
    command = build_command(
        schema_url, headers=headers, options=options, report=report, config=config
    )
    completed = subprocess.run(  # noqa: S603 - schemathesis of this venv, arguments built above
        command,
        cwd=work_dir,
        env=_child_environment(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )
    output = completed.stdout + completed.stderr
    (work_dir / "output.txt").write_text(output)
    if not report.exists():
        raise RuntimeError(f"schemathesis wrote no report (exit {completed.returncode}):\n{output}")
    document = json.loads(report.read_text())
    operations = document.get("operations") or {}
    return ContractRun(
        service=service,
        operations_selected=int(operations.get("selected", 0)),
        operations_tested=int(operations.get("tested", 0)),
        examples=int(document["test_cases"]["generated"]),
        failures=list(document.get("failures") or []),
        errors=list(document.get("errors") or []),
        exit_code=completed.returncode,
        output=output,
        links=links_covered(output),
    )


def links_covered(output: str) -> str | None:
    """The stateful phase's links, `covered/selected`, from a text report (None: no phase)."""
    # The JSON report has no stateful counts; the text report's line is
    # "API Links:    12 covered / 12 selected / 12 total".
    match = _LINKS_LINE.search(output)
    return f"{match['covered']}/{match['selected']}" if match else None


def _child_environment() -> dict[str, str]:
    # Wide lines keep the report's curl commands whole; SCHEMATHESIS_* settings of
    # the developer's shell must not change what CI runs.
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SCHEMATHESIS_")}
    return environ | {"COLUMNS": "200", "NO_COLOR": "1"}
