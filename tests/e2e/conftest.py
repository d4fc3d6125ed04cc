"""Fixtures of the end-to-end tests (see harness.py)."""

from tests.e2e.harness import start_runner, workdir

__all__ = ["start_runner", "workdir"]
