"""``make run PORT=… HOST=…``: the values reach ``xynergy serve`` (checked with ``make -n``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAKE_TIMEOUT_SECONDS = 30

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _serve_line(*variables: str) -> str:
    # -n prints the recipe without running it; the environment must not choose for us.
    result = subprocess.run(  # noqa: S603 - fixed argv
        ["make", "-n", "run", *variables],  # noqa: S607 - make from PATH, as a user runs it
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=MAKE_TIMEOUT_SECONDS,
        check=True,
    )
    return next(line for line in result.stdout.splitlines() if "xynergy serve" in line)


def test_port_and_host_are_passed_to_serve() -> None:
    line = _serve_line("PORT=8123", "HOST=127.0.0.2")
    assert line.split()[-4:] == ["--host", "127.0.0.2", "--port", "8123"]


def test_without_them_the_settings_decide() -> None:
    assert _serve_line().split()[-1].endswith("serve")
