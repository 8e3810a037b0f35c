"""Storages for tests, by backend name: ``memory``, ``local``, ``s3`` (moto's server)."""

from __future__ import annotations

from pathlib import Path

from spoold.storage import Storage
from spoold.storage.local import LocalStorage
from spoold.storage.memory import MemoryStorage
from spoold.storage.s3 import S3Storage
from testlib.s3server import moto_endpoint, new_bucket


def make_storage(kind: str, tmp_path: Path) -> Storage:
    """An empty storage of the given kind."""
    if kind == "memory":
        return MemoryStorage()
    if kind == "local":
        (tmp_path / "store").mkdir(exist_ok=True)
        return LocalStorage(tmp_path / "store")
    if kind == "s3":
        moto_endpoint()
        return S3Storage(new_bucket(), "index")
    raise ValueError(kind)


def storage_url(kind: str, tmp_path: Path) -> str:
    """The URL of an empty storage, for code that opens its own (processes, the CLI)."""
    if kind == "local":
        (tmp_path / "store").mkdir(exist_ok=True)
        return str(tmp_path / "store")
    if kind == "s3":
        moto_endpoint()
        return f"s3://{new_bucket()}/index"
    raise ValueError(f"{kind} storage has no URL another process could open")


def second_handle(storage: Storage) -> Storage:
    """Another independent client of the same storage (as another process would have)."""
    if isinstance(storage, MemoryStorage):
        return storage.another_client()
    if isinstance(storage, LocalStorage):
        return LocalStorage(storage.root)
    assert isinstance(storage, S3Storage)
    return S3Storage(storage.bucket, storage.prefix)


def broken_handle(storage: Storage) -> Storage:
    """A client of the same kind that cannot reach its storage."""
    if isinstance(storage, MemoryStorage):
        broken = storage.another_client()
        broken.down = "the in-memory storage is down"
        return broken
    if isinstance(storage, LocalStorage):
        blocker = storage.root.parent / "a-file"
        blocker.write_text("not a directory")
        return LocalStorage(blocker / "store")
    assert isinstance(storage, S3Storage)
    return S3Storage("no-such-bucket-for-spoold-tests", "index")
