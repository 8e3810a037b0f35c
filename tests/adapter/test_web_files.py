"""GET /packages/<project>/<file>: local streaming, ranges, S3 redirects and proxying."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from testlib.web_harness import make_site

from spoold.spool.queue import Spool
from spoold.storage.local import LocalStorage
from spoold.testing import Connection, MemoryStorage, raw_request, request
from spoold.web.files import FilesPolicy
from spoold.web.site import WebPolicy

DATA = bytes(range(256)) * 5000  # 1.28 MB, several chunks
KEY = "packages/foo-bar/foo_bar-1.0-py3-none-any.whl"
URL = "/packages/foo-bar/foo_bar-1.0-py3-none-any.whl"
SMALL_CHUNKS = WebPolicy(files=FilesPolicy(chunk=64 * 1024))


METADATA = b"Metadata-Version: 2.1\nName: foo-bar\n"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def local(tmp_path: Path) -> LocalStorage:
    """Files on disk: streamed by spoold."""
    storage = LocalStorage(tmp_path / "storage")
    storage.put_file(KEY, DATA, sha256(DATA))
    storage.put_file(KEY + ".metadata", METADATA, sha256(METADATA))
    return storage


@pytest.fixture
def s3() -> MemoryStorage:
    """Files "in a bucket": redirected to a presigned URL, or proxied."""
    storage = MemoryStorage(presign="https://bucket.example/")
    storage.put_file(KEY, DATA, sha256(DATA))
    return storage


def test_local_file_is_streamed(tmp_path: Path, spool: Spool, local: LocalStorage) -> None:
    site = make_site(tmp_path, spool, storage=local, policy=SMALL_CHUNKS)
    conn = Connection(site)
    writes: list[int] = []
    write = conn.transport.write
    conn.transport.write = lambda data: writes.append(len(data)) or write(data)  # type: ignore[method-assign]
    conn.send(raw_request("GET", URL))
    # one chunk per write: the file went out in pieces, not as one buffer
    assert max(writes) <= 64 * 1024 and len(writes) >= len(DATA) // (64 * 1024)
    [r] = conn.responses()
    assert r.status == 200
    assert r.body == DATA
    assert r.header("content-length") == str(len(DATA))
    assert r.header("content-type") == "application/octet-stream"
    assert r.header("etag") and r.header("last-modified") and r.header("accept-ranges") == "bytes"
    assert not conn.closed  # keep-alive still works after a streamed body


def test_metadata_file(tmp_path: Path, spool: Spool, local: LocalStorage) -> None:
    site = make_site(tmp_path, spool, storage=local)
    r = request(site, "GET", URL + ".metadata")
    assert r.status == 200 and r.body.startswith(b"Metadata-Version")


def test_etag_and_if_none_match(tmp_path: Path, spool: Spool, local: LocalStorage) -> None:
    site = make_site(tmp_path, spool, storage=local)
    etag = request(site, "GET", URL).header("etag")
    r = request(site, "GET", URL, {"If-None-Match": etag})
    assert r.status == 304 and r.body == b""


def test_head(tmp_path: Path, spool: Spool, local: LocalStorage) -> None:
    site = make_site(tmp_path, spool, storage=local)
    r = request(site, "HEAD", URL)
    assert r.status == 200 and r.body == b"" and r.header("content-length") == str(len(DATA))


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=0-99", 0, 100), ("bytes=100-", 100, len(DATA)), ("bytes=-50", len(DATA) - 50, len(DATA)),
     ("bytes=1000-999999999", 1000, len(DATA))],
)
def test_single_ranges(tmp_path: Path, spool: Spool, local: LocalStorage, header: str, start: int, end: int) -> None:
    site = make_site(tmp_path, spool, storage=local, policy=SMALL_CHUNKS)
    r = request(site, "GET", URL, {"Range": header})
    assert r.status == 206
    assert r.body == DATA[start:end]
    assert r.header("content-range") == f"bytes {start}-{end - 1}/{len(DATA)}"


def test_unsatisfiable_and_ignored_ranges(tmp_path: Path, spool: Spool, local: LocalStorage) -> None:
    site = make_site(tmp_path, spool, storage=local)
    r = request(site, "GET", URL, {"Range": f"bytes={len(DATA)}-"})
    assert r.status == 416 and r.header("content-range") == f"bytes */{len(DATA)}"
    # several ranges, or a stale If-Range: the whole file
    assert request(site, "GET", URL, {"Range": "bytes=0-1,5-6"}).body == DATA
    assert request(site, "GET", URL, {"Range": "bytes=0-1", "If-Range": '"stale"'}).status == 200


def test_a_range_of_thousands_of_digits_is_not_a_500(tmp_path: Path, spool: Spool, local: LocalStorage) -> None:
    site = make_site(tmp_path, spool, storage=local)
    big = "1" * 5000
    r = request(site, "GET", URL, {"Range": f"bytes={big}-"})
    assert r.status == 416 and r.header("content-range") == f"bytes */{len(DATA)}"
    r = request(site, "GET", URL, {"Range": f"bytes=-{big}"})
    assert r.status == 206 and r.body == DATA


@pytest.mark.parametrize(
    "path",
    [
        "/packages/foo-bar/missing-1.0.tar.gz",
        "/packages/Foo_Bar/foo_bar-1.0-py3-none-any.whl",  # not the normalized name
        "/packages/foo-bar/..%2F..%2F..%2Fetc%2Fpasswd",
        "/packages/foo-bar/%2E%2E",
        "/packages/foo-bar/.hidden",
        "/packages/../simple/index.html",
        "/packages/foo-bar/a/b",
        "/packages/foo-bar/",
        "/packages/foo-bar",
        "/packages/",
        "/packages/foo-bar/%FF.whl",
        "/packages/foo-bar/x%00.whl",
        "/packages/foo-bar/x%5Cy.whl",
    ],
)
def test_no_escapes_and_404s(tmp_path: Path, spool: Spool, local: LocalStorage, path: str) -> None:
    (tmp_path / "storage" / "packages" / "secret").write_text("x")
    site = make_site(tmp_path, spool, storage=local)
    r = request(site, "GET", path)
    assert r.status == 404, (path, r.status, r.body[:100])


def test_s3_redirects_to_a_presigned_url(tmp_path: Path, spool: Spool, s3: MemoryStorage) -> None:
    site = make_site(tmp_path, spool, storage=s3)
    r = request(site, "GET", URL)
    assert r.status == 302
    assert r.header("location", ).startswith("https://bucket.example/" + KEY)  # type: ignore[union-attr]
    assert "X-Amz-Expires=300" in r.header("location")  # type: ignore[operator]
    assert r.header("cache-control") == "no-store"


def test_s3_proxy(tmp_path: Path, spool: Spool, s3: MemoryStorage) -> None:
    policy = WebPolicy(files=FilesPolicy(proxy=True, chunk=100_000))
    site = make_site(tmp_path, spool, storage=s3, policy=policy)
    r = request(site, "GET", URL)
    assert r.status == 200 and r.body == DATA and r.header("content-length") == str(len(DATA))
    assert request(site, "GET", "/packages/foo-bar/missing-1.0.tar.gz").status == 404


def test_storage_down(tmp_path: Path, spool: Spool, s3: MemoryStorage) -> None:
    s3.down = "disk unmounted"
    site = make_site(tmp_path, spool, storage=s3)
    r = request(site, "GET", URL)
    assert r.status == 503 and "disk unmounted" in r.text


def _paused_connection(site):  # type: ignore[no-untyped-def]
    """A connection whose transport is full: a registered producer is paused at once.
    The producers registered are in ``conn.producers``."""
    conn = Connection(site)
    conn.producers = []  # type: ignore[attr-defined]
    register = conn.channel.registerProducer

    def paused(producer, streaming):  # type: ignore[no-untyped-def]
        register(producer, streaming)
        conn.producers.append(producer)  # type: ignore[attr-defined]
        producer.pauseProducing()

    conn.channel.registerProducer = paused
    return conn


def test_a_slow_client_slows_the_reads(tmp_path: Path, spool: Spool, local: LocalStorage) -> None:
    site = make_site(tmp_path, spool, storage=local, policy=SMALL_CHUNKS)
    conn = _paused_connection(site)
    conn.send(raw_request("GET", URL))
    assert len(conn.transport.value()) < 1000  # headers only: nothing read while paused
    conn.channel.resumeProducing()
    [r] = conn.responses()
    assert r.body == DATA


def test_client_going_away_closes_the_file(tmp_path: Path, spool: Spool, local: LocalStorage) -> None:
    site = make_site(tmp_path, spool, storage=local, policy=SMALL_CHUNKS)
    conn = _paused_connection(site)
    conn.send(raw_request("GET", URL))
    [producer] = conn.producers
    stream = producer._stream
    assert stream is not None and not stream.closed
    conn.lose()
    assert stream.closed and producer._stream is None


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_wrong_methods(tmp_path: Path, spool: Spool, local: LocalStorage, method: str) -> None:
    site = make_site(tmp_path, spool, storage=local)
    r = request(site, method, URL)
    assert r.status == 405 and r.header("allow") == "GET, HEAD"
