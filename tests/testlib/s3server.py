"""Shared fixtures for the storage tests: a moto S3 server and a storage per backend.

Import the fixtures into a test module (``from s3server import storage, ...``). The moto
server is started once per test session (a module-level singleton, so importing the
fixture into several modules still starts one server).

moto's conditional writes check and store in two steps, so under real concurrency two
``IfMatch`` writes can both succeed -- real S3 does not allow that. The concurrency tests
are about *our* retry logic, so the server serializes mutating requests (a lock around
the WSGI app for PUT/POST/DELETE); reads stay concurrent. The interleavings themselves are
proven deterministically with checkpoints, not by this server.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from spoold.storage import Storage
from spoold.storage.local import LocalStorage
from spoold.storage.s3 import S3Storage

_server: Any = None
_endpoint: str | None = None
_start_lock = threading.Lock()

ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class _SerializedWrites:
    """WSGI middleware: one mutating request at a time, so moto's CAS is atomic."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            return self.app(environ, start_response)
        with self.lock:
            # Materialize the body inside the lock: moto does its work while iterating.
            return list(self.app(environ, start_response))


def moto_endpoint() -> str:
    """Start the shared moto server (once) and point the environment at it."""
    global _server, _endpoint
    with _start_lock:
        if _endpoint is None:
            from moto.server import ThreadedMotoServer

            os.environ.update(ENV)
            logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request
            _server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            _server.start()
            wsgi = _server._server  # the werkzeug server; its app is looked up per request
            wsgi.app = _SerializedWrites(wsgi.app)
            host, port = _server.get_host_and_port()
            _endpoint = f"http://{host}:{port}"
        # Set on every call: a test may have used monkeypatch on the environment.
        os.environ["AWS_ENDPOINT_URL"] = _endpoint
        os.environ["AWS_ENDPOINT_URL_S3"] = _endpoint
        os.environ.update(ENV)
        return _endpoint


_admin: Any = None


def new_bucket() -> str:
    global _admin
    moto_endpoint()
    if _admin is None:
        _admin = boto3.client("s3", region_name="us-east-1")
    name = f"spoold-test-{uuid.uuid4().hex[:16]}"
    _admin.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def moto_server() -> str:
    return moto_endpoint()


@pytest.fixture
def s3_url(moto_server: str) -> str:
    return f"s3://{new_bucket()}/index"


@pytest.fixture(params=["local", "s3"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty storage, once per backend."""
    if request.param == "local":
        yield str(tmp_path / "store")
    else:
        moto_endpoint()
        yield f"s3://{new_bucket()}/index"


@pytest.fixture
def storage(storage_url: str) -> Storage:
    from spoold.storage import open_storage

    return open_storage(storage_url)


def second_handle(storage: Storage) -> Storage:
    """Another independent handle on the same storage (as another process would have)."""
    if isinstance(storage, LocalStorage):
        return LocalStorage(storage.root)
    assert isinstance(storage, S3Storage)
    return S3Storage(storage.bucket, storage.prefix)


def error_response(status: int, code: str) -> AWSResponse:
    """An S3 error answer, for botocore's ``before-send`` hook (injecting faults)."""
    body = f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode()

    class Raw:
        def stream(self, **kwargs: object) -> list[bytes]:
            return [body]

    return AWSResponse("http://injected", status, {"Content-Type": "application/xml"}, Raw())
