"""Every mounted service answers what its OpenAPI document says it answers.

schemathesis generates requests from each document of the all-in-one app (the
platform admin at ``/openapi.json``, each service at ``/<slug>/openapi.json``),
positive and negative, including stateful sequences it infers (create, then read
or delete by id), and checks each response: no 5xx, a documented status, the
documented content type, headers and body schema. The key holds every scope
(``conftest.contract_headers``), so every operation is reachable.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contract.schemathesis_cli import ContractRun, RunOptions, run_schemathesis
from tests.live_server import LiveServer
from xynergy.server import SERVICES

PLATFORM = "platform"
# The platform admin app is mounted at the root, every service under its slug.
MOUNTS: dict[str, str] = {PLATFORM: ""} | {slug: f"/{slug}" for slug in SERVICES}


def _failure_report(run: ContractRun) -> str:
    counts = ", ".join(f"{f['code']} {f['title']}: {f['count']}" for f in run.failures)
    errors = ", ".join(f"{e['title']}: {e['count']}" for e in run.errors)
    return (
        f"schemathesis found problems in {run.service} (exit {run.exit_code}); "
        f"failures: {counts or 'none'}; errors: {errors or 'none'}\n\n{run.output}"
    )


@pytest.mark.parametrize("service", list(MOUNTS))
def test_service_honours_its_openapi_document(
    service: str,
    contract_server: LiveServer,
    contract_headers: dict[str, str],
    contract_options: RunOptions,
    record_contract_run: list[ContractRun],
    tmp_path: Path,
) -> None:
    schema_url = f"{contract_server.base_url}{MOUNTS[service]}/openapi.json"

    run = run_schemathesis(
        service,
        schema_url,
        headers=contract_headers,
        options=contract_options,
        work_dir=tmp_path,
    )
    record_contract_run.append(run)

    assert run.operations_tested == run.operations_selected > 0, _failure_report(run)
    assert run.passed, _failure_report(run)
