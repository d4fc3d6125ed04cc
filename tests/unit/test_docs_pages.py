"""The user's documentation as a whole (README.md, docs/*.md, BENCHMARKS.md).

- The README is a guide: at most 300 lines.
- Every relative link and anchor of every page resolves (GitHub's anchors: the heading, lower-cased, without
  punctuation, spaces as hyphens).
- Every command line of every page's ```bash blocks is run by a test named here (RUN_BY), or is said here not to
  be runnable in the tests, with the reason (NOT_RUN). A command added to a page without a test fails here, and so
  does a claim whose test is gone, does not read that section, or no longer matches any line.
- Every ```python block of every page is executed by a test named here (PYTHON_RUN_BY).

Each check is proven by a mutant below: a copy of the pages broken on purpose.
"""

from __future__ import annotations

import ast
import itertools
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

from tests import docs_support
from tests.docs_support import ROOT

README_MAX_LINES: Final = 300


def test_the_readme_is_a_guide_of_at_most_300_lines() -> None:
    lines = docs_support.README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail to a page of docs/"


def test_docs_has_a_page_per_concern_and_the_readme_maps_every_page() -> None:
    names = {page.name for page in docs_support.DOCS.glob("*.md")}
    concerns = {"webhook", "handlers", "operations", "cli", "deploy", "architecture", "limits"}
    assert {f"{concern}.md" for concern in concerns} <= names
    readme = docs_support.README.read_text(encoding="utf-8")
    for name in [*sorted(names), "BENCHMARKS.md"]:
        link = name if name == "BENCHMARKS.md" else f"docs/{name}"
        assert f"]({link})" in readme, f"the README's map of docs/ lacks {link}"


# --- Links and anchors -------------------------------------------------------------------------------------


def slug(heading: str) -> str:
    """GitHub's anchor of a heading line: its text lower-cased, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"^#+\s+", "", heading).strip()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading: its text
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(content: str) -> set[str]:
    """Every anchor of a page; a repeated heading gets ``-1``, ``-2``... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for _, line in docs_support.headings(content):
        base = slug(line)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(content: str) -> list[str]:
    """The targets of the page's Markdown links, outside fenced blocks and inline code."""
    prose = re.sub(r"^[ \t]*```.*?^[ \t]*```[ \t]*$", "", content, flags=re.DOTALL | re.MULTILINE)
    prose = re.sub(r"`[^`\n]*`", "", prose)
    return re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", prose)


def broken_links(texts: dict[Path, str], root: Path = ROOT) -> list[str]:
    """What does not resolve, as ``page: target (why)``; ``texts`` holds the pages' text by path."""
    broken = []
    for page, content in texts.items():
        for target in links(content):
            if re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:|//", target):
                continue  # an absolute URL: not ours to check here
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            name = f"{page.relative_to(root)}: {target}"
            if not resolved.is_relative_to(root.resolve()) or not (resolved in texts or resolved.exists()):
                broken.append(f"{name} (no such file)")
            elif anchor:
                if resolved.suffix != ".md":
                    broken.append(f"{name} (an anchor into a file that is not a page)")
                    continue
                content_there = texts.get(resolved) or resolved.read_text(encoding="utf-8")
                if anchor not in anchors(content_there):
                    broken.append(f"{name} (no heading with that anchor)")
    return broken


def the_pages() -> dict[Path, str]:
    return {page.resolve(): page.read_text(encoding="utf-8") for page in docs_support.pages()}


def test_every_relative_link_and_anchor_resolves() -> None:
    pages = the_pages()
    assert sum(len(links(text)) for text in pages.values()) >= 30  # the pages do link to each other
    assert broken_links(pages) == []


def test_the_anchors_are_githubs() -> None:
    assert slug("## The operator CLI (`dpctl`)") == "the-operator-cli-dpctl"
    assert slug("## After the first deploy: `make verify-deploy`") == "after-the-first-deploy-make-verify-deploy"
    assert slug("## Deploy to Azure, in brief") == "deploy-to-azure-in-brief"
    assert anchors("# A\n## B\n```\n# not a heading\n```\n## B\n") == {"a", "b", "b-1"}


@pytest.mark.parametrize(
    ("page", "old", "new", "named"),
    [
        ("README.md", "](docs/handlers.md)", "](docs/handler.md)", "README.md: docs/handler.md (no such file)"),
        (
            "docs/handlers.md",
            "](webhook.md#what-it-receives)",
            "](webhook.md#what-it-receive)",
            "docs/handlers.md: webhook.md#what-it-receive (no heading with that anchor)",
        ),
        (
            "docs/deploy.md",
            "](#enrichment-and-catch-up-in-azure)",
            "](#enrichment-and-catchup-in-azure)",
            "docs/deploy.md: #enrichment-and-catchup-in-azure (no heading with that anchor)",
        ),
        ("docs/development.md", "](../BENCHMARKS.md)", "](BENCHMARKS.md)", "docs/development.md: BENCHMARKS.md (no"),
    ],
)
def test_a_broken_link_or_anchor_is_named(page: str, old: str, new: str, named: str) -> None:
    pages = the_pages()
    path = (ROOT / page).resolve()
    assert old in pages[path]
    pages[path] = pages[path].replace(old, new, 1)
    [broken] = broken_links(pages)
    assert broken.startswith(named), broken


def test_a_renamed_heading_breaks_the_links_to_it() -> None:
    pages = the_pages()
    path = (docs_support.DOCS / "operations.md").resolve()
    pages[path] = pages[path].replace("\n## Parked events\n", "\n## Parked\n")
    assert sorted(broken_links(pages)) == [
        "docs/cli.md: operations.md#parked-events (no heading with that anchor)",
    ]


# --- Every command line is run by a test, or said not to be runnable here ----------------------------------


@dataclass(frozen=True)
class Claim:
    """The command lines of a section (``heading``; None: of any page) that ``pattern`` matches whole are run by
    ``test``, a ``path::function`` whose module reads that section (names its heading; ``all_commands`` for None).
    """

    heading: str | None
    pattern: str
    test: str


MAKE_RUN = "tests/e2e/devtools/test_make_run.py::test_make_run_prints_a_working_curl_and_stops_both_processes"
TOOLING = "tests/integration/devtools/runner/test_docs_and_tooling.py"
LOOP = "tests/e2e/devtools/test_altinn_loop.py::test_make_run_with_altinn_sim_starts_the_simulator_beside_the_app_and_stops_it"  # noqa: E501
CLI_DOCS = "tests/unit/devtools/cli/test_cli_docs.py"

RUN_BY: Final = [
    Claim("## Quick start", r"make run", MAKE_RUN),
    Claim("## Quick start", r"make run ARGS=--altinn-sim", LOOP),
    Claim("## The whole loop on one machine", r"make run ARGS=--altinn-sim", LOOP),
    Claim(
        "## The whole loop on one machine",
        r"source \.venv/bin/activate",
        f"{CLI_DOCS}::test_the_whole_loops_activate_line_puts_the_installed_dpctl_first_on_path",
    ),
    Claim(None, r"dpctl .*", f"{CLI_DOCS}::test_every_dpctl_command_and_option_of_the_docs_exists"),
    Claim(
        "## Against TT02 and production: one flag",
        r"export .*",
        f"{CLI_DOCS}::test_the_tt02_exports_name_what_dpctl_reads_and_the_key_that_keygen_writes",
    ),
    Claim(
        "## The contract suite against TT02",
        r"export .*|make contract-tt02",
        f"{TOOLING}::test_the_contract_suite_against_tt02_as_written_skips_without_credentials_and_exits_0",
    ),
    Claim(
        None,
        r"make verify-deploy.*",
        "tests/infra/test_verify_deploy.py::test_the_docs_verify_deploy_lines_pass_on_a_healthy_deployment",
    ),
    Claim(
        "## Without azd: `az` and Core Tools",
        r".*\bsh infra/hooks/\w+\.sh",
        "tests/infra/test_hooks.py::test_the_docs_hook_lines_run_as_written",
    ),
    Claim("## The webhook URL for Altinn", r"curl .*validatesubscription.*", MAKE_RUN),
    Claim(
        "## With Azure Functions Core Tools",
        r"make install|node_modules/\.bin/azurite .*|\.venv/bin/python -m devtools\.export_catalog --provision",
        f"{TOOLING}::test_core_tools_commands_as_written_up_to_func_start",
    ),
    Claim("## The local runner", r"curl .*/admin/functions/.*", MAKE_RUN),
    Claim(
        "## The local runner",
        r"\.venv/bin/python -m devtools\.runner --help",
        f"{TOOLING}::test_runner_help_as_written",
    ),
    Claim(
        "## The local runner",
        r"\.venv/bin/python -m devtools\.runner .*--functions .*",
        f"{TOOLING}::test_runner_functions_command_as_written",
    ),
    Claim("## The dialog state", r"curl -s .*/api/dialogs/.*", MAKE_RUN),
    Claim(
        "## Adding an event type",
        r"make catalog|make test",
        "tests/e2e/events/test_adding_a_type.py::test_the_docs_steps_add_a_type_that_is_routed_processed_documented_and_deployed",
    ),
    Claim("## Benchmarks", r"make bench ARGS=--help", f"{TOOLING}::test_bench_help_as_written"),
]

AZURE: Final = (
    "needs a real Azure subscription, which no test reaches; what it deploys is checked offline instead "
    "(tests/infra/: the templates, checkov, the hooks against a fake az, verify-deploy against a fake ARM)"
)
#: Command lines no test can run here, each with the reason (matched whole).
NOT_RUN: Final = [
    (r"(\w+=\S* )*az .*|\w+=\$\(az .*|echo .*\$\(az .*", f"the Azure CLI: {AZURE}"),
    (r"azd .*", f"the Azure Developer CLI: {AZURE}"),
    (
        r"(source \S+ && )?func .*",
        "Azure Functions Core Tools, which is not installed here (its installer downloads the host); "
        "the lines before it run in test_core_tools_commands_as_written_up_to_func_start",
    ),
    (r"[A-Z_]+=[\w.-]+", "names the resource group for the az lines that follow"),
    (r"make test", "the whole suite, this one: .ci/run runs it"),
    (
        r"make bench( ARGS=--quick)?",
        "a benchmark of 20 (or 4) minutes that prints figures and never fails; `make bench ARGS=--help` is run",
    ),
]


def claimed_by(where: docs_support.Section, line: str, claims: list[Claim]) -> list[Claim]:
    return [c for c in claims if c.heading in (None, where.heading) and re.fullmatch(c.pattern, line)]


def not_runnable(line: str) -> str | None:
    return next((reason for pattern, reason in NOT_RUN if re.fullmatch(pattern, line)), None)


def unclaimed(root: Path = ROOT, claims: list[Claim] = RUN_BY) -> list[str]:
    return [
        f"{where.where}: {line}"
        for where, line in docs_support.all_commands(root)
        if not claimed_by(where, line, claims) and not_runnable(line) is None
    ]


def claim_problems(root: Path = ROOT, claims: list[Claim] = RUN_BY) -> list[str]:
    problems = []
    shown = docs_support.all_commands(root)
    for claim in claims:
        path, _, function = claim.test.partition("::")
        file = ROOT / path
        if not file.is_file():
            problems.append(f"{claim.test}: no such test file")
            continue
        source = file.read_text(encoding="utf-8")
        defined = {n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)}
        if function not in defined:
            problems.append(f"{claim.test}: no such test")
        reads = "all_commands" if claim.heading is None else claim.heading
        if reads not in source:
            problems.append(f"{claim.test}: does not read {reads!r}")
        if not any(claim in claimed_by(where, line, [claim]) for where, line in shown):
            problems.append(f"{claim.heading}: {claim.pattern!r} matches no command line of the docs")
    return problems


def test_every_command_line_of_every_page_is_run_by_a_test_or_said_not_runnable() -> None:
    shown = docs_support.all_commands()
    assert len(shown) >= 80
    assert {where.page.name for where, _ in shown} >= {"README.md", "cli.md", "deploy.md", "BENCHMARKS.md"}
    assert unclaimed() == []


def test_every_claim_names_a_test_that_reads_its_section_and_matches_a_line() -> None:
    assert claim_problems() == []


def test_every_reason_not_to_run_still_applies_to_a_line() -> None:
    lines = [line for _, line in docs_support.all_commands()]
    for pattern, reason in NOT_RUN:
        assert any(re.fullmatch(pattern, line) for line in lines), f"{pattern!r} ({reason}) matches no line"


def copy_of_the_pages(tmp_path: Path) -> Path:
    for page in docs_support.pages():
        target = tmp_path / page.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(page, target)
    return tmp_path


def test_a_command_added_without_a_test_is_named(tmp_path: Path) -> None:
    root = copy_of_the_pages(tmp_path)
    assert unclaimed(root) == []
    page = root / "docs" / "operations.md"
    page.write_text(
        page.read_text(encoding="utf-8").replace(
            "\n## Housekeeping\n", "\n## Housekeeping\n\n```bash\ncurl -s http://localhost:7071/api/sweep  # now\n```\n"
        ),
        encoding="utf-8",
    )
    assert unclaimed(root) == ["docs/operations.md: '## Housekeeping': curl -s http://localhost:7071/api/sweep"]


def test_a_claimed_line_moved_to_a_section_its_test_does_not_read_is_named(tmp_path: Path) -> None:
    root = copy_of_the_pages(tmp_path)
    page = root / "docs" / "development.md"
    text = page.read_text(encoding="utf-8")
    line = ".venv/bin/python -m devtools.runner --help\n"
    assert line in text
    page.write_text(
        text.replace(line, "").replace("```bash\nmake bench ", f"```bash\n{line}make bench "), encoding="utf-8"
    )
    assert unclaimed(root) == ["docs/development.md: '## Benchmarks': .venv/bin/python -m devtools.runner --help"]


def test_a_claim_whose_test_is_gone_or_reads_another_section_is_named() -> None:
    gone = Claim("## The local runner", r"\.venv/bin/python -m devtools\.runner --help", f"{TOOLING}::test_gone")
    elsewhere = Claim("## Housekeeping", r"dpctl .*", "tests/unit/test_logs.py::test_gone_too")
    stale = Claim("## The local runner", r"make nothing", f"{TOOLING}::test_runner_help_as_written")
    assert claim_problems(claims=[gone, elsewhere, stale]) == [
        f"{TOOLING}::test_gone: no such test",
        "tests/unit/test_logs.py::test_gone_too: no such test",
        "tests/unit/test_logs.py::test_gone_too: does not read '## Housekeeping'",
        "## Housekeeping: 'dpctl .*' matches no command line of the docs",
        "## The local runner: 'make nothing' matches no command line of the docs",
    ]


# --- Every python block is executed by a test -------------------------------------------------------------

#: (section, what the block defines) -> the test that executes it.
PYTHON_RUN_BY: Final = {
    ("## Writing a handler", "def on_signed"): "tests/unit/devtools/test_docs.py",
    ("## Writing your handler", "def open_case"): "tests/unit/handlers/test_docs_examples.py",
    ("## Writing your handler", "def archive"): "tests/unit/handlers/test_docs_examples.py",
    ("## Writing your handler", "def follow_up"): "tests/unit/handlers/test_docs_examples.py",
    ("## Writing your handler", "def to_archive"): "tests/unit/handlers/test_docs_examples.py",
    ("## Adding an event type", "EventType("): "tests/e2e/events/test_adding_a_type.py",
    ("## Adding an event type", "class ActivityExample("): "tests/e2e/events/test_adding_a_type.py",
}


def python_unclaimed(root: Path = ROOT) -> list[str]:
    found = []
    for path in docs_support.pages(root):
        content = path.read_text(encoding="utf-8")
        lines = content.splitlines()
        marks = [(0, ""), *docs_support.headings(content), (len(lines), "")]
        for (start, heading), (end, _) in itertools.pairwise(marks):
            for block in docs_support.python_blocks("\n".join(lines[start:end])):
                if not any(h == heading and marker in block for (h, marker) in PYTHON_RUN_BY):
                    found.append(f"{path.relative_to(root)}: {heading!r}: {block.splitlines()[0]}")
    return found


def test_every_python_block_is_executed_by_a_test() -> None:
    assert python_unclaimed() == []
    for (heading, marker), test in PYTHON_RUN_BY.items():
        source = (ROOT / test).read_text(encoding="utf-8")
        assert heading in source, f"{test} does not read {heading!r}"
        assert any(marker in block for block in docs_support.python_blocks(docs_support.section(heading).text)), (
            heading,
            marker,
        )


def test_a_python_block_added_without_a_test_is_named(tmp_path: Path) -> None:
    root = copy_of_the_pages(tmp_path)
    page = root / "docs" / "handlers.md"
    page.write_text(
        page.read_text(encoding="utf-8").replace(
            "\n## The dialog state\n", "\n## The dialog state\n\n```python\nimport shared.events\n```\n"
        ),
        encoding="utf-8",
    )
    assert python_unclaimed(root) == ["docs/handlers.md: '## The dialog state': import shared.events"]
