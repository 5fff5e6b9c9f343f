"""Runnables for tests/core/test_jobs.py (importable by name on the workers)."""

from __future__ import annotations


class Counter:
    """Counts to ``until``, one step a run(); prints each step."""

    def __init__(self, until: int = 3, label: str = "count", inner=None):
        self.until = until
        self.label = label
        self.inner = inner
        self.count = 0

    def run(self) -> bool:
        self.count += 1
        print(f"{self.label} step {self.count}")
        return self.count < self.until


class Forever:
    """Never done: each step sleeps a little (stopped by Cancel)."""

    def __init__(self) -> None:
        self.steps = 0

    def run(self) -> bool:
        import time

        self.steps += 1
        time.sleep(0.05)
        return True
