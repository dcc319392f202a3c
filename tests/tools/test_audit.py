"""tools/audit.py: a vulnerability fails `make audit`, an unreachable service does not."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_audit() -> ModuleType:
    # tools/ is not a package; registered first so its dataclasses resolve annotations.
    spec = importlib.util.spec_from_file_location("audit_tool", ROOT / "tools" / "audit.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


audit = _load_audit()

PIP_AUDIT_REPORT = {
    "dependencies": [
        {"name": "jinja2", "version": "3.1.2", "vulns": [
            {"id": "GHSA-h5c8-rqwp-cp95", "fix_versions": ["3.1.3"], "aliases": []},
            {"id": "PYSEC-2024-1", "fix_versions": ["3.1.4", "3.1.3"], "aliases": []},
        ]},
        {"name": "fastapi", "version": "0.165.0", "vulns": []},
    ],
    "fixes": [],
}  # fmt: skip

NPM_REPORT = {
    "auditReportVersion": 2,
    "vulnerabilities": {
        "dompurify": {
            "name": "dompurify",
            "severity": "moderate",
            "via": [{"title": "mXSS", "url": "https://github.com/advisories/GHSA-x"}],
            "range": "<3.1.3",
        },
    },
    "metadata": {"dependencies": {"total": 3}},
}


class TestReports:
    def test_a_pip_audit_vulnerability_is_a_finding_with_its_fixes(self) -> None:
        outcome = audit.pip_audit_findings(PIP_AUDIT_REPORT)
        assert outcome.audited == 2
        assert outcome.findings == (
            audit.Finding(
                "pypi",
                "jinja2",
                "3.1.2",
                ("GHSA-h5c8-rqwp-cp95", "PYSEC-2024-1"),
                ("3.1.3", "3.1.4"),
            ),
        )

    def test_a_clean_pip_audit_report_has_no_findings(self) -> None:
        clean = {"dependencies": [{"name": "fastapi", "version": "0.165.0", "vulns": []}]}
        assert audit.pip_audit_findings(clean) == audit.Outcome(audited=1)

    def test_an_npm_vulnerability_is_a_finding(self) -> None:
        outcome = audit.npm_audit_findings(NPM_REPORT)
        assert [finding.name for finding in outcome.findings] == ["dompurify"]
        assert outcome.findings[0].advisories == ("https://github.com/advisories/GHSA-x",)
        assert outcome.unchecked is None

    def test_a_registry_without_the_audit_api_is_unchecked_not_clean(self) -> None:
        refused = {"message": "405 Method Not Allowed - POST https://registry.npmjs.org/-/npm/v1/"}
        outcome = audit.npm_audit_findings(refused)
        assert outcome.findings == ()
        assert outcome.unchecked is not None
        assert "405" in outcome.unchecked
        assert "NOT CHECKED" in audit.render("npm", outcome)[0]


class TestExitStatus:
    def test_a_finding_fails_and_an_unreachable_service_does_not(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        unreachable = audit.Outcome(unchecked="https://pypi.org unreachable")
        monkeypatch.setattr(audit, "audit_python", lambda: unreachable)
        monkeypatch.setattr(audit, "audit_npm", lambda: audit.npm_audit_findings(NPM_REPORT))
        assert audit.main() == 1
        printed = capsys.readouterr().out
        assert "NOT CHECKED: https://pypi.org unreachable" in printed
        assert "dompurify <3.1.3" in printed

        monkeypatch.setattr(audit, "audit_npm", lambda: unreachable)
        assert audit.main() == 0
