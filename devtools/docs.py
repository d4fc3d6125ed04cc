"""Keep the docs' generated tables true: the event types (from the catalog) and the settings.

python -m devtools.docs          rewrite the marked sections of the docs (`make catalog` runs it)
python -m devtools.docs --check  exit 1 if they are stale (a test runs this check)

Each table lives in one page, between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``: the event types in
``docs/webhook.md``, the settings in ``docs/operations.md``.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

from devtools.azurite import ROOT
from shared.events.catalog import CATALOG, UNROUTED_QUEUE
from shared.settings import DECLARED


def catalog_table() -> str:
    rows = ["| Event type | Queue | Handler model | What happened |", "|---|---|---|---|"]
    rows += [f"| `{r.type}` | `{r.queue}` | `{r.model_name}` | {r.description} |" for r in CATALOG]
    parked = "Parked untouched, never expiring, until re-routed: `dpctl parked`."
    rows.append(f"| any other valid CloudEvent | `{UNROUTED_QUEUE}` | (raw event) | {parked} |")
    return "\n".join(rows)


def settings_table() -> str:
    rows = ["| Setting | Default | Meaning |", "|---|---|---|"]
    for s in DECLARED:
        default = "(see below)" if s.default is None else f"`{s.default}`" if s.default else "(empty)"
        rows.append(f"| `{s.name}` | {default} | {s.description} |")
    return "\n".join(rows)


#: Each generated table: the page that holds it (relative to the checkout) and what writes it.
TABLES: dict[str, tuple[Path, Callable[[], str]]] = {
    "catalog": (Path("docs/webhook.md"), catalog_table),
    "settings": (Path("docs/operations.md"), settings_table),
}


def render(text: str, names: list[str], page: Path) -> str:
    """``text`` (the page ``page``) with the tables ``names`` written between their markers."""
    for name in names:
        pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(\n<!-- {name}:end -->)", re.DOTALL)
        match = pattern.search(text)
        if not match:
            raise SystemExit(f"{page} lacks the <!-- {name}:start --> ... <!-- {name}:end --> markers")
        text = text[: match.end(1)] + TABLES[name][1]() + text[match.start(2) :]
    return text


def pages() -> dict[Path, list[str]]:
    """Each page that holds a generated table, with the names of its tables."""
    held: dict[Path, list[str]] = {}
    for name, (page, _) in TABLES.items():
        held.setdefault(page, []).append(name)
    return held


def main(argv: list[str] | None = None, root: Path = ROOT) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    stale = []
    for page, names in pages().items():
        path = root / page
        current = path.read_text(encoding="utf-8")
        wanted = render(current, names, page)
        if current == wanted:
            continue
        stale.append(page)
        if not args.check:
            path.write_text(wanted, encoding="utf-8")
    if args.check and stale:
        print(f"{', '.join(map(str, stale))}: the generated tables are stale: run `make catalog`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
