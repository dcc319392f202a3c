"""Every mounted service answers what its OpenAPI document says it answers.

schemathesis generates requests from each document of the all-in-one app (the
platform admin at ``/openapi.json``, each service at ``/<slug>/openapi.json``),
positive and negative, including stateful sequences it infers (create, then read
or delete by id), and checks each response: no 5xx, a documented status, the
documented content type, headers and body schema. The key holds every scope
(``conftest.contract_headers``), so every operation is reachable.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from tests.contract.schemathesis_cli import ContractRun, RunOptions, run_schemathesis
from tests.live_server import LiveServer
from xynergy.server import SERVICES

PLATFORM = "platform"
# The platform admin app is mounted at the root, every service under its slug.
MOUNTS: dict[str, str] = {PLATFORM: ""} | {slug: f"/{slug}" for slug in SERVICES}
# Runs at a time against the one server. A run alternates between schemathesis
# generating a case (its process) and the server answering it (another), so one
# run keeps about one core of two busy, two keep both. Each run still covers its
# whole service with the same budget and seed; only the wall time changes.
CONCURRENT_RUNS = 2


def _failure_report(run: ContractRun) -> str:
    counts = ", ".join(f"{f['code']} {f['title']}: {f['count']}" for f in run.failures)
    errors = ", ".join(f"{e['title']}: {e['count']}" for e in run.errors)
    return (
        f"schemathesis found problems in {run.service} (exit {run.exit_code}); "
        f"failures: {counts or 'none'}; errors: {errors or 'none'}\n\n{run.output}"
    )


def _selected_services(session: pytest.Session) -> list[str]:
    # Only the services this session runs (``-k aso-engine`` starts one run, not six).
    chosen = {
        item.callspec.params["service"]
        for item in session.items
        if isinstance(item, pytest.Function)
        and item.function is test_service_honours_its_openapi_document
    }
    return [service for service in MOUNTS if service in chosen]


@pytest.fixture(scope="module")
def contract_runs(
    request: pytest.FixtureRequest,
    contract_server: LiveServer,
    contract_headers: dict[str, str],
    contract_options: RunOptions,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Future[ContractRun]]]:
    """Every selected service's run, started in ``MOUNTS`` order, ``CONCURRENT_RUNS`` at a time."""
    with ThreadPoolExecutor(CONCURRENT_RUNS, thread_name_prefix="schemathesis") as pool:
        runs = {
            service: pool.submit(
                run_schemathesis,
                service,
                f"{contract_server.base_url}{MOUNTS[service]}/openapi.json",
                headers=contract_headers,
                options=contract_options,
                work_dir=tmp_path_factory.mktemp(f"contract-{service}"),
            )
            for service in _selected_services(request.session)
        }
        try:
            yield runs
        finally:
            for run in runs.values():
                run.cancel()  # those not started yet, if the module stops early


@pytest.mark.parametrize("service", list(MOUNTS))
def test_service_honours_its_openapi_document(
    service: str,
    contract_runs: dict[str, Future[ContractRun]],
    record_contract_run: list[ContractRun],
) -> None:
    run = contract_runs[service].result()
    record_contract_run.append(run)

    assert run.operations_tested == run.operations_selected > 0, _failure_report(run)
    assert run.passed, _failure_report(run)
