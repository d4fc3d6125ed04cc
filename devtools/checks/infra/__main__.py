"""python -m devtools.checks.infra [ROOT]: check infra/*.bicep offline; exit 1 on a finding."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from devtools.checks.infra import ALL_RULES, check
from devtools.checks.infra.bicep import templates
from devtools.checks.infra.sdk_models import api_versions

ROOT = Path(__file__).resolve().parents[3]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.checks.infra", description=__doc__)
    parser.add_argument("root", nargs="?", type=Path, default=ROOT, help="the checkout (holds infra/)")
    parser.add_argument("--rule", action="append", choices=sorted(ALL_RULES), help="run only this rule (repeatable)")
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    findings = check(root, args.rule)
    notes, unchecked = api_versions(templates(root / "infra"), root)
    for note in notes:
        print(f"api-version: {note}")
    for line in unchecked:
        print(f"unchecked: {line}")
    for finding in findings:
        print(finding)
    rules = ", ".join(args.rule or sorted(ALL_RULES))
    print(f"infracheck: {len(findings)} finding(s) from {rules}; {len(notes)} API version difference(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
