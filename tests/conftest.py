"""Fixtures shared by every layer's tests."""

from __future__ import annotations

import pytest

from spoold.spool.queue import Spool
from testlib.clock import FakeClock  # noqa: F401  (older tests import it from here)


@pytest.fixture
def spool(tmp_path) -> Spool:
    return Spool.create(tmp_path / "spool")


@pytest.fixture(autouse=True, scope="session")
def _private_data_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every spoold the tests start, in this process or as a child, keeps its data (the
    default htpasswd file, a first start's admin password) in a temporary directory,
    never in the home directory of whoever runs the tests."""
    import os

    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("xdg-data"))
