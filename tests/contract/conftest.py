"""The server the contract test fuzzes, and the per-service counts it prints.

One real ``xynergy serve`` on a loopback port serves every service (the
all-in-one app), with rate limits far above what the run sends so that 429s do
not stand in for real answers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.contract.schemathesis_cli import ContractRun, RunOptions, options_from_environment
from tests.live_server import LiveServer, live_server
from xynergy.platform.auth.scopes import KNOWN_SCOPES, OPERATOR_TENANT_NAME
from xynergy.platform.config import DEFAULT_RATE_LIMITS
from xynergy.platform.routing import ACTING_TENANT_HEADER

# Every route class, including the per-address auth failures, far above a run's volume.
UNLIMITED_RATE = "1000000/minute"
# The customer tenant the runs act for (see ``contract_headers``).
ACTING_TENANT_NAME = "contract"

CONTRACT_RUNS = pytest.StashKey[list[ContractRun]]()
CONTRACT_OPTIONS = pytest.StashKey[RunOptions]()


@pytest.fixture(scope="session")
def contract_options(pytestconfig: pytest.Config) -> RunOptions:
    """Budget and seed of this session's runs (read once, so a random seed is one seed)."""
    options = options_from_environment()
    pytestconfig.stash[CONTRACT_OPTIONS] = options
    return options


@pytest.fixture(scope="module")
def contract_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The all-in-one app on 127.0.0.1 with an operator tenant (``xynergy bootstrap``)."""
    limits = {route_class: UNLIMITED_RATE for route_class in DEFAULT_RATE_LIMITS}
    data_dir = tmp_path_factory.mktemp("contract-server")
    with live_server({"XYNERGY_RATE_LIMITS": json.dumps(limits)}, data_dir=data_dir) as server:
        server.bootstrap_admin_key()
        yield server


@pytest.fixture(scope="module")
def contract_headers(contract_server: LiveServer) -> dict[str, str]:
    """An operator key holding every scope, acting for the ``contract`` tenant.

    Every scope (``admin`` included) exists only in the operator tenant, so the
    key is the operator's. It names another tenant to act for: the key routes
    (list, rotate, revoke) work on the acting tenant's keys, and with the
    operator's own the run revoked its key halfway and answered 401 from then on.
    """
    secret = contract_server.issue_key(tenant=OPERATOR_TENANT_NAME, scopes=sorted(KNOWN_SCOPES))
    return {
        "Authorization": f"Bearer {secret}",
        ACTING_TENANT_HEADER: contract_server.tenant_id(ACTING_TENANT_NAME),
    }


@pytest.fixture
def record_contract_run(pytestconfig: pytest.Config) -> list[ContractRun]:
    """Append a run here to have its counts printed in the terminal summary."""
    return pytestconfig.stash.setdefault(CONTRACT_RUNS, [])


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """What each service's run covered: shown by every ``make test``, pass or fail."""
    runs = config.stash.get(CONTRACT_RUNS, [])
    if not runs:
        return
    terminalreporter.section("schemathesis contract")
    options = config.stash.get(CONTRACT_OPTIONS, None)
    if options is not None:
        terminalreporter.line(options.describe())
    for run in runs:
        terminalreporter.line(run.summary_line())
    total_operations = sum(run.operations_tested for run in runs)
    total_examples = sum(run.examples for run in runs)
    terminalreporter.line(
        f"total: {total_operations} operations, {total_examples} examples in {len(runs)} services"
    )
