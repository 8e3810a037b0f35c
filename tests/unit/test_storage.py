"""Storage: the contract (tests/testlib/storage_contract.py) on the in-memory and local
backends, and what is particular to the local one. S3: tests/adapter/test_storage_s3.py."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from spoold.errors import ConfigError, Transient
from spoold.storage import Storage, StorageUnavailable, open_storage
from spoold.storage.local import LocalStorage
from spoold.storage.memory import MemoryStorage
from spoold.storage.s3 import S3Storage
from testlib.backends import make_storage
from testlib.storage_contract import *  # noqa: F403  (the contract's tests run here)


@pytest.fixture(params=["memory", "local"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    return make_storage(request.param, tmp_path)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- open_storage ---------------------------------------------------------------------------


def test_open_storage_paths(tmp_path: Path) -> None:
    assert isinstance(open_storage(str(tmp_path)), LocalStorage)
    local = open_storage(f"file://{tmp_path}/x")
    assert isinstance(local, LocalStorage) and local.root == tmp_path / "x"


def test_open_storage_s3() -> None:
    s3 = open_storage("s3://bucket/some/prefix/")
    assert isinstance(s3, S3Storage)
    assert (s3.bucket, s3.prefix) == ("bucket", "some/prefix/")
    assert open_storage("s3://bucket").prefix == ""  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "url", ["", "s3:///prefix", "ftp://host/x", "file://otherhost/x", "s3://b/p?x=1"]
)
def test_open_storage_rejects(url: str) -> None:
    with pytest.raises(ConfigError):
        open_storage(url)


# -- backend specifics ------------------------------------------------------------------------


def test_local_serving_path(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put_file("packages/a/a.whl", b"a", sha(b"a"))
    assert storage.local_path("packages/a/a.whl") == tmp_path / "packages/a/a.whl"
    assert storage.local_path("packages/a/nope.whl") is None
    assert storage.presigned_url("packages/a/a.whl") is None


def test_local_leaves_no_temporary_files(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put_file("packages/a/a.whl", b"a", sha(b"a"))
    storage.swap_doc("simple/a/index.v1.json", b"{}", 1, None)
    storage.put_page("simple/a/index.html", b"<a>", 1)
    leftovers = [p for p in tmp_path.rglob(".*.tmp")]
    assert leftovers == []


def test_local_unwritable_root_is_transient(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    storage = LocalStorage(blocker / "store")
    with pytest.raises(StorageUnavailable, match="cannot"):
        storage.put_file("packages/a/a.whl", b"a", sha(b"a"))
    with pytest.raises(Transient):
        storage.ping()


def test_local_probe_never_creates_a_typo(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        LocalStorage(tmp_path / "typo").probe()
    assert not (tmp_path / "typo").exists()
    with pytest.raises(StorageUnavailable):
        LocalStorage(tmp_path / "typo").ping()
    assert not (tmp_path / "typo").exists()  # /health does not create it either


def test_local_probe_creates_on_first_start_and_refuses_a_file(tmp_path: Path) -> None:
    LocalStorage(tmp_path / "new" / "store").probe(create=True)
    assert (tmp_path / "new" / "store").is_dir()
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="not a directory"):
        LocalStorage(tmp_path / "file").probe(create=True)


def test_local_sweep_removes_only_stale_temporary_files(tmp_path: Path) -> None:
    import os

    storage = LocalStorage(tmp_path)
    storage.put_file("packages/a/a.whl", b"a", sha(b"a"))
    stale = tmp_path / "packages/a/.a.whl.0123456789abcdef.tmp"
    fresh = tmp_path / "simple/a/.index.html.fedcba9876543210.tmp"
    history = tmp_path / ".spoold/generations/simple/a/index.html/.00000000000000000001.ab.tmp"
    for path in (stale, fresh, history):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    os.utime(stale, (1, 1))
    os.utime(history, (1, 1))
    assert storage.sweep_temporary(max_age=3600) == 2
    assert not stale.exists() and not history.exists() and fresh.exists()
    assert storage.read_bytes("packages/a/a.whl") == b"a"
    assert MemoryStorage().sweep_temporary() == 0
