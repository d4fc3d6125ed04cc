"""checkov over ``infra/``: zero failed checks, and every skip is inline with its reason.

checkov pins old dependencies, so it lives in its own virtual environment
(``.venv-checkov``, created from ``requirements-checkov.txt``). Without it the
test is skipped with the reason shown, except in CI, where it fails.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.infra

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
SETUP = "python3 -m venv .venv-checkov && .venv-checkov/bin/pip install -r requirements-checkov.txt"
#: `// checkov:skip=CKV_AZURE_35:why, on the same line`
SKIP_COMMENT = re.compile(r"checkov:skip=(?P<id>[A-Z0-9_]+)(?::(?P<reason>.*))?$")


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    if not CHECKOV.exists():
        message = f"checkov is not installed at {CHECKOV.relative_to(ROOT)}; create it with: {SETUP}"
        if _in_ci():
            pytest.fail(message)
        pytest.skip(message)
    completed = subprocess.run(
        # --skip-download: no calls to the vendor's platform (offline, and no data leaves the machine).
        [str(CHECKOV), "--framework", "bicep", "--directory", str(INFRA), "--output", "json", "--skip-download"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={**os.environ, "BC_API_KEY": "", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    # Exit code 1 means "failed checks", which the assertions below report in detail.
    assert completed.returncode in (0, 1), completed.stderr[-4000:]
    parsed = json.loads(completed.stdout)
    reports = parsed if isinstance(parsed, list) else [parsed]
    [bicep] = [r for r in reports if r.get("check_type") == "bicep"]
    result: dict[str, Any] = bicep
    return result


def _skip_comments() -> list[tuple[Path, int, str, str]]:
    found = []
    for path in sorted(INFRA.rglob("*.bicep")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            match = SKIP_COMMENT.search(line)
            if match:
                found.append((path, number, match["id"], (match["reason"] or "").strip()))
    return found


def test_checkov_scanned_the_templates(report: dict[str, Any]) -> None:
    summary = report["summary"]
    assert summary["parsing_errors"] == 0, report["results"].get("parsing_errors")
    assert summary["passed"] > 0
    scanned = {r["file_path"] for kind in ("passed_checks", "skipped_checks") for r in report["results"].get(kind, [])}
    assert {"/app/storage.bicep", "/app/function.bicep"} <= scanned, scanned


def test_checkov_reports_no_failed_check(report: dict[str, Any]) -> None:
    failed = [
        f"{c['check_id']} {c['check_name']} -- {c['resource']} ({c['file_path']}:{c['file_line_range']})"
        for c in report["results"].get("failed_checks", [])
    ]
    assert report["summary"]["failed"] == 0, "\n".join(failed)
    assert not failed


def test_every_skip_is_inline_with_a_reason(report: dict[str, Any]) -> None:
    comments = _skip_comments()
    for path, number, check_id, reason in comments:
        assert len(reason) >= 20, f"{path.relative_to(ROOT)}:{number}: skip of {check_id} needs a one-line reason"
    skipped = report["results"].get("skipped_checks", [])
    for check in skipped:
        assert check["check_result"].get("suppress_comment", "").strip(), f"{check['check_id']} skipped without reason"
    # Each inline skip still suppresses something: a stale skip would hide a future finding.
    assert {c[2] for c in comments} == {c["check_id"] for c in skipped}
    assert report["summary"]["skipped"] == len(skipped)
