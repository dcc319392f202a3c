"""Every command in README.md works verbatim against a running ``xynergy serve``.

The README's ``sh`` and ``python`` blocks are run in order, as a reader would
run them in one shell: shell variables and functions carry from block to block,
and ``python`` blocks run with the venv's interpreter from that shell (reading
what it exported). The server is a real process on a loopback port; the blocks
get its URL (``XYNERGY_URL``) and a fresh admin key (``XYNERGY_ADMIN_KEY``), and
its settings, so the CLI examples reach the same database.

A block fails the test when it exits non-zero (shell blocks run with
``set -euo pipefail``, and the README uses ``curl -fsS`` so a 4xx is a failure)
or when its output misses what the README says it prints: a ``text output``
block right after it, whose lines must appear in order (``...`` matches
anything). A block the reader should not run here is tagged ``no-run``, and only
the few in ``NOT_RUN`` may be.

The whole README runs twice against one server: a second run must not clash
with the first (tenant and form names, keys, imports).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.live_server import LiveServer, live_server

README = Path(__file__).resolve().parents[1] / "README.md"
SHELL_LANGUAGES = frozenset({"sh", "bash", "shell"})
PYTHON_LANGUAGES = frozenset({"python", "py"})
NO_RUN = "no-run"
OUTPUT = "output"
BLOCK_TIMEOUT_SECONDS = 180.0
RUNS = 2

# Blocks not run here, by their first line, and why. Keep this short: every
# other command in the README is proven by running it.
NOT_RUN = {
    "make run": "serves until stopped; the test starts the same server itself",
    "export XYNERGY_URL=": "placeholders for the reader's own server and admin key",
    "make test": "runs this test among the others",
}

# Each main journey, by a text its run blocks must contain: deleting or
# un-running an example fails here, not silently.
JOURNEYS = {
    "ASO Engine": "/aso-engine/api",
    "content": "/content",
    "bulk import": "/keywords/bulk-import",
    "rankings": "/rankings",
    "trending": "/keywords/trending",
    "Marketing Engine": "/marketing-engine",
    "keyword research": "/keywords/research",
    "campaign generation": "/campaigns/generate",
    "Intelligence Gateway": "/intelligence-gateway/api",
    "forms": "/forms",
    "webhook signature": "X-Xynergy-Signature",
    "AI Routing Engine": "/ai-routing-engine/v1",
    "chat with the OpenAI SDK": "chat.completions.create",
    "streaming chat": "stream=True",
    "CLI": ".venv/bin/xynergy",
}

# The server's settings for the whole README: webhooks to a receiver on this
# machine (the README's receiver example), as its text tells the reader to set.
SERVER_ENV = {"XYNERGY_OUTBOX_ALLOW_PRIVATE_ADDRESSES": "true"}

_FENCE = re.compile(r"^(?P<fence>```+|~~~+)(?P<info>[^`]*)$")
# Names a shell block assigns (NAME=..., export NAME=..., read NAME).
_ASSIGNED = re.compile(
    r"(?:^|[\s;&|(])(?:export\s+|local\s+|readonly\s+)?([A-Za-z_][A-Za-z0-9_]*)=|\bread\s+(?:-r\s+)?([A-Za-z_][A-Za-z0-9_]*)"
)


@dataclass
class Block:
    """One fenced code block of the README."""

    line: int
    language: str
    tags: frozenset[str]
    code: str
    expected: str | None = None

    @property
    def runnable(self) -> bool:
        return self.language in SHELL_LANGUAGES | PYTHON_LANGUAGES

    @property
    def runs(self) -> bool:
        return self.runnable and NO_RUN not in self.tags

    @property
    def first_line(self) -> str:
        return next((line.strip() for line in self.code.splitlines() if line.strip()), "")


def parse_blocks(text: str) -> list[Block]:
    """The fenced blocks of ``text``, each ``text output`` block attached to the one before."""
    blocks: list[Block] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        fence, words = opening["fence"], opening["info"].split()
        body: list[str] = []
        start = index + 1
        index += 1
        while index < len(lines) and not lines[index].startswith(fence):
            body.append(lines[index])
            index += 1
        index += 1  # the closing fence
        language = words[0].lower() if words else ""
        block = Block(start, language, frozenset(words[1:]), "\n".join(body) + "\n")
        if OUTPUT in block.tags and blocks and blocks[-1].runs:
            blocks[-1].expected = block.code
            continue
        blocks.append(block)
    return blocks


def missing_output(expected: str, actual: str) -> str | None:
    """The first expected line not found (in order) among ``actual``'s lines, else None."""
    remaining = iter(actual.splitlines())
    for wanted in filter(None, (line.strip() for line in expected.splitlines())):
        pattern = re.compile(".*".join(re.escape(part) for part in wanted.split("...")))
        if not any(pattern.fullmatch(line.strip()) for line in remaining):
            return wanted
    return None


def assigned_names(blocks: list[Block]) -> list[str]:
    """Every shell variable the README's shell blocks assign, to carry between blocks."""
    names: set[str] = set()
    for block in blocks:
        if block.runs and block.language in SHELL_LANGUAGES:
            for match in _ASSIGNED.finditer(block.code):
                names.add(match[1] or match[2])
    return sorted(names)


class ReadmeSession:
    """One reader's shell: blocks run in order, state carried in a file."""

    def __init__(self, workdir: Path, env: dict[str, str], names: list[str]) -> None:
        self.workdir = workdir
        self.env = env
        self.names = names
        self.state = workdir / ".readme-shell-state"
        self.state.write_text("")

    def _script(self, block: Block, index: int) -> str:
        if block.language in PYTHON_LANGUAGES:
            source = self.workdir / f".readme-block-{index}.py"
            source.write_text(block.code)
            return f'source {self.state}\nexec "$README_PYTHON" {source}\n'
        saved = " ".join(self.names)
        return (
            f"source {self.state}\n"
            "set -euo pipefail\n"
            f"{block.code}\n"
            "set +euo pipefail\n"
            f"{{ declare -p {saved} 2>/dev/null; declare -f; }} > {self.state}.new\n"
            f"mv {self.state}.new {self.state}\n"
        )

    def run(self, block: Block, index: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - the README's own commands, on loopback
            ["bash", "-c", self._script(block, index)],  # noqa: S607 - bash from PATH
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT_SECONDS,
            check=False,
        )


def _failure(block: Block, result: subprocess.CompletedProcess[str], why: str) -> str:
    return (
        f"README.md block at line {block.line} {why}\n--- block ---\n{block.code}"
        f"--- stdout ---\n{result.stdout}--- stderr ---\n{result.stderr}"
    )


def run_readme(server: LiveServer, admin_key: str, workdir: Path, blocks: list[Block]) -> None:
    """Run every runnable block in order in a fresh reader's shell; fail on the first error."""
    workdir.mkdir(parents=True)
    # The reader runs from the repository: `.venv/bin/xynergy` must resolve, but
    # files the examples write must not land in the repository.
    (workdir / ".venv").symlink_to(Path(sys.executable).parent.parent)
    env = {name: value for name, value in server.env.items() if name != "COLUMNS"}
    env |= {
        "XYNERGY_URL": server.base_url,
        "XYNERGY_ADMIN_KEY": admin_key,
        "README_PYTHON": sys.executable,
    }
    session = ReadmeSession(workdir, env, assigned_names(blocks))
    for index, block in enumerate(blocks):
        if not block.runs:
            continue
        result = session.run(block, index)
        if result.returncode != 0:
            pytest.fail(_failure(block, result, f"exited {result.returncode}"), pytrace=False)
        if block.expected is not None:
            missing = missing_output(block.expected, result.stdout)
            if missing is not None:
                why = f"did not print the README's output line {missing!r}"
                pytest.fail(_failure(block, result, why), pytrace=False)


@pytest.fixture(scope="module")
def blocks() -> list[Block]:
    return parse_blocks(README.read_text())


class TestReadmeShape:
    def test_only_the_allowed_blocks_are_not_run(self, blocks: list[Block]) -> None:
        skipped = [b for b in blocks if b.runnable and not b.runs]
        unexpected = [
            f"line {b.line}: {b.first_line}"
            for b in skipped
            if not any(b.first_line.startswith(first) for first in NOT_RUN)
        ]
        assert unexpected == [], "blocks tagged no-run outside NOT_RUN"
        assert len(skipped) <= len(NOT_RUN)

    def test_every_main_journey_has_an_example_that_runs(self, blocks: list[Block]) -> None:
        run_text = "".join(b.code for b in blocks if b.runs)
        missing = [journey for journey, text in JOURNEYS.items() if text not in run_text]
        assert missing == []

    def test_an_output_block_follows_a_block_that_runs(self, blocks: list[Block]) -> None:
        # An output block after a no-run block or after prose would check nothing.
        stray = [b.line for b in blocks if OUTPUT in b.tags]
        assert stray == []


class TestOutputMatching:
    def test_lines_match_in_order_with_ellipsis(self) -> None:
        actual = 'noise\n{"count":1}\n{"id":"abc","x":2}\n'
        assert missing_output('{"count":1}\n{"id":"...","x":2}\n', actual) is None

    def test_a_missing_or_reordered_line_is_reported(self) -> None:
        actual = "b\na\n"
        assert missing_output("a\nb\n", actual) == "b"
        assert missing_output("c\n", actual) == "c"


@pytest.fixture(scope="module")
def readme_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    """The server the reader started with ``make run``, and the admin key it printed."""
    if shutil.which("curl") is None:
        pytest.fail("the README examples need curl on PATH", pytrace=False)
    data_dir = tmp_path_factory.mktemp("readme-server")
    with live_server(SERVER_ENV, data_dir=data_dir) as server:
        yield server, server.bootstrap_admin_key()


class TestReadmeRunsVerbatim:
    def test_every_block_runs_top_to_bottom_twice_without_a_clash(
        self, readme_server: tuple[LiveServer, str], blocks: list[Block], tmp_path: Path
    ) -> None:
        server, admin_key = readme_server
        for run in range(RUNS):
            run_readme(server, admin_key, tmp_path / f"reader-{run}", blocks)
