"""``Storage.ping``, the /health storage check: quiet while the storage answers, a
StorageUnavailable that says what is wrong once it does not (each backend)."""

from __future__ import annotations

import shutil

import pytest
from testlib.s3server import moto_server, storage, storage_url  # noqa: F401

from spoold.storage import Storage, StorageUnavailable
from spoold.storage.local import LocalStorage
from spoold.storage.memory import MemoryStorage
from spoold.storage.s3 import S3Storage


def _break(storage: Storage) -> str:
    """Make ``storage`` unreachable; returns what its error must mention."""
    if isinstance(storage, LocalStorage):
        shutil.rmtree(storage.root, ignore_errors=True)
        storage.root.write_text("a file where the storage directory should be")
        return "cannot use the storage directory"
    assert isinstance(storage, S3Storage)
    storage.client.delete_bucket(Bucket=storage.bucket)
    return "cannot reach the bucket"


def test_ping_tells_a_reachable_storage_from_an_unreachable_one(storage: Storage) -> None:  # noqa: F811
    assert storage.ping() is None
    storage.put_page("simple/index.html", b"root", 1)  # ping did not get in the way
    storage.delete("simple/index.html")
    expected = _break(storage)
    with pytest.raises(StorageUnavailable, match=expected):
        storage.ping()


def test_memory_storage_ping_follows_down() -> None:
    storage = MemoryStorage()
    assert storage.ping() is None
    storage.down = "unplugged"
    with pytest.raises(StorageUnavailable, match="unplugged"):
        storage.ping()
