"""Keep the README's generated tables true: the event types (from the catalog) and the settings.

python -m devtools.docs          rewrite the marked sections of README.md (`make catalog` runs it)
python -m devtools.docs --check  exit 1 if they are stale (a test runs this check)
"""

from __future__ import annotations

import argparse
import re
import sys

from devtools.azurite import ROOT
from shared.events.catalog import CATALOG, UNROUTED_QUEUE
from shared.settings import DECLARED

README = ROOT / "README.md"


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


SECTIONS = {"catalog": catalog_table, "settings": settings_table}


def render(text: str) -> str:
    for name, make in SECTIONS.items():
        pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(\n<!-- {name}:end -->)", re.DOTALL)
        match = pattern.search(text)
        if not match:
            raise SystemExit(f"README.md lacks the <!-- {name}:start --> ... <!-- {name}:end --> markers")
        text = text[: match.end(1)] + make() + text[match.start(2) :]
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    current = README.read_text(encoding="utf-8")
    wanted = render(current)
    if args.check:
        if current != wanted:
            print("README.md's generated tables are stale: run `make catalog`", file=sys.stderr)
            return 1
        return 0
    README.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
