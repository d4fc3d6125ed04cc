"""The README's dpctl commands exist, with the options it shows: a renamed command or flag fails here."""

from __future__ import annotations

import re
import shlex

from devtools import docs
from tests.cli_support import dpctl

GLOBAL_WITH_VALUE = {"--env", "--account", "--sim-url", "--settings", "--client-id", "--kid", "--key-file", "--scope"}
#: az's global options, taken anywhere on the line (the root's help lists them).
ANYWHERE = {"--output", "-o", "--query"}


def readme_commands() -> list[list[str]]:
    text = docs.README.read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", text, re.DOTALL)
    found = []
    for block in blocks:
        for raw in block.replace("\\\n", " ").splitlines():
            line = raw.split("#", 1)[0].strip()
            if line.startswith("dpctl "):
                found.append(shlex.split(line.replace("$(", "").replace(")", ""))[1:])
    return found


def test_the_readme_shows_the_whole_loop() -> None:
    commands = {" ".join(words[:2]) for words in readme_commands()}
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


def test_every_readme_command_and_option_exists() -> None:
    commands = readme_commands()
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
