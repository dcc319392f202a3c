"""Headless Chromium for the browser tests: Debian's ``chromium`` driven by Playwright.

Playwright comes from PyPI and never downloads a browser here: it launches
``/usr/bin/chromium`` (``.ci/run`` installs it). Without it the tests skip with a
clear message on a laptop, and fail under ``CI=true``. Screenshots go to
``$XYNERGY_SCREENSHOT_DIR`` (default: ``<tmp>/xynergy-screenshots``), named at the
end of the run.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from tests.browser.pages import RENDER_TIMEOUT_MS

CHROMIUM = Path(os.environ.get("XYNERGY_TEST_CHROMIUM", "/usr/bin/chromium"))
# No sandbox: CI runs as root, where Chromium's sandbox refuses to start.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
SCREENSHOT_DIR = Path(
    os.environ.get("XYNERGY_SCREENSHOT_DIR") or Path(tempfile.gettempdir()) / "xynergy-screenshots"
)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """One headless Chromium per test module (each test opens its own context).

    Not per session: while Playwright's sync API runs, its event loop counts as
    running in this thread, so every later test calling ``asyncio.run`` would fail.
    """
    if not CHROMIUM.exists():
        why = f"{CHROMIUM} is missing (apt-get install chromium)"
        if CI:
            pytest.fail(f"Chromium is required when CI=true: {why}", pytrace=False)
        pytest.skip(f"{why}; these tests run in CI (see .ci/run)")
    expect.set_options(timeout=RENDER_TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


_SCREENSHOTS_TAKEN = pytest.StashKey[Path]()


@pytest.fixture(scope="session")
def screenshot_dir(pytestconfig: pytest.Config) -> Path:
    """Where the tests save what the pages looked like (named at the end of the run)."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    pytestconfig.stash[_SCREENSHOTS_TAKEN] = SCREENSHOT_DIR
    return SCREENSHOT_DIR


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    taken = terminalreporter.config.stash.get(_SCREENSHOTS_TAKEN, None)
    if taken is not None:
        terminalreporter.write_line(f"browser screenshots: {taken}")
