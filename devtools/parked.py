"""``python -m devtools.parked``: kept for existing scripts; the same as ``dpctl parked`` (devtools/cli/parked.py).

    python -m devtools.parked list
    python -m devtools.parked reroute [--dry-run] [--limit N]
    python -m devtools.parked discard MESSAGE_ID [MESSAGE_ID ...] [--dry-run]

Global options (``--account NAME``, ``--settings FILE``) may come first, as before.
"""

from __future__ import annotations

import sys

from devtools.cli.app import main as cli_main


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    head: list[str] = []
    while args and args[0] in {"--account", "--settings"} and len(args) > 1:
        head += args[:2]
        args = args[2:]
    return cli_main([*head, "parked", *args])


if __name__ == "__main__":
    raise SystemExit(main())
