"""spoold check on S3 (moto's HTTP server): the contract, the flat listing behind it
(paginated, confined to the storage's prefix), and a listing that fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from spoold.index.check import check
from spoold.storage import Storage, StorageUnavailable
from spoold.storage.s3 import S3Storage
from testlib.backends import make_storage
from testlib.check_contract import *  # noqa: F403  (the contract's tests run here)
from testlib.check_contract_index import *  # noqa: F403
from testlib.check_damage import overwrite, published
from testlib.s3server import error_response, moto_server  # noqa: F401


@pytest.fixture
def storage(moto_server: str, tmp_path: Path) -> Storage:  # noqa: F811
    return make_storage("s3", tmp_path)


def test_walk_pages_through_the_listing_and_stays_under_the_prefix(storage: Storage) -> None:
    assert isinstance(storage, S3Storage)
    neighbour = S3Storage(storage.bucket, "elsewhere")
    neighbour.put_file("packages/x/x-1.0.tar.gz", b"x", "0" * 64)
    keys = {f"packages/p{i}/.p-{i}.tar.gz.{i:x}.tmp" for i in range(5)} | {"simple/index.html"}
    for key in keys:
        storage.put_file(key, b"k", "0" * 64)
    pages: list[int] = []

    def small_pages(params: dict[str, Any], **kwargs: object) -> None:
        params["MaxKeys"] = 2
        pages.append(1)

    storage.client.meta.events.register("provide-client-params.s3.ListObjectsV2", small_pages)
    assert {o.key for o in storage.walk("")} == keys
    assert len(pages) == 3
    assert {o.key for o in storage.walk("packages/")} == keys - {"simple/index.html"}


def test_check_of_one_prefix_ignores_its_neighbours(storage: Storage, tmp_path: Path) -> None:
    assert isinstance(storage, S3Storage)
    neighbour = S3Storage(storage.bucket, "elsewhere")
    published(neighbour, tmp_path, "theirs", "1.0")
    overwrite(neighbour, "simple/theirs/index.html", b"old")
    published(storage, tmp_path, "ours", "1.0")
    report = check(storage)
    assert report.ok and report.projects == 1


def test_listing_that_fails_is_storage_unavailable(storage: Storage, tmp_path: Path) -> None:
    assert isinstance(storage, S3Storage)
    published(storage, tmp_path, "pkg", "1.0")
    storage.client.meta.events.register(
        "before-send.s3.ListObjectsV2", lambda request, **kw: error_response(403, "AccessDenied")
    )
    with pytest.raises(StorageUnavailable, match="access denied"):
        check(storage)
