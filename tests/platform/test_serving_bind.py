"""``xynergy serve`` on an address it cannot bind: one line naming the setting, no traceback.

The port is taken by a listening socket of the test itself (loopback), so the
failure is real; the server is a subprocess with a bounded run time.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live_server import LOOPBACK, server_env, xynergy_command
from xynergy.platform.serving import bind_listener

# Start-up (imports, app build) takes seconds; the refusal must come before serving.
SERVE_TIMEOUT_SECONDS = 60
MOVES_THE_PORT = ("XYNERGY_PORT", "--port", "make run PORT=")


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port held by a listening socket for the test's duration."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind((LOOPBACK, 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def _serve(
    data_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    child_env = server_env(env, data_dir=data_dir)
    subprocess.run(  # noqa: S603 - our own CLI
        [*xynergy_command(), "migrate"],
        env=child_env,
        capture_output=True,
        check=True,
        timeout=SERVE_TIMEOUT_SECONDS,
    )
    return subprocess.run(  # noqa: S603 - our own CLI
        [*xynergy_command(), "serve", "--host", LOOPBACK, *args],
        env=child_env,
        capture_output=True,
        text=True,
        timeout=SERVE_TIMEOUT_SECONDS,
        check=False,
    )


class TestAddressInUse:
    def test_serve_says_which_setting_moves_the_port(self, tmp_path: Path, taken_port: int) -> None:
        result = _serve(tmp_path / "data", "--port", str(taken_port))
        assert result.returncode == 1
        assert "Traceback" not in result.stderr + result.stdout
        lines = result.stderr.strip().splitlines()
        assert lines == [
            f"error: {LOOPBACK}:{taken_port} is already in use; serve on another port with "
            "XYNERGY_PORT, `xynergy serve --port N` or `make run PORT=N`"
        ]

    def test_a_taken_metrics_port_names_its_setting(self, tmp_path: Path, taken_port: int) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((LOOPBACK, 0))
            free_port = probe.getsockname()[1]
        result = _serve(
            tmp_path / "data",
            "--port",
            str(free_port),
            env={"XYNERGY_METRICS_PORT": str(taken_port)},
        )
        assert result.returncode == 1
        assert "Traceback" not in result.stderr + result.stdout
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1
        assert lines[0].startswith(f"error: cannot bind {LOOPBACK}:{taken_port} (")
        assert lines[0].endswith("change XYNERGY_METRICS_PORT")


class TestBindListener:
    def test_a_free_port_is_bound(self) -> None:
        listener = bind_listener(LOOPBACK, 0)
        try:
            assert listener.getsockname()[0] == LOOPBACK
        finally:
            listener.close()

    def test_a_taken_port_exits_with_one_line(self, taken_port: int) -> None:
        with pytest.raises(SystemExit) as exited:
            bind_listener(LOOPBACK, taken_port)
        message = str(exited.value.code)
        assert "\n" not in message
        assert all(hint in message for hint in MOVES_THE_PORT)

    def test_an_address_not_on_this_machine_names_the_host_setting(self) -> None:
        # TEST-NET-1 (RFC 5737): never assigned to a local interface.
        with pytest.raises(SystemExit) as exited:
            bind_listener("192.0.2.1", 0)
        assert "XYNERGY_HOST" in str(exited.value.code)
        assert "--host" in str(exited.value.code)
