"""`make cluster` (tools/cluster.py): starts, prints the URL and a key, and Ctrl-C stops all of it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from http import HTTPStatus
from pathlib import Path

import httpx
import pytest

from tests.cluster.support import TOOLS, tool
from tests.helpers import auth

pytestmark = pytest.mark.cluster

STARTUP_SECONDS = 180.0
STOP_SECONDS = 60.0
DATABASE = "xynergy_cluster_cli_test"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purpose; /proc says so.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "\nState:\tZ" not in status.read_text()


def test_make_cluster_serves_and_ctrl_c_stops_every_process(tmp_path: Path) -> None:
    port = tool("cluster").free_port()
    log = tmp_path / "cluster.out"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own tool
            [
                sys.executable,
                str(TOOLS / "cluster.py"),
                "--replicas",
                "2",
                "--port",
                str(port),
                "--database",
                DATABASE,
                "--work-dir",
                str(tmp_path / "work"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while "Ctrl-C stops everything" not in log.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            time.sleep(0.2)
        printed = log.read_text()
        assert f"xynergy cluster at http://127.0.0.1:{port}" in printed, printed
        key = re.search(r"bootstrap admin key \(shown once\): (\S+)", printed)
        tenant = re.search(r"X-Xynergy-Tenant: (\S+)\)", printed)
        assert key is not None, printed
        assert tenant is not None, printed
        pids = [int(pid) for pid in re.findall(r"\(pid (\d+)\)", printed)]
        pids += [int(pid) for pid in re.findall(r"nginx: pid (\d+)", printed)]
        assert len(pids) == 3, printed
        answer = httpx.get(
            f"http://127.0.0.1:{port}/admin/keys?limit=1",
            headers=auth(key.group(1)) | {"X-Xynergy-Tenant": tenant.group(1)},
        )
        assert answer.status_code == HTTPStatus.OK, answer.text
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        stopped_at = time.monotonic()
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
    print(f"\nmake cluster stopped {len(pids)} processes in {time.monotonic() - stopped_at:.1f} s")  # noqa: T201
    assert process.returncode == 0, log.read_text()
    assert not [pid for pid in pids if _pid_alive(pid)]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
