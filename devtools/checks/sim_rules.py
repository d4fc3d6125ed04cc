"""Every rule of the Altinn simulator (``devtools/altinn_sim/``) cites the real service's source, and the code says
where it enforces each one: read from the simulator's source, without running it.

The convention:

- A module's docstring lists its rules, one entry each: a line ``- RULE-ID: what the simulator does.``, then
  indented lines that belong to it. A citation is ``Owner/repo path/to/file (symbol)`` on one line: the
  repository one of :data:`SOURCES`, the path a file in it, the symbol in parentheses what to look for in that
  file (a method, an SQL function, a setting, a heading). Every entry cites at least one file, except two
  kinds that imitate nothing and say so: ``FAULT-…`` entries (a fault mode, off by default: the entry says
  "fault mode") and ``SIM-…`` entries (the simulator's own controls: the entry says "simulator only").
- The line that enforces a rule carries a comment that starts with its id: ``# RULE-ID`` (several:
  ``# A, B``), optionally followed by ``:`` and words.
- Every answer the simulator builds with a literal status of 300 or more (``Answer(404, …)``,
  ``self._send(415, …)``, ``Refused(403)``, ``TokenRefused(400, …)``) carries a marker: on its statement, on
  the condition of the ``if`` (or the ``except``) that leads to it, or on a comment line just above.

Findings: a marker naming no entry; an entry no marker names; an id listed twice; an entry without a well-formed
citation of a known source (or, for FAULT/SIM, without its words); an answer without a marker.

    python -m devtools.checks.sim_rules                  # prints every finding; exit 1 if any
    python -m devtools.checks.sim_rules --mirrors DIR    # also: each cited file and symbol exists in the
                                                         # sources' git mirrors (DIR/<owner>+<repo>/repo)
"""

from __future__ import annotations

import argparse
import ast
import io
import re
import subprocess
import sys
import tokenize
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from devtools.checks.layers import ROOT, sources

PACKAGE: Final = "devtools.altinn_sim"
#: The sources a rule may cite, with the commit the simulator was checked against.
SOURCES: Final[Mapping[str, str]] = {
    "Altinn/altinn-events": "d7232ac8725bd6d7439fdba921dc4f8d0eba8811",
    "Altinn/dialogporten": "743f07fdebd887759d29f8a8bb4f1fe6e9fd664b",
    "Altinn/altinn-authentication": "ad4f6f3671c0ba40bf923003688f5949c6a89aa2",
    "felleslosninger/docs": "edc2469b59ce9a914c56d118cd2d6d331db3e176",
}
RULE_ID: Final = r"[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+"
ENTRY: Final = re.compile(rf"^- (?P<id>{RULE_ID}): ")
CITATION: Final = re.compile(r"(?P<repo>[\w.-]+/[\w.-]+) (?P<path>[\w./-]+\.\w+) \((?P<symbol>[^()]+)\)")
MARKER: Final = re.compile(rf"^#\s*(?P<ids>{RULE_ID}(?:,\s*{RULE_ID})*)\b")
#: Calls whose first argument is an HTTP status the simulator answers with.
ANSWERS: Final = frozenset({"Answer", "_send", "Refused", "TokenRefused", "_problem"})
EXEMPT: Final[Mapping[str, str]] = {"FAULT": "fault mode", "SIM": "simulator only"}


@dataclass(frozen=True)
class Entry:
    rule: str
    module: str
    text: str


@dataclass(frozen=True)
class Citation:
    rule: str
    repo: str
    path: str
    symbol: str


def entries(module: str, source: str) -> list[Entry]:
    """The rule entries of a module's docstring."""
    doc = ast.get_docstring(ast.parse(source), clean=True) or ""
    found: list[Entry] = []
    current: list[str] = []
    rule = ""
    for line in [*doc.splitlines(), ""]:
        match = ENTRY.match(line)
        if match or (current and not line.startswith("  ")):
            if current:
                found.append(Entry(rule, module, " ".join(part.strip() for part in current)))
            current = []
        if match:
            rule = match["id"]
            current = [line]
        elif current:
            current.append(line)
    return found


def citations(entry: Entry) -> list[Citation]:
    return [Citation(entry.rule, m["repo"], m["path"], m["symbol"]) for m in CITATION.finditer(entry.text)]


def markers(source: str) -> dict[int, list[str]]:
    """Line number -> the rule ids its comment names."""
    found: dict[int, list[str]] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            match = MARKER.match(token.string)
            if match:
                found[token.start[0]] = re.split(r",\s*", match["ids"])
    return found


def _status_literal(call: ast.Call) -> int | None:
    func = call.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    if name not in ANSWERS or not call.args:
        return None
    first = call.args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, int) and not isinstance(first.value, bool):
        return first.value
    return None


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def unmarked_answers(source: str) -> list[int]:
    """Lines of answers with a literal status >= 300 that no marker covers."""
    tree = ast.parse(source)
    marked = markers(source)
    comment_only = {n for n, line in enumerate(source.splitlines(), 1) if line.strip().startswith("#")}
    parents = _parents(tree)
    missing = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or (_status_literal(node) or 0) < 300:
            continue
        above_node: ast.AST = node
        while not isinstance(above_node, ast.stmt):
            above_node = parents[above_node]
        statement: ast.stmt = above_node
        lines = set(range(statement.lineno, (statement.end_lineno or statement.lineno) + 1))
        above = statement.lineno - 1
        while above in comment_only:  # a comment block just above the statement
            lines.add(above)
            above -= 1
        guard = parents.get(statement)
        while guard is not None and not isinstance(guard, ast.If | ast.ExceptHandler | ast.FunctionDef):
            guard = parents.get(guard)
        if isinstance(guard, ast.If):
            lines |= set(range(guard.lineno, (guard.test.end_lineno or guard.lineno) + 1))
        elif isinstance(guard, ast.ExceptHandler):
            lines.add(guard.lineno)
        if not lines & marked.keys():
            missing.append(node.lineno)
    return missing


def findings(modules: Mapping[str, str]) -> list[str]:
    found: list[str] = []
    listed: dict[str, Entry] = {}
    for module, source in sorted(modules.items()):
        for entry in entries(module, source):
            if entry.rule in listed:
                found.append(f"{module}: {entry.rule} is listed twice (also in {listed[entry.rule].module})")
            listed[entry.rule] = entry
    named: set[str] = set()
    for module, source in sorted(modules.items()):
        for line, ids in sorted(markers(source).items()):
            for rule in ids:
                named.add(rule)
                if rule not in listed:
                    found.append(f"{module}:{line}: marker {rule} names no rule entry")
        for line in unmarked_answers(source):
            found.append(f"{module}:{line}: an answer with a literal status but no rule marker")
    for rule, entry in sorted(listed.items()):
        if rule not in named:
            found.append(f"{entry.module}: {rule} is listed but no line enforces it (no # {rule} marker)")
        kind = rule.split("-", 1)[0]
        if kind in EXEMPT:
            if EXEMPT[kind] not in entry.text:
                found.append(f"{entry.module}: {rule} must say {EXEMPT[kind]!r}")
            continue
        cited = citations(entry)
        if not cited:
            found.append(f"{entry.module}: {rule} cites no source (Owner/repo path (symbol))")
        for citation in cited:
            if citation.repo not in SOURCES:
                found.append(f"{entry.module}: {rule} cites {citation.repo}, not one of {', '.join(SOURCES)}")
    return found


def _git_show(mirror: Path, commit: str, path: str) -> str | None:
    done = subprocess.run(
        ["git", "-C", str(mirror), "show", f"{commit}:{path}"], capture_output=True, text=True, check=False
    )
    return done.stdout if done.returncode == 0 else None


def missing_in_mirrors(modules: Mapping[str, str], mirrors: Path) -> list[str]:
    """Each cited file at the pinned commit, and the symbol's last word in it (a mirror per source)."""
    found = []
    cache: dict[tuple[str, str], str | None] = {}
    for module, source in sorted(modules.items()):
        for entry in entries(module, source):
            for citation in citations(entry):
                if citation.repo not in SOURCES:
                    continue
                mirror = mirrors / citation.repo.replace("/", "+") / "repo"
                key = (citation.repo, citation.path)
                if key not in cache:
                    cache[key] = _git_show(mirror, SOURCES[citation.repo], citation.path)
                text = cache[key]
                if text is None:
                    found.append(f"{module}: {entry.rule}: {citation.repo} has no {citation.path}")
                    continue
                word = re.split(r"[.\s]", citation.symbol.strip())[-1] or citation.symbol
                if citation.symbol not in text and word not in text:
                    found.append(f"{module}: {entry.rule}: {citation.path} does not contain {citation.symbol!r}")
    return found


def simulator_sources(root: Path = ROOT) -> dict[str, str]:
    return sources(root, PACKAGE.replace(".", "/"))


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.checks.sim_rules", description=__doc__.split("\n")[0])
    parser.add_argument("--mirrors", type=Path, help="folder of the sources' git mirrors (<owner>+<repo>/repo)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    modules = simulator_sources()
    found = findings(modules)
    if args.mirrors:
        found += missing_in_mirrors(modules, args.mirrors)
    for line in found:
        print(line)
    print(f"simulator rules: {len(found)} finding(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
