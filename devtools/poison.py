"""``python -m devtools.poison``: kept for existing scripts; the same as ``dpctl poison`` (see devtools/cli/poison.py).

    python -m devtools.poison list
    python -m devtools.poison show dialogporten-dialog-created-v1
    python -m devtools.poison replay dialogporten-dialog-created-v1 [--limit N] [--id MESSAGE_ID ...]

Global options (``--account NAME``) may come first, as before.
"""

from __future__ import annotations

import sys

from devtools.cli.app import main as cli_main

_GLOBAL_WITH_VALUE = {"--account", "--settings", "--env", "--sim-url"}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    head: list[str] = []
    while args and args[0] in _GLOBAL_WITH_VALUE and len(args) > 1:
        head += args[:2]
        args = args[2:]
    return cli_main([*head, "poison", *args])


if __name__ == "__main__":
    raise SystemExit(main())
