"""Known vulnerabilities in the installed dependencies: Python (pip-audit) and npm.

    python tools/audit.py        # exit 1 when a dependency has a known vulnerability

Python: ``pip-audit`` over the virtual environment this runs in (the versions
``make install`` resolved and the tests ran against; the project itself is
skipped, it is not on PyPI), asking PyPI's vulnerability data. Front end:
``npm audit`` over ``package-lock.json`` (runtime packages only).

A vulnerability fails the audit. A service that cannot be reached does not: the
audit says so and which part was not checked, because a closed network (as on
CI machines without the internet) says nothing about the dependencies.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Where pip-audit's default service ("pypi") reads advisories from.
PYPI_PROBE = "https://pypi.org/pypi/pip/json"
PROBE_TIMEOUT_SECONDS = 10
# Bounds a hung audit; a full run here takes about 10 s.
AUDIT_TIMEOUT_SECONDS = 300


@dataclass(frozen=True, slots=True)
class Finding:
    """One vulnerable package: its name, installed version and advisory ids."""

    ecosystem: str
    name: str
    version: str
    advisories: tuple[str, ...]
    fixed_in: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one audit found; ``unchecked`` says why it could not run, if it could not."""

    findings: tuple[Finding, ...] = ()
    unchecked: str | None = None
    audited: int = 0


def pip_audit_findings(report: dict[str, Any]) -> Outcome:
    """The findings of a ``pip-audit --format json`` report."""
    dependencies = report.get("dependencies", [])
    findings = tuple(
        Finding(
            "pypi",
            str(dependency["name"]),
            str(dependency.get("version", "?")),
            tuple(str(vuln["id"]) for vuln in dependency["vulns"]),
            tuple(
                sorted({str(fix) for vuln in dependency["vulns"] for fix in vuln["fix_versions"]})
            ),
        )
        for dependency in dependencies
        if dependency.get("vulns")
    )
    return Outcome(findings, audited=len(dependencies))


def npm_audit_findings(report: dict[str, Any]) -> Outcome:
    """The findings of an ``npm audit --json`` report, or why it has none."""
    if "vulnerabilities" not in report:
        # npm prints its error (405/ENOTFOUND from a registry without the audit API)
        # as a JSON object with a message instead of a report.
        reason = report.get("message") or report.get("error", {}).get("summary") or "no report"
        return Outcome(unchecked=f"npm audit gave no report: {reason}")
    findings = tuple(
        Finding(
            "npm",
            name,
            str(entry.get("range", "?")),
            tuple(
                str(via.get("url") or via.get("title"))
                for via in entry.get("via", [])
                if isinstance(via, dict)
            )
            or ("via " + ", ".join(str(via) for via in entry.get("via", [])),),
        )
        for name, entry in sorted(report["vulnerabilities"].items())
    )
    total = report.get("metadata", {}).get("dependencies", {}).get("total", 0)
    return Outcome(findings, audited=int(total))


def _pypi_reachable() -> str | None:
    """None when PyPI answers, else why not."""
    try:
        with urllib.request.urlopen(PYPI_PROBE, timeout=PROBE_TIMEOUT_SECONDS) as response:
            response.read(1)
    except (urllib.error.URLError, OSError) as exc:
        return f"{PYPI_PROBE} unreachable ({exc})"
    return None


def audit_python() -> Outcome:
    """pip-audit over this interpreter's environment."""
    unreachable = _pypi_reachable()
    if unreachable is not None:
        return Outcome(unchecked=unreachable)
    with tempfile.TemporaryDirectory() as scratch:
        report_path = Path(scratch) / "pip-audit.json"
        # Fixed arguments, no shell: nothing here comes from input.
        completed = subprocess.run(  # noqa: S603
            [
                sys.executable,
                "-m",
                "pip_audit",
                "--skip-editable",
                "--progress-spinner",
                "off",
                "--format",
                "json",
                "--output",
                str(report_path),
            ],
            capture_output=True,
            text=True,
            timeout=AUDIT_TIMEOUT_SECONDS,
            check=False,
        )
        if not report_path.exists():
            # No report at all: the service failed mid-run (the probe passed).
            why = completed.stderr.strip().splitlines()[-1:] or ["no output"]
            return Outcome(unchecked=f"pip-audit did not finish: {why[0]}")
        return pip_audit_findings(json.loads(report_path.read_text()))


def audit_npm() -> Outcome:
    """npm audit over package-lock.json (runtime packages only)."""
    npm = shutil.which("npm")
    if npm is None:
        return Outcome(unchecked="npm is not installed")
    completed = subprocess.run(  # noqa: S603 (fixed arguments, no shell)
        [npm, "audit", "--package-lock-only", "--omit=dev", "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=AUDIT_TIMEOUT_SECONDS,
        check=False,
    )
    try:
        report = json.loads(completed.stdout or "{}")
    except json.JSONDecodeError:
        return Outcome(unchecked=f"npm audit printed no JSON (exit {completed.returncode})")
    return npm_audit_findings(report)


def render(name: str, outcome: Outcome) -> list[str]:
    """The lines printed for one audit."""
    if outcome.unchecked is not None:
        return [f"audit: {name}: NOT CHECKED: {outcome.unchecked}"]
    lines = [f"audit: {name}: {outcome.audited} packages, {len(outcome.findings)} vulnerable"]
    lines += [
        f"  {finding.name} {finding.version}: {', '.join(finding.advisories)}"
        + (f" (fixed in {', '.join(finding.fixed_in)})" if finding.fixed_in else "")
        for finding in outcome.findings
    ]
    return lines


def main() -> int:
    """Run both audits; 1 when either found a vulnerability."""
    outcomes = {"python (pip-audit, PyPI)": audit_python(), "front end (npm audit)": audit_npm()}
    for name, outcome in outcomes.items():
        sys.stdout.write("".join(line + "\n" for line in render(name, outcome)))
    return 1 if any(outcome.findings for outcome in outcomes.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
