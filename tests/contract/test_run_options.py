"""The contract run's budget and seed come from the environment, derandomized by default."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contract.schemathesis_cli import (
    DEFAULT_MAX_EXAMPLES,
    EXAMPLES_VARIABLE,
    SEED_VARIABLE,
    ContractRun,
    RunOptions,
    build_command,
    links_covered,
    options_from_environment,
)


class TestOptionsFromEnvironment:
    def test_nothing_set_is_the_default_budget_derandomized(self) -> None:
        assert options_from_environment({}) == RunOptions(
            max_examples=DEFAULT_MAX_EXAMPLES, seed=None
        )

    def test_the_budget_can_be_raised(self) -> None:
        assert options_from_environment({EXAMPLES_VARIABLE: "250"}).max_examples == 250

    def test_a_budget_below_one_is_refused(self) -> None:
        with pytest.raises(ValueError, match=EXAMPLES_VARIABLE):
            options_from_environment({EXAMPLES_VARIABLE: "0"})

    def test_a_number_replays_that_seed(self) -> None:
        assert options_from_environment({SEED_VARIABLE: "1234"}).seed == 1234

    def test_random_draws_a_seed(self) -> None:
        assert options_from_environment({SEED_VARIABLE: "random"}).seed is not None


class TestCommand:
    def _command(self, options: RunOptions) -> list[str]:
        return build_command(
            "http://127.0.0.1:1/openapi.json",
            headers={"Authorization": "Bearer k"},
            options=options,
            report=Path("report.json"),
            config=Path("schemathesis.toml"),
        )

    def test_derandomized_without_a_seed(self) -> None:
        command = self._command(RunOptions(max_examples=3, seed=None))

        assert "--generation-deterministic" in command
        assert "--seed" not in command

    def test_a_seed_is_passed_without_an_example_database(self) -> None:
        command = self._command(RunOptions(max_examples=3, seed=99))

        assert command[command.index("--seed") + 1] == "99"
        assert command[command.index("--generation-database") + 1] == "none"
        assert "--generation-deterministic" not in command


def test_the_summary_names_the_links_the_stateful_phase_followed() -> None:
    output = " ✅  Stateful (in 3.27s)\n\n     API Links:    7 covered / 26 selected / 26 total\n"
    run = ContractRun(
        service="aso-engine",
        operations_selected=16,
        operations_tested=16,
        examples=1322,
        failures=[],
        errors=[],
        exit_code=0,
        output=output,
        links=links_covered(output),
    )
    assert run.summary_line() == "aso-engine: 16/16 operations, 1322 examples, 7/26 links followed"
    assert links_covered("no stateful phase") is None
