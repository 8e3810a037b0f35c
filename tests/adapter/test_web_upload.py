"""POST / and /legacy/: the twine upload API over a real HTTP channel, raw bytes in."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from testlib.web_harness import make_site, upload_form, wheel
from twisted.internet.testing import MemoryReactorClock

from spoold.access.accounts import add_user
from spoold.access.htpasswd import Htpasswd
from spoold.spool.outcome import Result
from spoold.spool.queue import META, PAYLOAD, Spool
from spoold.testing import Connection, FakeWaiter, ManualRun, basic_auth, raw_request, request
from spoold.web import reason_phrase
from spoold.web.site import WebPolicy
from spoold.web.upload import UploadPolicy

USER, PASSWORD = "alice", "wonderland"


@pytest.fixture
def auth(tmp_path: Path) -> Htpasswd:
    add_user(tmp_path / "htpasswd", USER, PASSWORD, rounds=4)
    return Htpasswd(tmp_path / "htpasswd")


@pytest.fixture
def waiter() -> FakeWaiter:
    return FakeWaiter()


@pytest.fixture
def reactor() -> MemoryReactorClock:
    return MemoryReactorClock()


@pytest.fixture
def site(tmp_path: Path, spool: Spool, auth: Htpasswd, waiter: FakeWaiter, reactor: MemoryReactorClock):  # type: ignore[no-untyped-def]
    return make_site(tmp_path, spool, auth=auth, waiter=waiter, reactor=reactor, max_upload=10 << 20)


def post(conn: Connection, body: bytes, content_type: str, *, path: str = "/legacy/",
         auth: str | None = basic_auth(USER, PASSWORD), extra: dict[str, str] | None = None) -> None:
    headers = {"Content-Type": content_type, **(extra or {})}
    if auth is not None:
        headers["Authorization"] = auth
    conn.send(raw_request("POST", path, headers, body))


def items(spool: Spool) -> list[str]:
    return sorted(os.listdir(spool.new))


def leftovers(spool: Spool) -> list[str]:
    return sorted(os.listdir(spool.tmp))


# -- the happy path ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/legacy/", "/", "/legacy"])
def test_upload_waits_for_the_outcome(site, spool: Spool, waiter: FakeWaiter, path: str) -> None:  # type: ignore[no-untyped-def]
    filename, data = wheel("demo", "1.0")
    body, content_type = upload_form(filename, data)
    conn = Connection(site)
    post(conn, body, content_type, path=path)
    # delivered into new/, and no answer yet: the worker has not decided
    [item] = items(spool)
    assert item.endswith("," + filename)
    assert conn.transport.value() == b""
    assert (spool.new / item / PAYLOAD).read_bytes() == data
    meta = json.loads((spool.new / item / META).read_text())
    assert meta["sha256_digest"] == hashlib.sha256(data).hexdigest()
    assert meta["blake2_256_digest"] == hashlib.blake2b(data, digest_size=32).hexdigest()
    assert meta.items() >= {"uploader": USER, "name": "demo", "version": "1.0", "filetype": "bdist_wheel"}.items()
    waiter.resolve(item, Result.PUBLISHED, project="demo", version="1.0")
    [r] = conn.responses()
    assert r.status == 200 and filename in r.text
    assert leftovers(spool) == []


def test_unchanged_is_success(site, spool: Spool, waiter: FakeWaiter) -> None:  # type: ignore[no-untyped-def]
    body, content_type = upload_form(*wheel())
    conn = Connection(site)
    post(conn, body, content_type)
    waiter.resolve(items(spool)[0], Result.UNCHANGED)
    assert conn.responses()[0].status == 200


@pytest.mark.parametrize(
    ("status", "code", "message", "expected_status", "expected_text"),
    [
        (409, "file-exists", "File already exists: demo-1.0-py3-none-any.whl has other bytes",
         409, "File already exists"),
        (409, "file-exists", "a different file has this name", 409, "File already exists"),
        (400, "invalid-metadata", "METADATA has no Name field", 400, "METADATA has no Name field"),
        (400, "digest-mismatch", "the file does not match\r\nits digest ünïcode", 400, "the file does not match"),
    ],
)
def test_rejections(site, spool: Spool, waiter: FakeWaiter, status: int, code: str, message: str,  # type: ignore[no-untyped-def]
                    expected_status: int, expected_text: str) -> None:
    body, content_type = upload_form(*wheel())
    conn = Connection(site)
    post(conn, body, content_type)
    waiter.resolve(items(spool)[0], Result.REJECTED, code=code, message=message, http_status=status)
    [r] = conn.responses()
    assert r.status == expected_status
    assert expected_text in r.reason  # twine prints the reason phrase
    assert expected_text in r.text
    assert r.reason.isascii() and "\r" not in r.reason


def test_chunked_upload(site, spool: Spool, waiter: FakeWaiter) -> None:  # type: ignore[no-untyped-def]
    filename, data = wheel()
    body, content_type = upload_form(filename, data)
    chunked = b"".join(b"%x\r\n" % len(body[i:i + 7000]) + body[i:i + 7000] + b"\r\n"
                       for i in range(0, len(body), 7000)) + b"0\r\n\r\n"
    conn = Connection(site)
    conn.send(raw_request("POST", "/legacy/", {
        "Content-Type": content_type, "Authorization": basic_auth(USER, PASSWORD),
        "Transfer-Encoding": "chunked"}, chunked))
    [item] = items(spool)
    assert (spool.new / item / PAYLOAD).read_bytes() == data


def test_content_before_the_fields(site, spool: Spool) -> None:  # type: ignore[no-untyped-def]
    """Unusual order (file part first): staged in tmp/, then delivered; same result."""
    import io

    from requests_toolbelt import MultipartEncoder

    filename, data = wheel()
    encoder = MultipartEncoder([
        ("content", (filename, io.BytesIO(data), "application/octet-stream")),
        ("name", "demo"), ("version", "1.0"), ("filetype", "bdist_wheel"),
        ("sha256_digest", hashlib.sha256(data).hexdigest()), (":action", "file_upload"),
    ])
    conn = Connection(site)
    post(conn, encoder.to_string(), encoder.content_type)
    [item] = items(spool)
    assert (spool.new / item / PAYLOAD).read_bytes() == data
    assert leftovers(spool) == []


def test_large_bodies_are_buffered_in_the_spool_tmp(site, spool: Spool) -> None:  # type: ignore[no-untyped-def]
    body, content_type = upload_form(*wheel("demo", "1.0"))
    assert len(body) > 100_000  # because of the description field
    conn = Connection(site)
    head = raw_request("POST", "/legacy/", {"Content-Type": content_type,
                                            "Authorization": basic_auth(USER, PASSWORD)}, body)
    conn.send(head[:-1000])  # all but the end: the body is being received
    content = conn.channel.requests[-1].content
    target = os.readlink(f"/proc/self/fd/{content.fileno()}")
    assert target.startswith(str(spool.tmp) + "/")
    conn.send(head[-1000:])
    assert len(items(spool)) == 1
    assert content.closed


def test_credentials_are_checked_once_per_burst(site, spool: Spool, auth: Htpasswd) -> None:  # type: ignore[no-untyped-def]
    for version in ("1.0", "1.1", "1.2"):
        body, content_type = upload_form(*wheel("demo", version))
        post(Connection(site), body, content_type)
    assert len(items(spool)) == 3
    assert auth.slow_checks == 1


# -- authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize("credentials", [None, basic_auth(USER, "wrong"), basic_auth("mallory", PASSWORD), "Bearer x",
                                         "Basic ???"])
def test_bad_credentials_are_401(site, spool: Spool, credentials: str | None) -> None:  # type: ignore[no-untyped-def]
    body, content_type = upload_form(*wheel())
    conn = Connection(site)
    post(conn, body, content_type, auth=credentials)
    [r] = conn.responses()
    assert r.status == 401
    assert r.header("www-authenticate") == 'Basic realm="spoold", charset="UTF-8"'
    assert items(spool) == [] and leftovers(spool) == []


def test_no_accounts_is_403_with_instructions(tmp_path: Path, spool: Spool) -> None:
    site = make_site(tmp_path, spool, auth=None)
    body, content_type = upload_form(*wheel())
    r = request(site, "POST", "/legacy/", {"Content-Type": content_type, "Authorization": basic_auth(USER, PASSWORD)}, body)
    assert r.status == 403
    assert "htpasswd" in r.text and "--htpasswd FILE" in r.reason
    assert items(spool) == []


# -- hostile and broken uploads -----------------------------------------------------------------


def _form(**kwargs: Any) -> tuple[bytes, str]:
    filename = kwargs.pop("filename", None)
    data = kwargs.pop("data", None)
    f, d = wheel()
    return upload_form(filename or f, d if data is None else data, **kwargs)


@pytest.mark.parametrize(
    ("form", "status", "text"),
    [
        (_form(drop=("content",)), 400, "no 'content' file part"),
        (_form(drop=(":action",)), 400, "no ':action'"),
        (_form(extra=[(":action", "submit")], drop=(":action",)), 400, "file_upload"),
        (_form(drop=("protocol_version",), extra=[("protocol_version", "2")]), 400, "protocol_version 1"),
        (_form(drop=("name",)), 400, "'name'"),
        (_form(drop=("version",)), 400, "'version'"),
        (_form(drop=("filetype",)), 400, "filetype"),
        (_form(filetype="bdist_egg"), 400, "filetype"),
        (_form(filetype="sdist"), 400, "is a wheel"),
        (_form(drop=("sha256_digest", "blake2_256_digest")), 400, "no digest"),
        (_form(name="other"), 400, "names the project 'other'"),
        (_form(version="2.0"), 400, "version '2.0'"),
        (_form(version="not a version"), 400, "not a valid version"),
        (_form(drop=("sha256_digest",), extra=[("sha256_digest", "0" * 64)]), 400, "does not match"),
        (_form(drop=("blake2_256_digest",), extra=[("blake2_256_digest", "zz")]), 400, "hex digest"),
        (_form(extra=[("md5_digest", "0" * 32)]), 400, "md5_digest"),
        (_form(extra=[("name", "again")]), 400, "more than once"),
        (_form(filename="../../etc/demo-1.0-py3-none-any.whl"), 400, "path separator"),
        (_form(filename="C:\\Temp\\demo-1.0-py3-none-any.whl"), 400, "path separator"),
        (_form(filename="demo-1.0.exe"), 400, "obsolete"),
        (_form(filename="<script>alert(1)</script>-1.0.tar.gz"), 400, "filename"),
        (_form(name="<script>alert('x')</script>"), 400, "names the project"),
        (_form(name="dèmo-ünïcode"), 400, "names the project"),
        (_form(data=b""), 400, "empty"),
        ((b"--x\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\ndemo", "multipart/form-data; boundary=x"),
         400, "cut short"),
        ((b"garbage", "multipart/form-data"), 400, "no boundary parameter"),
        ((b"name=demo", "application/x-www-form-urlencoded"), 400, "not multipart/form-data"),
    ],
)
def test_hostile_forms(site, spool: Spool, form: tuple[bytes, str], status: int, text: str) -> None:  # type: ignore[no-untyped-def]
    body, content_type = form
    conn = Connection(site)
    post(conn, body, content_type)
    [r] = conn.responses()
    assert r.status == status, r.text
    assert text in r.text
    assert r.reason == reason_phrase(r.text).decode()  # twine shows the reason phrase
    assert r.header("content-type") == "text/plain; charset=utf-8"
    assert r.reason.isascii()
    assert items(spool) == [] and leftovers(spool) == []


def test_markup_in_messages_is_plain_text(site) -> None:  # type: ignore[no-untyped-def]
    body, content_type = _form(name="<img src=x onerror=alert(1)>")
    conn = Connection(site)
    post(conn, body, content_type)
    [r] = conn.responses()
    assert r.status == 400
    assert r.header("x-content-type-options") == "nosniff"
    assert r.header("content-type") == "text/plain; charset=utf-8"


def test_missing_content_type(site, spool: Spool) -> None:  # type: ignore[no-untyped-def]
    conn = Connection(site)
    conn.send(raw_request("POST", "/legacy/", {"Authorization": basic_auth(USER, PASSWORD)}, b"x" * 10))
    [r] = conn.responses()
    assert r.status == 400 and "no Content-Type" in r.text


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD"])
def test_wrong_methods_on_legacy(site, method: str) -> None:  # type: ignore[no-untyped-def]
    r = request(site, method, "/legacy/")
    assert r.status == 405
    assert r.header("allow") == "POST"


def test_wrong_methods_on_root(site) -> None:  # type: ignore[no-untyped-def]
    r = request(site, "PUT", "/")
    assert r.status == 405 and r.header("allow") == "GET, POST, HEAD"
    assert request(site, "GET", "/").status == 200


def test_unknown_upload_paths_are_404_not_redirects(site) -> None:  # type: ignore[no-untyped-def]
    body, content_type = upload_form(*wheel())
    for path in ("/legacy/x", "/upload/", "/legacy//"):
        r = request(site, "POST", path, {"Content-Type": content_type, "Authorization": basic_auth(USER, PASSWORD)}, body)
        assert r.status == 404, path


# -- size limits -----------------------------------------------------------------------------


def test_declared_oversize_body_is_refused_before_it_is_read(tmp_path: Path, spool: Spool, auth: Htpasswd) -> None:
    site = make_site(tmp_path, spool, auth=auth, max_upload=1000)
    conn = Connection(site)
    conn.send(raw_request("POST", "/legacy/", {
        "Content-Type": "multipart/form-data; boundary=x", "Authorization": basic_auth(USER, PASSWORD),
        "Content-Length": "5000", "Expect": "100-continue"}))
    [r] = conn.responses()
    assert r.status == 413
    assert "1000 bytes" in r.text and "1000 bytes" in r.reason
    assert r.header("connection") == "close"
    assert b"100 Continue" not in conn.transport.value()
    assert not conn.closed  # still reading what the client sends, so it sees the 413
    conn.send(b"x" * 5000)
    assert conn.closed
    assert items(spool) == [] and leftovers(spool) == []


def test_streamed_oversize_body_is_refused_when_it_passes_the_limit(tmp_path: Path, spool: Spool, auth: Htpasswd) -> None:
    site = make_site(tmp_path, spool, auth=auth, max_upload=100_000)
    conn = Connection(site)
    conn.send(raw_request("POST", "/legacy/", {
        "Content-Type": "multipart/form-data; boundary=x", "Authorization": basic_auth(USER, PASSWORD),
        "Transfer-Encoding": "chunked"}))
    chunk = b"%x\r\n" % 30_000 + b"y" * 30_000 + b"\r\n"
    for _ in range(3):
        conn.send(chunk)
    assert conn.transport.value() == b""
    conn.send(chunk)
    [r] = conn.responses()
    assert r.status == 413
    conn.send(chunk + b"0\r\n\r\n")
    assert conn.closed
    assert items(spool) == [] and leftovers(spool) == []


def test_a_refused_body_is_drained_only_up_to_a_limit(tmp_path: Path, spool: Spool, auth: Htpasswd) -> None:
    policy = WebPolicy(drain_limit=10_000)
    site = make_site(tmp_path, spool, auth=auth, max_upload=1000, policy=policy)
    conn = Connection(site)
    conn.send(raw_request("POST", "/legacy/", {"Content-Type": "x", "Content-Length": str(10 << 20)}))
    assert conn.responses()[0].status == 413
    conn.send(b"z" * 20_000)
    assert conn.transport.disconnected  # aborted, not waiting for 10 MB of junk


def test_limit_is_exact(tmp_path: Path, spool: Spool, auth: Htpasswd, waiter: FakeWaiter) -> None:
    body, content_type = upload_form(*wheel())
    site = make_site(tmp_path, spool, auth=auth, waiter=waiter, max_upload=len(body))
    conn = Connection(site)
    post(conn, body, content_type)
    assert len(items(spool)) == 1


# -- waiting -----------------------------------------------------------------------------------


def test_client_disconnect_cancels_the_wait(site, spool: Spool, waiter: FakeWaiter) -> None:  # type: ignore[no-untyped-def]
    body, content_type = upload_form(*wheel())
    conn = Connection(site)
    post(conn, body, content_type)
    [item] = items(spool)
    conn.lose()
    assert waiter.cancelled == [item]
    assert items(spool) == [item]  # the item itself is still processed


def test_wait_timeout_is_503_and_the_item_stays(tmp_path: Path, spool: Spool, auth: Htpasswd,
                                                 waiter: FakeWaiter, reactor: MemoryReactorClock) -> None:
    policy = WebPolicy(upload=UploadPolicy(wait_timeout=60))
    site = make_site(tmp_path, spool, auth=auth, waiter=waiter, reactor=reactor, policy=policy)
    body, content_type = upload_form(*wheel())
    conn = Connection(site)
    post(conn, body, content_type)
    reactor.advance(59)
    assert conn.transport.value() == b""
    reactor.advance(2)
    [r] = conn.responses()
    assert r.status == 503 and "will be published" in r.text and r.header("retry-after")
    assert len(items(spool)) == 1


def test_a_full_spool_is_503(site, spool: Spool, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    def full(*args: Any, **kwargs: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(spool, "delivery", full)
    body, content_type = upload_form(*wheel())
    conn = Connection(site)
    post(conn, body, content_type)
    [r] = conn.responses()
    assert r.status == 503 and "No space left" in r.text


def test_metrics_count_uploads(site, spool: Spool, waiter: FakeWaiter) -> None:  # type: ignore[no-untyped-def]
    body, content_type = upload_form(*wheel())
    post(Connection(site), body, content_type)
    waiter.resolve(items(spool)[0], Result.PUBLISHED)
    post(Connection(site), *_form(name="other"))
    post(Connection(site), body, content_type, auth=None)
    text = site.metrics.render().decode()
    # published items are counted by the worker (record_outcome), not twice here
    assert 'spoold_uploads_total{result="published"} 0.0' in text
    assert 'spoold_uploads_total{result="rejected"} 2.0' in text
    assert 'spoold_rejections_total{code="bad-upload"} 1.0' in text
    assert 'spoold_rejections_total{code="unauthorized"} 1.0' in text
    assert 'spoold_http_requests_total{method="POST",status="200"} 1.0' in text
    assert "spoold_upload_wait_seconds_count 1.0" in text


def test_metrics_record_outcome() -> None:
    from spoold.metrics import Metrics
    from spoold.spool.outcome import Outcome

    metrics = Metrics()
    metrics.record_outcome(Outcome("i", "f", Result.PUBLISHED), 0.2)
    metrics.record_outcome(Outcome("i", "f", Result.REJECTED, code="file-exists"), 0.1)
    metrics.record_outcome(Outcome("i", "f", Result.REJECTED, code="Bad Code!"))
    text = metrics.render().decode()
    assert 'spoold_uploads_total{result="published"} 1.0' in text
    assert 'spoold_rejections_total{code="file-exists"} 1.0' in text
    assert 'spoold_rejections_total{code="other"} 1.0' in text
    assert "spoold_publish_seconds_count 2.0" in text


@pytest.mark.parametrize(
    ("auth_on", "credentials", "status"),
    [(True, None, 401), (True, "Bearer token", 401), (False, basic_auth(USER, PASSWORD), 403)],
)
def test_uploads_without_a_chance_are_refused_before_the_body(
    tmp_path: Path, spool: Spool, auth: Htpasswd, auth_on: bool, credentials: str | None, status: int,
) -> None:
    site = make_site(tmp_path, spool, auth=auth if auth_on else None)
    headers = {"Content-Type": "multipart/form-data; boundary=x", "Content-Length": str(500 << 20)}
    if credentials:
        headers["Authorization"] = credentials
    conn = Connection(site)
    conn.send(raw_request("POST", "/legacy/?x=1", headers))
    [r] = conn.responses()  # answered with only the headers in
    assert r.status == status and r.header("connection") == "close"
    if status == 401:
        assert r.header("www-authenticate", ).startswith("Basic realm=")  # type: ignore[union-attr]
    conn.send(b"x" * 100_000)
    assert leftovers(spool) == [] and items(spool) == []


def test_a_wrong_password_is_refused_before_the_body(site, spool: Spool) -> None:  # type: ignore[no-untyped-def]
    """401 with only the headers in, and no "100 Continue": the body is never stored."""
    conn = Connection(site)
    conn.send(raw_request("POST", "/legacy/", {"Content-Type": "multipart/form-data; boundary=x",
                                               "Authorization": basic_auth(USER, "wrong"),
                                               "Content-Length": str(5 << 20), "Expect": "100-continue"}))
    [r] = conn.responses()
    assert r.status == 401 and r.header("connection") == "close"
    assert r.header("www-authenticate", ).startswith("Basic realm=")  # type: ignore[union-attr]
    assert b"100 Continue" not in conn.transport.value()
    request = conn.channel.requests[-1]
    conn.send(b"x" * (1 << 20))  # a client that sends anyway: read and dropped
    assert isinstance(request.content, io.BytesIO) and request.content.getvalue() == b""
    assert leftovers(spool) == [] and items(spool) == []


def test_blocking_work_runs_off_the_request_path(tmp_path: Path, spool: Spool, auth: Htpasswd,
                                                 waiter: FakeWaiter) -> None:
    run = ManualRun()
    site = make_site(tmp_path, spool, auth=auth, waiter=waiter, run=run)
    body, content_type = upload_form(*wheel())
    conn = Connection(site)
    post(conn, body, content_type)
    # nothing blocking happened while the request was handled: it is all queued
    assert run.names() == ["check"]  # credentials and free space, before the body is read
    assert auth.slow_checks == 0 and items(spool) == []
    run.step()
    assert run.names() == ["_receive"] and items(spool) == []
    run.step()
    assert len(items(spool)) == 1 and len(waiter.waiting) == 1


def test_uploader_leaving_during_parsing_still_delivers(tmp_path: Path, spool: Spool, auth: Htpasswd,
                                                        waiter: FakeWaiter) -> None:
    run = ManualRun()
    site = make_site(tmp_path, spool, auth=auth, waiter=waiter, run=run)
    body, content_type = upload_form(*wheel())
    conn = Connection(site)
    post(conn, body, content_type)
    run.step()  # verify
    conn.lose()
    run.flush()  # the parse and delivery finish after the client left
    assert len(items(spool)) == 1  # published anyway: the bytes were complete
    assert waiter.waiting == {}  # nobody waits for an answer no one will read
    assert conn.transport.value() == b""
