"""The user's documentation as tests read it: the pages, a section by its heading, its code blocks.

The pages are ``README.md``, every ``docs/*.md`` and ``BENCHMARKS.md``. A test finds what it runs by the
section's heading, in whichever page holds it, so a section moved to another page keeps its test; a heading
renamed or removed fails the test that reads it (no section is silently skipped).
"""

from __future__ import annotations

import itertools
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def pages(root: Path = ROOT) -> list[Path]:
    """Every page of the user's documentation, the README first."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md")), root / "BENCHMARKS.md"]


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def headings(page_text: str) -> list[tuple[int, str]]:
    """``(line index, heading line)`` of each Markdown heading; a ``#`` inside a fenced block is none."""
    found = []
    fenced = False
    for i, line in enumerate(page_text.splitlines()):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6} ", line):
            found.append((i, line))
    return found


@dataclass(frozen=True)
class Section:
    page: Path
    heading: str
    text: str
    root: Path = ROOT

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(self.root)}: {self.heading!r}"


def section(heading: str, *, nested: bool = True, root: Path = ROOT) -> Section:
    """The section under ``heading`` (the whole line, e.g. ``"## The local runner"``), in any page.

    It ends at the next heading of the same or a higher level (``nested=True``: its subsections are part of
    it) or at the next heading of any level (``nested=False``). Exactly one page may hold the heading.
    """
    level = len(heading.split(" ", 1)[0])
    holders = []
    for path in pages(root):
        content = _read(path)
        lines = content.splitlines()
        marks = headings(content)
        for n, (start, line) in enumerate(marks):
            if line != heading:
                continue
            end = len(lines)
            for later, other in marks[n + 1 :]:
                if not nested or len(other.split(" ", 1)[0]) <= level:
                    end = later
                    break
            holders.append(Section(path, heading, "\n".join(lines[start:end]), root))
    assert holders, f"no page has the heading {heading!r}: a test reads that section (tests/docs_support.py)"
    assert len(holders) == 1, f"{heading!r} is the heading of more than one section: {[s.where for s in holders]}"
    return holders[0]


def blocks(content: str, language: str) -> list[str]:
    """The fenced blocks of one language, dedented (a block inside a list item is indented)."""
    pattern = rf"^([ \t]*)```{re.escape(language)}\n(.*?)\n[ \t]*```[ \t]*$"
    return [textwrap.dedent(m.group(2)) for m in re.finditer(pattern, content, flags=re.DOTALL | re.MULTILINE)]


def strip_comment(line: str) -> str:
    """A shell line without its trailing ``# comment`` (a ``#`` inside a word, as in a URL, stays)."""
    return re.split(r"(?:^|\s)#(?:\s|$)", line, maxsplit=1)[0].strip()


def commands(content: str) -> list[str]:
    """The command lines of the ```bash blocks: continuations joined, comments and blank lines dropped."""
    found = []
    for block in blocks(content, "bash"):
        for raw in re.sub(r"\\\n\s*", " ", block).splitlines():
            command = strip_comment(raw)
            if command:
                found.append(re.sub(r"\s+", " ", command))
    return found


def python_blocks(content: str) -> list[str]:
    return blocks(content, "python")


def mermaid_blocks(content: str) -> list[str]:
    return blocks(content, "mermaid")


def all_commands(root: Path = ROOT) -> list[tuple[Section, str]]:
    """Every bash command line of every page, with the innermost section that shows it."""
    found = []
    for path in pages(root):
        content = _read(path)
        lines = content.splitlines()
        marks = [(0, ""), *headings(content), (len(lines), "")]
        for (start, heading), (end, _) in itertools.pairwise(marks):
            own = Section(path, heading, "\n".join(lines[start:end]), root)
            found += [(own, command) for command in commands(own.text)]
    return found
