"""Publishing on S3 (moto's HTTP server): the contract, and an injected 409."""

from __future__ import annotations

from pathlib import Path

import pytest

from spoold.index import publish
from spoold.storage import Storage, open_storage
from spoold.storage.s3 import S3Storage
from spoold.testing.dists import make_distribution
from testlib.backends import make_storage
from testlib.index_checks import assert_consistent
from testlib.publish_contract import *  # noqa: F403  (the contract's tests run here)
from testlib.s3server import error_response, moto_server, s3_url  # noqa: F401


@pytest.fixture
def storage(moto_server: str, tmp_path: Path) -> Storage:  # noqa: F811
    return make_storage("s3", tmp_path)


def test_publish_survives_injected_409_on_manifest(s3_url: str, tmp_path: Path) -> None:
    storage = open_storage(s3_url)
    assert isinstance(storage, S3Storage)
    injected: list[str] = []

    def conflict(request: object, **kwargs: object) -> object:
        url = getattr(request, "url", "")
        if url.split("?")[0].endswith("/simple/inj/index.v1.json") and len(injected) < 3:
            injected.append(url)
            return error_response(409, "ConditionalRequestConflict")
        return None

    storage.client.meta.events.register("before-send.s3.PutObject", conflict)
    dist, path = make_distribution("inj", "1.0", tmp_path)
    assert publish(storage, dist, path).published
    assert len(injected) == 3
    assert_consistent(storage, "inj")
