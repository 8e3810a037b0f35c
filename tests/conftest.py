"""Fixtures shared by every layer's tests."""

from __future__ import annotations

import pytest

from spoold.spool.queue import Spool
from testlib.clock import FakeClock  # noqa: F401  (older tests import it from here)


@pytest.fixture
def spool(tmp_path) -> Spool:
    return Spool.create(tmp_path / "spool")
