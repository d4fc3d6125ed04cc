"""The dpctl commands of every page (README.md, docs/, BENCHMARKS.md) exist, with the options they show: a renamed
command or flag fails here."""

from __future__ import annotations

import re
import shlex
import subprocess

from tests import docs_support
from tests.cli_support import dpctl

GLOBAL_WITH_VALUE = {"--env", "--account", "--sim-url", "--settings", "--client-id", "--kid", "--key-file", "--scope"}
#: az's global options, taken anywhere on the line (the root's help lists them).
ANYWHERE = {"--output", "-o", "--query"}


def docs_commands() -> list[list[str]]:
    """The words after ``dpctl`` of every dpctl line of every page (``docs_support.all_commands``)."""
    found = []
    for _, line in docs_support.all_commands():
        if line.startswith("dpctl "):
            found.append(shlex.split(line.replace("$(", "").replace(")", ""))[1:])
    return found


def test_the_docs_show_the_whole_loop() -> None:
    loop = docs_support.commands(docs_support.section("## The whole loop on one machine").text)
    commands = {" ".join(shlex.split(line)[1:3]) for line in loop if line.startswith("dpctl ")}
    for expected in (
        "auth",
        "subscriptions create",
        "subscriptions wait",
        "send --to-sim",
        "status",
        "dialogs show",
        "catch-up --resource",
    ):
        assert any(c.startswith(expected) for c in commands), expected


def test_every_dpctl_command_and_option_of_the_docs_exists() -> None:
    commands = docs_commands()
    assert len(commands) >= 10
    for command in commands:
        words = command
        while words and words[0] in GLOBAL_WITH_VALUE:
            words = words[2:]
        anywhere = {w for w in words if w in ANYWHERE}
        words = [w for i, w in enumerate(words) if w not in ANYWHERE and (i == 0 or words[i - 1] not in ANYWHERE)]
        root = dpctl("--help").out
        assert all(option in root for option in anywhere), anywhere
        path = [w for w in words if re.fullmatch(r"[a-z][a-z-]*", w)][:2]
        options = {w.split("=")[0] for w in words if w.startswith("--")}
        ran = dpctl(*path, "--help")
        if ran.code != 0 or "Usage: " not in ran.out:
            ran = dpctl(*path[:1], "--help")
        assert ran.code == 0, (words, ran.err)
        for option in options - {"--help"}:
            assert option in ran.out, f"`dpctl {' '.join(words)}`: {option} is not an option of {path}"


def test_the_whole_loops_activate_line_puts_the_installed_dpctl_first_on_path() -> None:
    """``source .venv/bin/activate``, as the whole loop writes it, makes ``dpctl`` the one ``make install`` put in
    ``.venv/bin`` (run by bash from the checkout, as a user's second shell would)."""
    lines = docs_support.commands(docs_support.section("## The whole loop on one machine").text)
    [activate] = [line for line in lines if line.startswith("source ")]
    done = subprocess.run(
        ["bash", "-c", f"{activate} && command -v dpctl && dpctl --help"],
        cwd=docs_support.ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == str(docs_support.ROOT / ".venv" / "bin" / "dpctl")
    assert "Usage: dpctl" in done.stdout


def test_the_tt02_exports_name_what_dpctl_reads_and_the_key_that_keygen_writes() -> None:
    """In "Against TT02 and production", the line after keygen exports settings dpctl reads (its help names each),
    and the key file it names is the private key keygen's ``--out`` writes."""
    lines = docs_support.commands(docs_support.section("## Against TT02 and production: one flag").text)
    [keygen] = [shlex.split(line) for line in lines if line.startswith("dpctl auth keygen ")]
    [export] = [line for line in lines if line.startswith("export ")]
    exported = dict(re.findall(r"\b([A-Z][A-Z0-9_]*)=(\S*)", export))
    assert set(exported) == {"MASKINPORTEN_CLIENT_ID", "MASKINPORTEN_KID", "MASKINPORTEN_KEY_FILE"}
    root = dpctl("--help").out
    for name in exported:
        assert f"[{name}]" in "".join(root.split()), f"dpctl does not read {name}"
    assert exported["MASKINPORTEN_KEY_FILE"] == keygen[keygen.index("--out") + 1] + ".pem"
    assert exported["MASKINPORTEN_KID"] == keygen[keygen.index("--kid") + 1]
