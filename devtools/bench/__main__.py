"""`make bench`: every benchmark, one after the other, printed as Markdown (copy into BENCHMARKS.md)."""

from __future__ import annotations

import argparse
import os
import platform
import sys
from datetime import UTC, datetime

from devtools.bench import aio, catchup, drain, ingest, loop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.bench",
        description=__doc__,
        epilog="Through make, options go in ARGS: make bench ARGS=--quick "
        "(make would read --quick as an option of its own).",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smaller runs, a smoke check (about 4 minutes instead of 20 on two cores)"
    )
    args = parser.parse_args(argv)
    print(f"# Benchmark run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"\nPython {platform.python_version()}, {os.cpu_count()} cores, {platform.machine()}; Azurite in memory.\n")
    sys.stdout.flush()
    print(ingest.report(events_per_run=150 if args.quick else 600), flush=True)
    if args.quick:
        print(drain.report(events=300, dialogs=50, rounds=3, memory_events=1000), flush=True)
    else:
        print(drain.report(), flush=True)
    print(aio.report(count=300 if args.quick else 1000), flush=True)
    print(loop.report(events=200 if args.quick else 1000), flush=True)
    if args.quick:
        print(catchup.report(gap=1200, backlog=1000, rounds=3), flush=True)
    else:
        print(catchup.report(gap=5000, backlog=3000, rounds=5), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
