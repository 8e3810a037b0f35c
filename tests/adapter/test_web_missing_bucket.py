"""A bucket that is gone is a storage fault (503), never an empty index or "no such project"."""

from __future__ import annotations

from pathlib import Path

from spoold.spool import Spool
from spoold.storage import open_storage
from spoold.testing import request
from testlib.s3server import moto_server  # noqa: F401  (fixture)
from testlib.web_harness import make_site


def test_reads_of_a_missing_bucket_answer_503(tmp_path: Path, moto_server: str) -> None:  # noqa: F811
    spool = Spool.create(tmp_path / "spool")
    storage = open_storage("s3://a-bucket-that-was-deleted/pypi")
    site = make_site(tmp_path, spool, storage=storage)
    for path in ("/simple/", "/simple/demo/"):
        response = request(site, "GET", path)
        assert response.status == 503, (path, response.status, response.body)
        assert b"the bucket does not exist" in response.body
        assert response.header("retry-after") is not None
