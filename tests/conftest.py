"""Fixtures shared by every layer's tests."""

from __future__ import annotations

import pytest

from spoold.spool.queue import Spool


class FakeClock:
    """A wall clock the test moves by hand (``clock()`` returns epoch seconds)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def spool(tmp_path) -> Spool:
    return Spool.create(tmp_path / "spool")
