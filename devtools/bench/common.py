"""Small helpers shared by the benchmarks."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds else float("inf")


def run_concurrently(items: Iterable[T], work: Callable[[T], object], concurrency: int) -> Rate:
    """Do ``work`` for every item with ``concurrency`` threads; the wall-clock rate."""
    batch = list(items)
    started = time.perf_counter()
    if concurrency == 1:
        for item in batch:
            work(item)
    else:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(work, batch))
    return Rate(len(batch), time.perf_counter() - started)


def median(values: list[float]) -> float:
    return statistics.median(values)


def table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
