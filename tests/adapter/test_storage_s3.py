"""Storage on S3 (moto's HTTP server): the contract, and what is particular to S3."""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from botocore.config import Config

from spoold.errors import ConfigError, FileExists, Transient
from spoold.storage import Storage, StorageUnavailable, open_storage
from spoold.storage.s3 import S3Storage
from testlib.backends import make_storage
from testlib.s3server import error_response, moto_server, s3_url  # noqa: F401
from testlib.storage_contract import *  # noqa: F403  (the contract's tests run here)


@pytest.fixture
def storage(moto_server: str, tmp_path) -> Storage:  # noqa: F811
    return make_storage("s3", tmp_path)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_s3_presigned_url(s3_url: str) -> None:
    storage = open_storage(s3_url)
    assert isinstance(storage, S3Storage)
    storage.put_file("packages/a/a.whl", b"a", sha(b"a"))
    url = storage.presigned_url("packages/a/a.whl", expires=120)
    assert url is not None
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["120"]
    assert "/us-east-1/s3/aws4_request" in query["X-Amz-Credential"][0]
    assert urlsplit(url).path.endswith("/index/packages/a/a.whl")
    assert storage.local_path("packages/a/a.whl") is None


def test_s3_conflict_detected_without_our_metadata(s3_url: str) -> None:
    """An object put by another tool (no sha256 metadata) is compared by its bytes."""
    storage = open_storage(s3_url)
    assert isinstance(storage, S3Storage)
    boto3.client("s3").put_object(Bucket=storage.bucket, Key="index/packages/a/a.whl", Body=b"a")
    assert storage.put_file("packages/a/a.whl", b"a", sha(b"a")) is False
    with pytest.raises(FileExists, match="File already exists"):
        storage.put_file("packages/a/a.whl", b"b", sha(b"b"))


def test_s3_409_conditional_request_conflict_is_retried(s3_url: str) -> None:
    storage = open_storage(s3_url)
    assert isinstance(storage, S3Storage)
    injected: list[str] = []

    def conflict(request: object, **kwargs: object) -> AWSResponse | None:
        if len(injected) < 2:
            injected.append(getattr(request, "url", ""))
            return error_response(409, "ConditionalRequestConflict")
        return None

    storage.client.meta.events.register("before-send.s3.PutObject", conflict)
    assert storage.put_file("packages/a/a.whl", b"a", sha(b"a")) is True
    assert len(injected) == 2
    assert storage.read_bytes("packages/a/a.whl") == b"a"


def test_s3_throttling_and_5xx_are_transient(s3_url: str) -> None:
    storage = open_storage(s3_url)
    assert isinstance(storage, S3Storage)
    fast = boto3.client(
        "s3", config=Config(signature_version="s3v4", retries={"max_attempts": 1})
    )
    storage = S3Storage(storage.bucket, "index", client=fast)
    fast.meta.events.register(
        "before-send.s3.PutObject", lambda **kw: error_response(503, "SlowDown")
    )
    with pytest.raises(StorageUnavailable, match="SlowDown"):
        storage.put_file("packages/a/a.whl", b"a", sha(b"a"))


def test_s3_unreachable_endpoint_is_transient() -> None:
    client = boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:9",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 1}, connect_timeout=2),
    )
    storage = S3Storage("bucket", "", client=client)
    with pytest.raises(StorageUnavailable, match="reachable"):
        storage.ping()
    with pytest.raises(Transient):
        storage.read_doc("simple/a/index.v1.json")


def test_s3_missing_bucket_is_misconfigured(moto_server: str) -> None:
    storage = open_storage("s3://no-such-bucket-here/x")
    with pytest.raises(StorageUnavailable, match="bucket does not exist") as info:
        storage.ping()  # HEAD has no body: the code is the status
    with pytest.raises(StorageUnavailable, match="bucket does not exist") as info:
        storage.put_file("packages/a/a.whl", b"a", sha(b"a"))
    assert info.value.code == "storage-misconfigured"


def test_probe_accepts_a_working_bucket(s3_url: str) -> None:  # noqa: F811
    storage = open_storage(s3_url)
    storage.probe()
    assert [o.key for o in storage.list_files(".spoold/probe/")] == []  # the probe cleans up


def test_probe_refuses_a_missing_bucket_as_configuration(moto_server: str) -> None:  # noqa: F811
    with pytest.raises(ConfigError, match="the bucket does not exist"):
        open_storage("s3://no-such-bucket-for-the-probe/x").probe()


def test_a_missing_bucket_is_never_an_empty_index(moto_server: str) -> None:  # noqa: F811
    storage = open_storage("s3://no-such-bucket-for-reads/x")
    with pytest.raises(StorageUnavailable, match="the bucket does not exist"):
        storage.read_page("simple/index.html")
    with pytest.raises(StorageUnavailable, match="the bucket does not exist"):
        storage.read_doc("simple/demo/index.v1.json")


def test_probe_refuses_a_store_that_ignores_conditional_writes(s3_url: str) -> None:  # noqa: F811
    storage = open_storage(s3_url)
    assert isinstance(storage, S3Storage)

    def ignore_conditions(params: dict, **kwargs: object) -> None:
        params.pop("IfNoneMatch", None)
        params.pop("IfMatch", None)

    storage.client.meta.events.register("provide-client-params.s3.PutObject", ignore_conditions)
    with pytest.raises(ConfigError, match="ignores conditional writes"):
        storage.probe()


def test_missing_credentials_are_named_not_blamed_on_reachability(
    moto_server: str, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ConfigError, match="no AWS credentials were found") as info:
        open_storage("s3://any-bucket/x").probe()
    assert "reachable" not in str(info.value)
