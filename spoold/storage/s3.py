"""S3 storage with conditional writes (no lock service, no DynamoDB).

* Files are created with ``put_object(IfNoneMatch="*")``; a 412 means the key exists, and
  we compare the stored sha256 (our ``x-amz-meta-sha256``, else by hashing the body) with
  ours. botocore retries a PUT after a timeout on its own, so our own landed write can come
  back as a 412: identical bytes are therefore success, not a conflict.
* Documents (manifests) are read with their ETag and replaced with ``IfMatch`` (created
  with ``IfNoneMatch="*"``). 412, 409 ``ConditionalRequestConflict`` and ``NoSuchKey``
  mean another writer got there first: the caller re-reads and retries.
* Pages carry their generation in ``x-amz-meta-spoold-generation`` and are replaced with
  ``IfMatch`` only by a newer generation, so a slow writer never puts back an older page.

Credentials, region and endpoint come from the standard boto3 chain
(``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3`` for S3-compatible servers and moto).
Connection errors, throttling and 5xx become :class:`StorageUnavailable` (transient).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import boto3
import botocore.exceptions
from botocore.config import Config

from spoold.errors import ConfigError
from spoold.hashing import hash_stream

from .base import Doc, Page, Storage, StorageUnavailable, StoredObject, check_key, file_exists
from .s3_errors import MISCONFIGURED, code_of, lost_race, missing, status_of

GENERATION_META = "spoold-generation"
SHA256_META = "sha256"
_session_lock = threading.Lock()


def _content_type(key: str) -> str:
    if key.endswith(".html"):
        return "text/html; charset=utf-8"
    if key.endswith(".json"):
        return "application/vnd.pypi.simple.v1+json"
    if key.endswith(".metadata"):
        return "text/plain; charset=utf-8"
    return "application/octet-stream"


class S3Storage(Storage):
    """``s3://bucket/prefix``: the same tree as the local backend, under ``prefix``."""

    backoff_base = 0.01
    backoff_cap = 0.5
    docs_are_pages = True

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        region: str | None = None,
        client: Any = None,
    ) -> None:
        super().__init__()
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.url = f"s3://{bucket}/{self.prefix}"
        if client is None:
            with _session_lock:  # boto3 sessions are not thread-safe to create
                session = boto3.session.Session()
            self.region = region or session.region_name or "us-east-1"
            client = session.client(
                "s3",
                region_name=self.region,
                config=Config(
                    signature_version="s3v4",
                    retries={"mode": "standard", "max_attempts": 4},
                    connect_timeout=10,
                    read_timeout=60,
                ),
            )
        else:
            self.region = region or client.meta.region_name or "us-east-1"
        self.client = client

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _fail(self, exc: Exception, what: str) -> NoReturn:
        """Translate a botocore failure into StorageUnavailable (always transient)."""
        if isinstance(exc, (botocore.exceptions.NoCredentialsError,
                            botocore.exceptions.PartialCredentialsError)):
            error = StorageUnavailable(
                f"S3 storage {self.url}: cannot {what}: no AWS credentials were found (set "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or give the host an "
                "instance role)"
            )
            error.code = "storage-misconfigured"
            raise error from exc
        if isinstance(exc, botocore.exceptions.ClientError):
            code = code_of(exc)
            reason = MISCONFIGURED.get(code) or f"{code or status_of(exc)}: {exc}"
            error = StorageUnavailable(f"S3 storage {self.url}: cannot {what}: {reason}")
            if code in MISCONFIGURED:
                error.code = "storage-misconfigured"
            raise error from exc
        raise StorageUnavailable(
            f"S3 storage {self.url}: cannot {what}: {exc} (is the endpoint reachable?)"
        ) from exc

    @contextmanager
    def _calling(self, what: str) -> Iterator[None]:
        try:
            yield
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            self._fail(exc, what)

    def _unless_missing(self, call: Any, key: str, what: str) -> dict[str, Any] | None:
        """``call(Bucket=..., Key=...)``; None when the key does not exist."""
        try:
            return call(Bucket=self.bucket, Key=self._key(key))  # type: ignore[no-any-return]
        except botocore.exceptions.ClientError as exc:
            if missing(exc):
                return None
            self._fail(exc, f"{what} {key}")
        except botocore.exceptions.BotoCoreError as exc:
            self._fail(exc, f"{what} {key}")

    def _head(self, key: str) -> dict[str, Any] | None:
        return self._unless_missing(self.client.head_object, key, "inspect")

    def _get(self, key: str) -> dict[str, Any] | None:
        return self._unless_missing(self.client.get_object, key, "read")

    def _read_body(self, response: dict[str, Any], key: str) -> bytes:
        with self._calling(f"read {key}"):
            return response["Body"].read()  # type: ignore[no-any-return]

    # -- immutable files -------------------------------------------------------------

    def put_file(self, key: str, source: bytes | Path, sha256: str) -> bool:
        for attempt in range(20):
            try:
                if isinstance(source, bytes):
                    self._put(key, source, IfNoneMatch="*", Metadata={SHA256_META: sha256})
                else:
                    with open(source, "rb") as body:
                        self._put(key, body, IfNoneMatch="*", Metadata={SHA256_META: sha256})
                return True
            except botocore.exceptions.ClientError as exc:
                if code_of(exc) == "ConditionalRequestConflict" or status_of(exc) == 409:
                    self.backoff(attempt)  # a concurrent write in flight: ask again
                    continue
                if not lost_race(exc):
                    self._fail(exc, f"store {key}")
            except botocore.exceptions.BotoCoreError as exc:
                self._fail(exc, f"store {key}")
            stored = self._stored_sha256(key)
            if stored is None:
                continue  # deleted in between: try to create it again
            if stored == sha256:
                return False
            raise file_exists(key, stored, sha256)
        raise StorageUnavailable(f"S3 storage {self.url}: cannot store {key}: too many conflicts")

    def _put(self, key: str, body: bytes | BinaryIO, **kwargs: Any) -> dict[str, Any]:
        return self.client.put_object(  # type: ignore[no-any-return]
            Bucket=self.bucket,
            Key=self._key(key),
            Body=body,
            ContentType=_content_type(key),
            **kwargs,
        )

    def _stored_sha256(self, key: str) -> str | None:
        head = self._head(key)
        if head is None:
            return None
        declared = head.get("Metadata", {}).get(SHA256_META)
        if declared:
            return str(declared)
        try:
            with self.open_read(key) as body:
                return hash_stream(body, blake2=False).sha256
        except FileNotFoundError:
            return None

    def replace_file(self, key: str, data: bytes) -> None:
        with self._calling(f"replace {key}"):
            self._put(key, data)

    def read_bytes(self, key: str) -> bytes | None:
        response = self._get(key)
        return self._read_body(response, key) if response is not None else None

    @contextmanager
    def _open(self, key: str) -> Iterator[BinaryIO]:
        response = self._get(key)
        if response is None:
            raise FileNotFoundError(key)
        body = response["Body"]
        try:
            yield body
        finally:
            body.close()

    def open_read(self, key: str) -> AbstractContextManager[BinaryIO]:
        return self._open(key)

    def stat(self, key: str) -> StoredObject | None:
        head = self._head(key)
        if head is None:
            return None
        return StoredObject(key, int(head["ContentLength"]), head["LastModified"])

    def delete(self, key: str) -> None:
        with self._calling(f"delete {key}"):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def _list(self, prefix: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        with self._calling(f"list {prefix}"):
            yield from paginator.paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix, Delimiter="/", **kwargs
            )

    def list_files(self, prefix: str) -> Iterator[StoredObject]:
        strip = len(self.prefix)
        for page in self._list(prefix):
            for item in page.get("Contents", []):
                key = item["Key"][strip:]
                if key.rsplit("/", 1)[-1].startswith("."):
                    continue
                yield StoredObject(key, int(item["Size"]), item["LastModified"])

    def list_dirs(self, prefix: str) -> Iterator[str]:
        start = len(self.prefix + prefix)
        for page in self._list(prefix):
            for common in page.get("CommonPrefixes", []):
                yield common["Prefix"][start:].rstrip("/")

    def walk(self, prefix: str = "") -> Iterator[StoredObject]:
        strip = len(self.prefix)
        paginator = self.client.get_paginator("list_objects_v2")
        with self._calling(f"list {prefix or 'the bucket'}"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for item in page.get("Contents", []):
                    yield StoredObject(item["Key"][strip:], int(item["Size"]), item["LastModified"])

    # -- documents and pages -------------------------------------------------------------

    def read_doc(self, key: str) -> Doc | None:
        response = self._get(key)
        return Doc(self._read_body(response, key), response["ETag"]) if response is not None else None

    def _put_conditional(self, key: str, data: bytes, generation: int, etag: str | None) -> bool:
        return self._put_if(key, data, generation, etag) is not None

    def _put_if(self, key: str, data: bytes, generation: int, etag: str | None) -> dict[str, Any] | None:
        """The conditional PUT's response, or None when another writer got there first."""
        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        try:
            return self._put(key, data, Metadata={GENERATION_META: str(generation)}, **condition)
        except botocore.exceptions.ClientError as exc:
            if lost_race(exc):
                return None
            self._fail(exc, f"update {key}")
        except botocore.exceptions.BotoCoreError as exc:
            self._fail(exc, f"update {key}")

    def swap_doc(self, key: str, data: bytes, generation: int, expected: Doc | None) -> bool:
        return self._put_conditional(key, data, generation, expected.token if expected else None)

    def swap(self, key: str, data: bytes, generation: int, expected: Doc | None) -> Doc | None:
        response = self._put_if(key, data, generation, expected.token if expected else None)
        return Doc(data, response.get("ETag")) if response is not None else None

    def read_doc_unless(self, key: str, token: str | None) -> tuple[bool, Doc | None]:
        """A conditional GET (``If-None-Match``): 304 costs a round trip, not the body."""
        if token is None:
            return True, self.read_doc(key)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key), IfNoneMatch=token)
        except botocore.exceptions.ClientError as exc:
            if code_of(exc) in ("304", "NotModified") or status_of(exc) == 304:
                return False, None
            if missing(exc):
                return True, None
            self._fail(exc, f"read {key}")
        except botocore.exceptions.BotoCoreError as exc:
            self._fail(exc, f"read {key}")
        return True, Doc(self._read_body(response, key), response["ETag"])

    def generation_of(self, key: str) -> int | None:
        head = self._head(key)
        if head is None:
            return None
        value = head.get("Metadata", {}).get(GENERATION_META, "")
        return int(value) if str(value).isdigit() else None

    def put_page(self, key: str, data: bytes, generation: int) -> bool:
        for attempt in range(100):
            head = self._head(key)
            if head is not None:
                stored = head.get("Metadata", {}).get(GENERATION_META, "")
                if str(stored).isdigit() and int(stored) >= generation:
                    return False
            self.checkpoint("page-checked", key)
            if self._put_conditional(key, data, generation, head["ETag"] if head else None):
                return True
            self.backoff(attempt)
        raise StorageUnavailable(f"S3 storage {self.url}: cannot write {key}: too many conflicts")

    # -- serving -----------------------------------------------------------------------

    def read_page(self, key: str) -> Page | None:
        doc = self.read_doc(key)
        return Page(doc.data, str(doc.token)) if doc else None

    def presigned_url(self, key: str, expires: int = 300) -> str | None:
        with self._calling(f"sign a URL for {key}"):
            return str(
                self.client.generate_presigned_url(
                    "get_object",
                    Params={"Bucket": self.bucket, "Key": self._key(key)},
                    ExpiresIn=expires,
                )
            )

    def probe(self, *, create: bool = False) -> None:
        """The bucket exists, the credentials work, and conditional writes are honoured.

        spoold's guarantees (no file replaced, no update lost between hosts) rest on
        ``If-None-Match`` and ``If-Match``; an S3-compatible store that ignores them would
        silently break every one, so the probe writes a scratch object three ways and
        refuses a store that lets the second and third writes through.
        """
        try:
            self.ping()
            key = f".spoold/probe/{uuid.uuid4().hex}"
            with self._calling("write a probe object"):
                self._put(key, b"1", IfNoneMatch="*")
            try:
                honoured = all(self._refused(key, condition) for condition in (
                    {"IfNoneMatch": "*"}, {"IfMatch": '"00000000000000000000000000000000"'}))
            finally:
                with self._calling("delete the probe object"):
                    self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except StorageUnavailable as exc:
            if exc.code == "storage-misconfigured":
                raise ConfigError(str(exc)) from None
            raise
        if not honoured:
            raise ConfigError(
                f"S3 storage {self.url}: the store ignores conditional writes (If-None-Match / "
                "If-Match); spoold needs them to never replace a published file or lose an "
                "update. Use AWS S3 or an S3-compatible store that supports them"
            )

    def _refused(self, key: str, condition: dict[str, str]) -> bool:
        """Whether a conditional write that must fail does (412, or 409 in flight)."""
        try:
            self._put(key, b"2", **condition)
        except botocore.exceptions.ClientError as exc:
            if lost_race(exc):
                return True
            self._fail(exc, "write a probe object")
        except botocore.exceptions.BotoCoreError as exc:
            self._fail(exc, "write a probe object")
        return False

    def ping(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except botocore.exceptions.ClientError as exc:
            if status_of(exc) == 404:  # HEAD has no body, so no error code to map
                exc.response.setdefault("Error", {})["Code"] = "NoSuchBucket"
            self._fail(exc, "reach the bucket")
        except botocore.exceptions.BotoCoreError as exc:
            self._fail(exc, "reach the bucket")
