"""Small helpers shared by the benchmarks."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import requests

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


def spread(values: list[float], fmt: str) -> str:
    """``min / median / max`` of a series of rounds."""
    return f"{min(values):{fmt}} / {statistics.median(values):{fmt}} / {max(values):{fmt}}"


class CountedRequests:
    """HTTP requests this process sends while in the block, counted where they leave ``requests``."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __enter__(self) -> CountedRequests:
        self._original = requests.Session.send
        original = self._original

        def send(session: requests.Session, request: requests.PreparedRequest, **kwargs: object) -> object:
            with self._lock:
                self.count += 1
            return original(session, request, **kwargs)

        requests.Session.send = send  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        requests.Session.send = self._original  # type: ignore[method-assign]


def median(values: list[float]) -> float:
    return statistics.median(values)


def table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
