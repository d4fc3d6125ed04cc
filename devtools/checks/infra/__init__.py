"""Offline checks of infra/*.bicep that stand in for the Bicep compiler and ARM.

No Bicep CLI or Azure is needed: the templates are parsed with pycep and each
rule (``rules.py``, ``sdk_models.py``) reads the parsed tree. ``check()`` runs
them all; ``python -m devtools.checks.infra`` prints the findings and the API
version differences against the SDK models, and exits 1 on any finding.
"""

from __future__ import annotations

from pathlib import Path

from devtools.checks.infra.bicep import Template, templates
from devtools.checks.infra.rules import RULES, Finding, Rule
from devtools.checks.infra.sdk_models import sdk_properties

ALL_RULES: dict[str, Rule] = {**RULES, "sdk-properties": sdk_properties}


def check(root: Path, rules: list[str] | None = None) -> list[Finding]:
    """Every finding of the chosen rules (all by default) over ``root/infra``."""
    parsed: list[Template] = templates(root / "infra")
    findings: list[Finding] = []
    for name, rule in ALL_RULES.items():
        if rules is None or name in rules:
            findings += rule(parsed, root)
    return sorted(findings)


__all__ = ["ALL_RULES", "Finding", "check"]
