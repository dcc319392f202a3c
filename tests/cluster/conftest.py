"""The cluster suite's session: 3 replicas behind nginx (tools/cluster.py), and a ledger.

Started once per session (about 15 s), stopped by PID at its end. Only tests
marked ``cluster`` use it; ``make test`` deselects them (pyproject addopts) and
``make test-cluster`` runs them. Without nginx or wrk they skip, or fail under CI.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.support import tool
from tests.conftest import _unavailable
from tests.system_runtime.durability_support import (
    LEDGER_OPERATION,
    LEDGER_SCOPES,
    LEDGER_SERVICE,
    EffectLedger,
    effect_ledger,
)
from xynergy.platform.config import DEFAULT_RATE_LIMITS

# Lowered limits the tests count against; everything else is out of their way.
ADMIN_LIMIT = 300  # per key and hour: test_rate_limits
PUBLIC_LIMIT = 20  # per client address and hour: test_forwarding
CLUSTER_RATE_LIMITS = DEFAULT_RATE_LIMITS | {
    "admin": f"{ADMIN_LIMIT}/hour",
    "public": f"{PUBLIC_LIMIT}/hour",
    "reads": "1000000/hour",
    "writes": "1000000/hour",
    "workflow_start": "1000000/hour",
    "ai_generate": "1000000/hour",  # test_soak's AI calls (the offline model)
}
# Not the `make cluster` database: a cluster someone runs by hand keeps working.
DATABASE_NAME = os.environ.get("XYNERGY_CLUSTER_TEST_DATABASE", "xynergy_cluster_tests")


def _ledger_env(ledger: EffectLedger) -> dict[str, str]:
    operation = {
        "name": LEDGER_OPERATION,
        "service": LEDGER_SERVICE,
        "method": "POST",
        "path": "/effects/{label}",
        "scopes": list(LEDGER_SCOPES),
        "description": "Record a side effect at the test's receiving service.",
    }
    return {
        "XYNERGY_SERVICE_URLS": json.dumps({LEDGER_SERVICE: ledger.url}),
        "XYNERGY_RUNTIME_EXTRA_OPERATIONS": json.dumps([operation]),
        "XYNERGY_RUNTIME_QUEUE_POLL_SECONDS": "0.05",
        "XYNERGY_RUNTIME_RETRY_BASE_SECONDS": "0.2",
        "XYNERGY_RUNTIME_TENANT_CONCURRENCY": "64",
        "XYNERGY_RUNTIME_WORKER_CONCURRENCY": "16",
    }


@pytest.fixture(scope="session")
def ledger() -> Iterator[EffectLedger]:
    """The receiving service the cluster's workflow steps record their effects at."""
    with effect_ledger() as books:
        yield books


@pytest.fixture(scope="session")
def cluster(ledger: EffectLedger, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Three replicas and nginx on loopback ports (``tools/cluster.py``'s ``Cluster``)."""
    for binary in ("nginx", "wrk"):
        if shutil.which(binary) is None and not Path(f"/usr/sbin/{binary}").exists():
            _unavailable(binary, "not installed (apt-get install nginx-light wrk)")
    cluster_tool = tool("cluster")
    extra = _ledger_env(ledger) | {
        "XYNERGY_RATE_LIMITS": json.dumps(CLUSTER_RATE_LIMITS),
        # Under load the per-request log lines would be most of the replicas' work.
        "XYNERGY_ACCESS_LOG": "false",
    }
    with cluster_tool.running_cluster(
        replicas=3,
        extra_env=extra,
        work_dir=tmp_path_factory.mktemp("cluster"),
        database_name=DATABASE_NAME,
    ) as running:
        names = ", ".join(f"{r.name}=:{r.port} (pid {r.pid})" for r in running.replicas)
        print(f"\ncluster: nginx at {running.proxy_url}; {names}")  # noqa: T201
        yield running
