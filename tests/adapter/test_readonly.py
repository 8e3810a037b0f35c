"""A read-only filesystem is named as such, not blamed on permissions or groups."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from spoold.errors import ConfigError
from spoold.spool import Spool
from spoold.storage.local import LocalStorage
from testlib.smallfs import small_filesystem


def test_read_only_spool_and_storage_are_named(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "fs") as fs:
        Spool.create(fs / "spool")
        (fs / "store").mkdir()
        subprocess.run(["mount", "-o", "remount,ro", str(fs)], check=True)
        try:
            with pytest.raises(ConfigError, match="read-only filesystem") as spool_error:
                Spool.open(fs / "spool")
            assert "group" not in str(spool_error.value)
            with pytest.raises(ConfigError, match="read-only filesystem"):
                LocalStorage(fs / "store").probe()
            Spool.open(fs / "spool", writable=False)  # reading it (status) still works
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(fs)], check=False)
