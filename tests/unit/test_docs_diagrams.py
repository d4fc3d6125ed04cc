"""The docs' pictures (```mermaid blocks) name only what exists.

The convention, stated in docs/architecture.md, checked here for every diagram of every page:
- a path (a word with a ``/``, or a file name such as ``function_app.py``) is a file or folder of this tree;
- a queue (``dialogporten-…``) is one the app creates (infra/catalog.json) or a claim-check container;
  ``dialogporten-{type}`` stands for the queue of the event's type and ``dialogporten-{type}-poison`` for its twin;
- ``dpctl`` followed by words is a command of dpctl (``dpctl <words> --help`` answers), and the ``--options``
  right after it are options of that command;
- ``make X`` is a target of the Makefile; ``python -m X`` an importable module;
- ``/api/X`` is a route of the app's HTTP functions; ``X table`` a table the app creates.
Each rule is proven by a mutant: the real diagram with one name changed to one that does not exist.
"""

from __future__ import annotations

import importlib.util
import json
import re
from functools import cache
from typing import Any, Final

import pytest
import typer.main

from devtools.cli.app import app as dpctl_app
from tests import docs_support
from tests.cli_support import dpctl
from tests.conftest import ROOT, app_functions

PLACEHOLDERS: Final = {"dialogporten-{type}", "dialogporten-{type}-poison"}
CATALOG: Final = json.loads((ROOT / "infra" / "catalog.json").read_text(encoding="utf-8"))
FILE_NAME: Final = r"[\w-]+\.(?:py|json|bicep|md|sh|toml|txt|yaml)"


@cache
def routes() -> set[str]:
    found = set()
    for function in app_functions():
        trigger = function.get_trigger()
        if trigger.get_binding_name() == "httpTrigger":
            found.add("/api/" + trigger.route)
    return found


@cache
def make_targets() -> set[str]:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([a-z][\w.-]*):", makefile, flags=re.MULTILINE))


def dpctl_problems(text: str) -> list[str]:
    """Each ``dpctl …`` of the text: its words walk dpctl's command tree, its options are the command's own."""
    problems = []
    root = typer.main.get_command(dpctl_app)
    for start in re.finditer(r"\bdpctl\b", text):
        node: Any = root
        path: list[str] = []
        options: list[str] = []
        rest = text[start.end() :]
        while match := re.match(r"[ \t]+(--[a-z][\w-]*|[a-z][a-z-]*)(?=$|[\s,.:)(<])", rest):
            word = match.group(1)
            if word.startswith("--"):
                options.append(word)
            elif getattr(node, "commands", None) is not None and not options:  # a group: the word is a command
                if word not in node.commands:
                    problems.append(
                        f"dpctl {' '.join([*path, word])}: {word!r} is not a command of dpctl {' '.join(path)}"
                    )
                    break
                node = node.commands[word]
                path.append(word)
            else:
                break  # prose after a whole command
            rest = rest[match.end() :]
        else:
            if not path:
                continue  # dpctl itself, named as a participant
            ran = dpctl(*path, "--help")
            if ran.code != 0 or f"Usage: dpctl {' '.join(path)}" not in " ".join(ran.out.split()):
                problems.append(f"dpctl {' '.join(path)}: `--help` fails ({ran.code})")
            problems += [f"dpctl {' '.join(path)}: no option {o}" for o in options if o not in ran.out]
    return problems


def diagram_problems(diagram: str) -> list[str]:
    """What the diagram names that does not exist."""
    text = re.sub(r"<br\s*/?>", " ", diagram)
    text = re.sub(r"https?://\S+", " ", text)
    problems = []
    for path in re.findall(rf"(?<![\w/.:-])((?:[\w.-]+/)+[\w.-]*|{FILE_NAME})(?![\w/])", text):
        if not (ROOT / path).exists():
            problems.append(f"{path}: no such file or folder")
    queues = set(CATALOG["queues"]) | set(CATALOG["containers"].values()) | PLACEHOLDERS
    for queue in re.findall(r"\bdialogporten-[a-z0-9{}-]*[a-z0-9}]", text):
        if queue not in queues:
            problems.append(f"{queue}: no such queue")
    for route in re.findall(r"(?<![\w.])/api/[\w{}/-]*[\w}]", text):
        if route not in routes():
            problems.append(f"{route}: no such route")
    for target in re.findall(r"\bmake ([a-z][\w.-]*)", text):
        if target not in make_targets():
            problems.append(f"make {target}: no such target")
    for module in re.findall(r"\bpython -m ([\w.]*\w)", text):
        if importlib.util.find_spec(module) is None:
            problems.append(f"python -m {module}: no such module")
    for table in re.findall(r"\b(\w+) table\b", text):
        if table not in CATALOG["tables"]:
            problems.append(f"{table} table: no such table")
    return problems + dpctl_problems(text)


def diagrams() -> list[tuple[str, str]]:
    return [
        (str(page.relative_to(ROOT)), block)
        for page in docs_support.pages()
        for block in docs_support.mermaid_blocks(page.read_text(encoding="utf-8"))
    ]


def test_every_diagram_names_only_what_exists() -> None:
    shown = diagrams()
    assert [page for page, _ in shown] == ["README.md", "docs/architecture.md", "docs/architecture.md"]
    for page, diagram in shown:
        assert diagram_problems(diagram) == [], page


def test_the_readme_shows_the_architectures_first_picture() -> None:
    flow, loop = docs_support.mermaid_blocks(docs_support.section("# Architecture").text)
    [readme] = docs_support.mermaid_blocks(docs_support.README.read_text(encoding="utf-8"))
    assert readme == flow
    assert flow.startswith("sequenceDiagram\n")
    participants = re.findall(r"^\s*participant \w+ as (.*)$", flow, flags=re.MULTILINE)
    assert [p.split("<br/>")[0] for p in participants] == [
        "Altinn Events", "webhook", "dialogporten-{type}", "dialogporten-unrouted", "queue function", "dialogs table",
        "dialogporten-{type}-poison",
    ]  # fmt: skip
    for branch in ("dpctl parked reroute", "dpctl poison replay", "RetryLater", "CannotSucceed"):
        assert branch in flow
    for part in ("make run ARGS=--altinn-sim", "devtools/altinn_sim/", "devtools/runner/", "dpctl send --to-sim"):
        assert part in loop


def the_flow() -> str:
    return docs_support.mermaid_blocks(docs_support.section("## The flow").text)[0]


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("shared/processing/pipeline.py", "shared/processing/pipelines.py", "shared/processing/pipelines.py: no such"),
        ("shared/functions/webhook.py", "shared/functions/hook.py", "shared/functions/hook.py: no such file"),
        ("shared/handlers/", "shared/handler/", "shared/handler/: no such file or folder"),
        ("as dialogporten-unrouted", "as dialogporten-parked", "dialogporten-parked: no such queue"),
        ("as dialogporten-{type}-poison", "as dialogporten-poison", "dialogporten-poison: no such queue"),
        ("as dialogporten-{type}\n", "as dialogporten-{event}\n", "dialogporten-{event}: no such queue"),
        ("dpctl poison replay", "dpctl poison replays", "dpctl poison replays: 'replays' is not a command of"),
        ("dpctl parked reroute", "dpctl unrouted reroute", "dpctl unrouted: 'unrouted' is not a command of dpctl "),
        ("POST /api/events", "POST /api/event", "/api/event: no such route"),
        ("dialogs table", "dialog table", "dialog table: no such table"),
        ("Note over Poison: once", "Note over Poison: make replay, once", "make replay: no such target"),
        ("Note over Poison: once", "Note over Poison: python -m devtools.replay, once", "python -m devtools.replay: "),
    ],
)  # fmt: skip
def test_a_diagram_naming_what_does_not_exist_is_refused(old: str, new: str, problem: str) -> None:
    flow = the_flow()
    assert old in flow
    problems = diagram_problems(flow.replace(old, new, 1))
    assert len(problems) == 1, problems
    assert problems[0].startswith(problem), problems


def test_a_dpctl_option_that_does_not_exist_is_refused() -> None:
    loop = docs_support.mermaid_blocks(docs_support.section("## The local loop").text)[0]
    assert "dpctl send --to-sim" in loop
    assert diagram_problems(loop.replace("dpctl send --to-sim", "dpctl send --to-simulator")) == [
        "dpctl send: no option --to-simulator"
    ]
