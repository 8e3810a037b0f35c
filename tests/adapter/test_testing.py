"""spoold.testing: the fakes users get (HTTP client, Runs, waiter, in-memory storage)."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

import spoold.testing
from spoold.spool.outcome import Outcome, Result
from spoold.storage.base import StorageUnavailable
from spoold.testing import (
    Connection,
    FakeWaiter,
    IncompleteResponse,
    ManualRun,
    MemoryStorage,
    basic_auth,
    parse_responses,
    raw_request,
    request,
    run_now,
)

# -- the HTTP client --------------------------------------------------------------------------


class Echo(Resource):
    """Answers with what it saw; ``/chunked`` without a length; ``/later`` not at once."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.later: list[Request] = []

    def render(self, request: Request) -> bytes | int:
        if request.path == b"/later":
            self.later.append(request)
            return NOT_DONE_YET
        if request.path == b"/chunked":
            request.write(b"first,")
            request.write(b"second")
            request.finish()
            return NOT_DONE_YET
        request.setResponseCode(201, b"Made It")
        request.responseHeaders.addRawHeader(b"x-seen", request.method)
        request.responseHeaders.addRawHeader(b"x-seen", request.getHeader(b"host") or b"-")
        body = request.method + b" " + request.uri + b" " + request.content.read()
        request.setHeader(b"content-length", b"%d" % len(body))
        return body


@pytest.fixture
def echo() -> Echo:
    return Echo()


@pytest.fixture
def site(echo: Echo) -> Site:
    return Site(echo, reactor=MemoryReactorClock())


def test_request_returns_status_reason_headers_and_body(site: Site) -> None:
    r = request(site, "POST", "/x?y=1", {"Content-Type": "text/plain"}, b"hello")
    assert (r.status, r.reason) == (201, "Made It")
    assert r.body == b"POST /x?y=1 hello" and r.text == "POST /x?y=1 hello"
    assert r.header("X-SEEN") == "index.test"  # the last value; names in any case
    assert r.header_values("x-seen") == ["POST", "index.test"]
    assert r.header("content-length") == str(len(r.body))
    assert r.header("nope") is None and r.header_values("nope") == []


def test_head_answers_have_headers_only(site: Site) -> None:
    r = request(site, "HEAD", "/x")
    assert r.status == 201 and r.body == b""
    assert r.header("content-length") == str(len(b"HEAD /x "))


def test_keep_alive_and_pipelining(site: Site) -> None:
    conn = Connection(site)
    conn.request("GET", "/one")
    conn.request("HEAD", "/two")
    conn.send(raw_request("GET", "/three"))
    assert [r.body for r in conn.responses()] == [b"GET /one ", b"", b"GET /three "]
    assert not conn.closed


def test_chunked_bodies_are_reassembled(site: Site) -> None:
    conn = Connection(site)
    conn.request("GET", "/chunked")
    assert b"transfer-encoding: chunked" in conn.transport.value().lower()
    [r] = conn.responses()
    assert r.body == b"first,second"
    conn.request("GET", "/after")  # the chunked body was delimited exactly
    assert [r.body for r in conn.responses()] == [b"first,second", b"GET /after "]


def test_a_request_not_answered_yet_is_reported(site: Site, echo: Echo) -> None:
    with pytest.raises(IncompleteResponse, match="pending"):
        request(site, "GET", "/later")
    conn = Connection(site)
    conn.request("GET", "/later")
    assert conn.responses() == []
    pending = echo.later[-1]
    pending.setHeader(b"content-length", b"10")
    pending.write(b"12345")
    with pytest.raises(IncompleteResponse, match="5 of its 10 bytes"):
        conn.responses()
    pending.write(b"67890")
    pending.finish()
    assert conn.responses()[0].body == b"1234567890"


@pytest.mark.parametrize(
    ("raw", "message"),
    [(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n", "never end"),
     (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "inside a chunk"),
     (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n", "before its last chunk")],
)
def test_truncated_responses_are_not_parsed(raw: bytes, message: str) -> None:
    with pytest.raises(IncompleteResponse, match=message):
        parse_responses(raw)


def test_parse_responses_knows_304_and_head_have_no_body() -> None:
    raw = (b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"
           b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"
           b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    first, second, third = parse_responses(raw, ["GET", "HEAD", "GET"])
    assert (first.status, first.body, first.header("etag")) == (304, b"", '"x"')
    assert (second.status, second.body) == (200, b"")
    assert third.body == b"ok"


def test_the_client_going_away(site: Site, echo: Echo) -> None:
    conn = Connection(site)
    conn.request("GET", "/later")
    lost: list[Failure] = []
    echo.later[-1].notifyFinish().addErrback(lost.append)
    conn.lose()
    assert len(lost) == 1 and "went away" in lost[0].getErrorMessage()


def test_raw_request_adds_host_and_length_only_when_missing() -> None:
    assert raw_request("POST", "/", body=b"abc") == (
        b"POST / HTTP/1.1\r\nHost: index.test\r\nContent-Length: 3\r\n\r\nabc")
    assert raw_request("POST", "/", [("Host", "h"), ("Transfer-Encoding", "chunked")], b"0\r\n\r\n") == (
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert raw_request("GET", "/", body=b"x", length=False).endswith(b"Host: index.test\r\n\r\nx")


def test_basic_auth() -> None:
    assert basic_auth("alice", "pä:ss") == "Basic YWxpY2U6cMOkOnNz"


# -- the Runs ---------------------------------------------------------------------------------


def test_run_now_calls_at_once() -> None:
    results: list[Any] = []
    run_now(lambda a, b=0: a + b, 1, b=2).addCallback(results.append)
    failed: list[Failure] = []
    run_now(lambda: 1 / 0).addErrback(failed.append)
    assert results == [3]
    assert failed[0].check(ZeroDivisionError)


def test_manual_run_queues_and_steps_in_order() -> None:
    run = ManualRun()
    calls: list[str] = []

    def first(x: int) -> int:
        calls.append("first")
        run(second)  # queued behind what is already waiting
        return x * 2

    def second() -> None:
        calls.append("second")

    results: list[Any] = []
    run(first, 21).addCallback(results.append)
    run(lambda: calls.append("lambda"))
    assert calls == [] and results == [] and len(run) == 2
    assert run.names() == ["first", "<lambda>"]
    done = run.step()
    assert calls == ["first"] and results == [42] and done.name == "first" and done.args == (21,)
    assert run.names() == ["<lambda>", "second"]
    assert run.flush() == 2
    assert calls == ["first", "lambda", "second"] and len(run) == 0


def test_manual_run_passes_errors_to_the_deferred_and_refuses_an_empty_step() -> None:
    run = ManualRun()
    failed: list[Failure] = []
    run(lambda: 1 / 0).addErrback(failed.append)
    run.step()
    assert failed[0].check(ZeroDivisionError)
    with pytest.raises(LookupError, match="no call is queued"):
        run.step()


# -- the waiter -------------------------------------------------------------------------------

ITEM = "1700000000.M1P2Q3.host,demo-1.0-py3-none-any.whl"


def test_fake_waiter_resolves_with_the_outcome_asked_for() -> None:
    waiter = FakeWaiter()
    got: list[Outcome] = []
    waiter.wait_for(ITEM).addCallback(got.append)
    assert got == [] and list(waiter.waiting) == [ITEM]
    outcome = waiter.resolve(ITEM, Result.REJECTED, code="file-exists", message="taken", http_status=409)
    assert got == [outcome] and waiter.waiting == {}
    assert (outcome.item, outcome.filename, outcome.result) == (ITEM, "demo-1.0-py3-none-any.whl", Result.REJECTED)
    assert (outcome.code, outcome.message, outcome.http_status) == ("file-exists", "taken", 409)
    with pytest.raises(LookupError, match="nobody waits"):
        waiter.resolve(ITEM)


def test_fake_waiter_records_cancelled_waits() -> None:
    waiter = FakeWaiter()
    d: Deferred[Outcome] = waiter.wait_for(ITEM)
    d.addErrback(lambda f: None)
    d.cancel()
    assert waiter.cancelled == [ITEM] and waiter.waiting == {}


def test_fake_waiter_auto_answers_every_wait() -> None:
    waiter = FakeWaiter(auto=Outcome("any", "demo-1.0-py3-none-any.whl", Result.UNCHANGED))
    got: list[Outcome] = []
    waiter.wait_for(ITEM).addCallback(got.append)
    assert [(o.item, o.result) for o in got] == [(ITEM, Result.UNCHANGED)]
    assert waiter.waiting == {}


# -- the in-memory storage --------------------------------------------------------------------


def test_memory_storage_knobs() -> None:
    storage = MemoryStorage()
    storage.put_page("simple/a/index.html", b"page", 1)
    assert storage.read_page("simple/a/index.html").data == b"page"  # type: ignore[union-attr]
    assert storage.reads == ["simple/a/index.html"]
    assert storage.presigned_url("packages/a/a.whl") is None  # served through spoold
    assert storage.local_path("packages/a/a.whl") is None  # never a local file
    storage.down = "the bucket is unreachable"
    for call in (storage.ping, lambda: storage.read_page("simple/a/index.html"),
                 lambda: storage.presigned_url("packages/a/a.whl")):
        with pytest.raises(StorageUnavailable, match="unreachable"):
            call()
    storage.down = None
    storage.ping()
    presigning = MemoryStorage(presign="https://bucket.example/")
    assert presigning.presigned_url("packages/a/a b.whl", 60) == (
        "https://bucket.example/packages/a/a%20b.whl?X-Amz-Expires=60&X-Amz-Signature=memory")


def test_every_name_is_exported_from_its_home() -> None:
    import importlib

    for name in spoold.testing.__all__:
        home = importlib.import_module(spoold.testing._HOMES[name])
        assert getattr(spoold.testing, name) is getattr(home, name), name
    with pytest.raises(AttributeError):
        spoold.testing.nothing_here  # noqa: B018
