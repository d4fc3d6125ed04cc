"""Every rule of the Altinn simulator cites the real source and marks where it is enforced
(devtools/checks/sim_rules.py): the simulator passes, and each kind of mutant is found."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from devtools.checks import layers, sim_rules

REAL = sim_rules.simulator_sources()
EVENTS = "devtools.altinn_sim.events"
SIZE_CITATION = (
    "  Altinn/altinn-events src/Events/Controllers/EventsController.cs (EventsController.Get)\n- EV-RESOURCE"
)
#: The sources' git mirrors, where this machine has them (a user's clone has not: the mirror test skips).
MIRRORS = Path(os.environ.get("ALTINN_SOURCE_MIRRORS", layers.ROOT.parent / ".mirror"))


def mutated(module: str, old: str, new: str, count: int = 1) -> list[str]:
    source = REAL[module]
    assert old in source, f"the mutant's anchor is gone from {module}: {old!r}"
    return sim_rules.findings(dict(REAL) | {module: source.replace(old, new, count)})


def with_added(module: str, text: str) -> list[str]:
    return sim_rules.findings(dict(REAL) | {module: REAL[module] + "\n" + text + "\n"})


def test_every_rule_of_the_simulator_is_cited_and_marked() -> None:
    assert sim_rules.findings(REAL) == []
    listed = {e.rule for module, source in REAL.items() for e in sim_rules.entries(module, source)}
    assert {"EV-HOLDBACK", "EV-SUB-PDP", "DP-MAINT", "DP-SO-404", "AUTH-EXCHANGE-401", "MP-JTI"} <= listed
    assert len(listed) >= 50  # the parse saw the rules, not nothing


def test_a_rule_without_its_citation_is_found() -> None:
    found = mutated(EVENTS, SIZE_CITATION, "- EV-RESOURCE")
    assert found == ["devtools.altinn_sim.events: EV-SIZE cites no source (Owner/repo path (symbol))"]


@pytest.mark.parametrize(
    ("citation", "expected"),
    [
        ("  Altinn/altinn-events src/Events/Controllers/EventsController.cs", "EV-SIZE cites no source"),  # no symbol
        ("  src/Events/Controllers/EventsController.cs (EventsController.Get)", "EV-SIZE cites no source"),  # no repo
        ("  Someone/else src/Events/Controllers/EventsController.cs (Get)", "EV-SIZE cites Someone/else, not one of"),
        ("  see the controller", "EV-SIZE cites no source"),
    ],
)
def test_a_citation_without_repository_path_and_symbol_is_found(citation: str, expected: str) -> None:
    found = mutated(EVENTS, SIZE_CITATION, f"{citation}\n- EV-RESOURCE")
    assert [f for f in found if expected in f], found


def test_a_marker_naming_no_rule_is_found() -> None:
    found = with_added(EVENTS, "NOTHING = 1  # EV-NO-SUCH-RULE: a typo")
    assert [f for f in found if "marker EV-NO-SUCH-RULE names no rule entry" in f], found


def test_a_rule_no_line_enforces_is_found() -> None:
    found = mutated(EVENTS, "size = DEFAULT_SIZE if size < 1 else min(size, MAX_SIZE)  # EV-SIZE", "size = size")
    assert found == ["devtools.altinn_sim.events: EV-SIZE is listed but no line enforces it (no # EV-SIZE marker)"]


@pytest.mark.parametrize(
    ("module", "added"),
    [
        ("devtools.altinn_sim.subscriptions", "def f() -> None:\n    raise Refused(418, 'a teapot')"),
        ("devtools.altinn_sim.dialogporten", "def f() -> Answer:\n    return Answer(410, {}, b'', None)"),
        ("devtools.altinn_sim.tokens", "def f() -> None:\n    if True:\n        raise TokenRefused(429, 'x', 'y')"),
        ("devtools.altinn_sim.server", "def f(h) -> None:\n    h._send(302, headers={'Location': 'x'})"),
    ],
)
def test_an_answer_without_a_rule_marker_is_found(module: str, added: str) -> None:
    found = with_added(module, added)
    assert [f for f in found if "an answer with a literal status but no rule marker" in f], found


@pytest.mark.parametrize(
    "added",
    [
        "def f() -> None:\n    raise Refused(418, 'a teapot')  # EV-SUB-PDP",
        "def f(x: int) -> None:\n    if x:  # EV-SUB-PDP\n        raise Refused(418, 'a teapot')",
        "def f() -> None:\n    # EV-SUB-PDP: the policy says no\n    raise Refused(\n        418,\n        'x',\n    )",
        "def f() -> None:\n    try:\n        pass\n    except OSError:  # EV-SUB-PDP\n        raise Refused(418, 'x')",
        "def f(status: int) -> None:\n    raise Refused(status, 'passed on')",  # not a literal: a rule elsewhere
    ],
)
def test_a_marker_on_the_statement_its_condition_or_just_above_covers_an_answer(added: str) -> None:
    assert with_added("devtools.altinn_sim.subscriptions", added) == []


def test_a_fault_mode_must_say_so_and_an_id_may_be_listed_once() -> None:
    found = mutated(EVENTS, "- FAULT-SCRIPT: fault mode, not Altinn's", "- FAULT-SCRIPT: a mode, not Altinn's")
    assert found == ["devtools.altinn_sim.events: FAULT-SCRIPT must say 'fault mode'"]
    twice = mutated(EVENTS, "- EV-SIZE: ", "- EV-SUB-PDP: ")
    assert [f for f in twice if "EV-SUB-PDP is listed twice" in f], twice


@pytest.mark.skipif(not (MIRRORS / "Altinn+altinn-events" / "repo").exists(), reason=f"no source mirrors at {MIRRORS}")
def test_every_cited_file_and_symbol_exists_at_the_pinned_commit() -> None:
    assert sim_rules.missing_in_mirrors(REAL, MIRRORS) == []
    wrong_path = dict(REAL) | {
        EVENTS: REAL[EVENTS].replace("EventsController.cs (EventsController.Get)", "Nope.cs (Get)")
    }
    assert [
        f for f in sim_rules.missing_in_mirrors(wrong_path, MIRRORS) if "has no src/Events/Controllers/Nope.cs" in f
    ]
    wrong_symbol = dict(REAL) | {EVENTS: REAL[EVENTS].replace("(EventsController.Get)", "(EventsController.Fetch)")}
    assert [f for f in sim_rules.missing_in_mirrors(wrong_symbol, MIRRORS) if "does not contain" in f]


def test_the_command_prints_its_findings_and_exits_0_on_the_simulator(capsys: pytest.CaptureFixture[str]) -> None:
    assert sim_rules.main([]) == 0
    assert capsys.readouterr().out.strip() == "simulator rules: 0 finding(s)"
