"""A hand-moved wall clock for tests."""

from __future__ import annotations


class FakeClock:
    """A wall clock the test moves by hand (``clock()`` returns epoch seconds)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
