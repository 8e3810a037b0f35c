"""The assembled site: /health, /metrics, timeouts against slow clients, logging, wiring."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from testlib.web_harness import make_site, upload_form, wheel
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs

from spoold.access.accounts import add_user
from spoold.access.htpasswd import Htpasswd
from spoold.config import Settings
from spoold.spool.outcome import Result
from spoold.spool.queue import Spool
from spoold.testing import Connection, FakeWaiter, ManualRun, MemoryStorage, basic_auth, raw_request, request, run_now
from spoold.web.site import WebPolicy, build_site


@pytest.fixture
def reactor() -> MemoryReactorClock:
    return MemoryReactorClock()


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage()


# -- /health and /metrics ----------------------------------------------------------------------


def test_health(tmp_path: Path, spool: Spool, storage: MemoryStorage) -> None:
    spool.deliver_bytes(b"x", "a-1.0.tar.gz")
    site = make_site(tmp_path, spool, storage=storage)
    r = request(site, "GET", "/health")
    assert r.status == 200 and r.header("content-type") == "application/json"
    report = json.loads(r.body)
    assert report["ok"] is True
    assert report["queues"] == {"incoming": 0, "tmp": 0, "new": 1, "cur": 0, "deferred": 0,
                                "done": 0, "failed": 0}
    assert report["storage"] == {"reachable": True, "error": None}
    assert r.header("cache-control") == "no-store"


def test_health_with_storage_down_still_answers(tmp_path: Path, spool: Spool, storage: MemoryStorage) -> None:
    storage.down = "cannot reach bucket pypi: timed out"
    site = make_site(tmp_path, spool, storage=storage)
    r = request(site, "GET", "/health")
    assert r.status == 200
    report = json.loads(r.body)
    assert report["ok"] is False
    assert report["storage"] == {"reachable": False, "error": "cannot reach bucket pypi: timed out"}
    assert "spoold_storage_reachable 0.0" in site.metrics.render().decode()


def test_metrics(tmp_path: Path, spool: Spool) -> None:
    spool.deliver_bytes(b"x", "a-1.0.tar.gz")
    spool.deliver_bytes(b"y", "b-1.0.tar.gz")
    site = make_site(tmp_path, spool)
    request(site, "GET", "/simple/nothing/")
    r = request(site, "GET", "/metrics")
    assert r.status == 200
    assert r.header("content-type").startswith("text/plain; version=")  # type: ignore[union-attr]
    text = r.text
    assert 'spoold_queue_depth{folder="new"} 2.0' in text
    assert 'spoold_http_requests_total{method="GET",status="404"} 1.0' in text
    assert "spoold_publish_seconds_bucket" in text
    # nothing from the global registry (process collectors, other tests' metrics)
    assert "process_cpu_seconds_total" not in text and "python_info" not in text


def test_hostile_methods_do_not_create_metric_series(tmp_path: Path, spool: Spool) -> None:
    site = make_site(tmp_path, spool)
    for i in range(5):
        request(site, f"X{i}WEIRD", "/simple/")
    assert site.metrics.render().decode().count('spoold_http_requests_total{method="other"') == 1


# -- slow and idle clients --------------------------------------------------------------------


def test_headers_must_arrive_within_the_header_timeout(tmp_path: Path, spool: Spool, reactor: MemoryReactorClock) -> None:
    site = make_site(tmp_path, spool, reactor=reactor, policy=WebPolicy(header_timeout=30, idle_timeout=60))
    conn = Connection(site)
    conn.send(b"GET /simple/ HTTP/1.1\r\n")
    # a slowloris: one header byte every 10 s keeps the idle timeout from firing...
    for _ in range(2):
        reactor.advance(10)
        conn.send(b"X")
    assert not conn.closed
    reactor.advance(10.5)
    # ...but not the header deadline
    assert conn.transport.value().startswith(b"HTTP/1.1 408 ")
    assert conn.closed


def test_idle_connections_are_closed(tmp_path: Path, spool: Spool, reactor: MemoryReactorClock) -> None:
    site = make_site(tmp_path, spool, reactor=reactor, policy=WebPolicy(idle_timeout=60))
    conn = Connection(site)
    reactor.advance(59)
    assert not conn.closed
    reactor.advance(2)
    assert conn.closed


def test_a_stalled_body_times_out(tmp_path: Path, spool: Spool, reactor: MemoryReactorClock) -> None:
    site = make_site(tmp_path, spool, reactor=reactor, policy=WebPolicy(idle_timeout=60, header_timeout=30))
    conn = Connection(site)
    conn.send(raw_request("POST", "/legacy/", {"Content-Length": "1000"}) + b"x" * 10)
    reactor.advance(45)  # past the header deadline: headers are in, so it does not apply
    assert not conn.closed
    reactor.advance(20)  # but the idle timeout does
    assert conn.closed


def test_timeouts_do_not_cut_an_upload_waiting_for_its_outcome(tmp_path: Path, spool: Spool,
                                                                reactor: MemoryReactorClock) -> None:
    add_user(tmp_path / "htpasswd", "alice", "pw", rounds=4)
    waiter = FakeWaiter()
    site = make_site(tmp_path, spool, reactor=reactor, waiter=waiter, auth=Htpasswd(tmp_path / "htpasswd"),
                     policy=WebPolicy(idle_timeout=60, header_timeout=30))
    body, content_type = upload_form(*wheel())
    conn = Connection(site)
    conn.send(raw_request("POST", "/legacy/", {"Content-Type": content_type,
                                               "Authorization": basic_auth("alice", "pw")}, body))
    reactor.advance(300)  # a slow publish (S3 retries)
    assert not conn.closed
    [item] = list(waiter.waiting)
    waiter.resolve(item, Result.PUBLISHED)
    assert conn.responses()[0].status == 200
    assert not conn.closed


def test_keep_alive_and_pipelining(tmp_path: Path, spool: Spool, reactor: MemoryReactorClock) -> None:
    site = make_site(tmp_path, spool, reactor=reactor)
    conn = Connection(site)
    conn.send(raw_request("GET", "/simple/") + raw_request("GET", "/health") + raw_request("GET", "/nope"))
    assert [r.status for r in conn.responses()] == [200, 200, 404]
    # the header deadline of a finished request does not linger
    reactor.advance(40)
    assert not conn.closed


def test_request_line_garbage_is_400(tmp_path: Path, spool: Spool) -> None:
    conn = Connection(make_site(tmp_path, spool))
    conn.send(b"NOT HTTP AT ALL\r\n\r\n")
    assert conn.transport.value().startswith(b"HTTP/1.1 400")


# -- wiring ------------------------------------------------------------------------------------


def test_front_page_and_404(tmp_path: Path, spool: Spool) -> None:
    site = make_site(tmp_path, spool)
    r = request(site, "GET", "/")
    assert r.status == 200 and "/simple/" in r.text
    assert request(site, "GET", "/favicon.ico").status == 404
    assert request(site, "GET", "/x/y/z").header("content-type") == "text/plain; charset=utf-8"


def test_access_log_never_shows_credentials(tmp_path: Path, spool: Spool) -> None:
    site = make_site(tmp_path, spool)
    with capturedLogs() as events:
        request(site, "GET", "/simple/?q=%0Ainjected", {"Authorization": basic_auth("alice", "hunter2"),
                                                        "User-Agent": "pip/24.0"})
    lines = [e["log_format"].format(**e) for e in events if "uri" in e]
    assert len(lines) == 1
    assert "hunter2" not in lines[0] and basic_auth("alice", "hunter2")[6:] not in lines[0]
    assert "GET /simple/?q=%0Ainjected" in lines[0] and "pip/24.0" in lines[0] and " 200 " in lines[0]


def test_build_site_needs_a_way_to_run_blocking_calls(tmp_path: Path, spool: Spool) -> None:
    with pytest.raises(ValueError, match="threadpool"):
        build_site(storage_reader=MemoryStorage(), spool=spool, waiter=FakeWaiter(), auth=None,
                   settings=Settings(), reactor=MemoryReactorClock(), threadpool=None)


class _ThreadReactor(MemoryReactorClock):
    def callFromThread(self, f: Any, *args: Any, **kwargs: Any) -> None:
        f(*args, **kwargs)


class _InlinePool:
    """Implements the part of ThreadPool that deferToThreadPool uses, inline."""

    def callInThreadWithCallback(self, onResult: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        try:
            result = f(*args, **kwargs)
        except BaseException:
            from twisted.python.failure import Failure

            onResult(False, Failure())
        else:
            onResult(True, result)


def test_build_site_with_a_threadpool(tmp_path: Path, spool: Spool, storage: MemoryStorage) -> None:
    storage.put_page("simple/index.html", b"root", 1)
    site = build_site(storage_reader=storage, spool=spool, waiter=FakeWaiter(), auth=None,
                      settings=Settings(spool=str(spool.root), max_upload=1234, read="public"),
                      reactor=_ThreadReactor(), threadpool=_InlinePool())  # type: ignore[arg-type]
    assert site.max_body == 1234
    assert site.body_dir == spool.tmp
    assert request(site, "GET", "/simple/").body == b"root"


def test_twisted_does_not_parse_upload_bodies_into_args(tmp_path: Path, spool: Spool) -> None:
    """Twisted's form parsing reads the whole body into memory; uploads parse it from disk."""
    add_user(tmp_path / "htpasswd", "alice", "pw", rounds=4)
    run = ManualRun()  # the request stays in the channel, its password check queued
    site = make_site(tmp_path, spool, auth=Htpasswd(tmp_path / "htpasswd"), run=run)
    body, content_type = upload_form(*wheel())
    conn = Connection(site)
    conn.request("POST", "/legacy/?q=1", {"Content-Type": content_type,
                                          "Authorization": basic_auth("alice", "pw")}, body)
    [pending] = conn.channel.requests
    assert run.names() == ["check"]  # the credentials, before the body is read
    run.step()
    assert run.names() == ["_receive"]  # the body is in; the form is parsed in a thread
    assert pending.args == {b"q": [b"1"]}  # the query only, not the form's fields


@pytest.mark.parametrize(("method", "path", "status"), [("HEAD", "/nothing", 404), ("HEAD", "/legacy/", 405),
                                                        ("HEAD", "/simple/none/", 404), ("HEAD", "/", 200)])
def test_head_answers_have_no_body(tmp_path: Path, spool: Spool, method: str, path: str, status: int) -> None:
    site = make_site(tmp_path, spool)
    conn = Connection(site)
    with capturedLogs() as events:
        conn.send(raw_request(method, path) + raw_request("GET", "/health"))
    head, after = conn.transport.value().split(b"\r\n\r\n", 1)
    assert head.startswith(f"HTTP/1.1 {status} ".encode())
    assert b"\r\nContent-Length: " in head and b"Content-Length: 0\r\n" not in head + b"\r\n"
    # the next response follows right after the headers: no body was sent
    assert after.startswith(b"HTTP/1.1 200 OK")
    assert not [e for e in events if "eat it" in e.get("log_format", "")]


def test_the_fast_access_log_writes_each_turns_lines_at_once(tmp_path: Path, spool: Spool) -> None:
    import io

    from spoold.web.site import AccessLog

    reactor = MemoryReactorClock()
    out = io.StringIO()
    access = AccessLog(reactor, out)
    access.line("10.0.0.1", "GET", "/simple/a/", 200, 123, "pip/24.0")
    access.line("10.0.0.1", "GET", "/simple/b/", 404, "-", "uv/0.5")
    assert out.getvalue() == ""  # kept until the reactor turn ends
    reactor.advance(0)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith(' [spoold.web.site#info] 10.0.0.1 "GET /simple/a/" 200 123 "pip/24.0"')
    assert lines[1].endswith('"GET /simple/b/" 404 - "uv/0.5"')


def test_the_site_logs_requests_through_the_fast_access_log(tmp_path: Path, spool: Spool) -> None:
    import io

    out = io.StringIO()
    reactor = MemoryReactorClock()
    site = build_site(storage_reader=MemoryStorage(), spool=spool, waiter=FakeWaiter(), auth=None,
                      settings=Settings(read="public"), reactor=reactor, threadpool=None,
                      run=run_now, access_log_to=out)
    request(site, "GET", "/simple/?q=%0Ainjected", {"Authorization": basic_auth("alice", "hunter2"),
                                                    "User-Agent": "pip/24.0\x1b[31m"})
    reactor.advance(0)
    (line,) = out.getvalue().splitlines()
    assert "hunter2" not in line and basic_auth("alice", "hunter2")[6:] not in line
    assert '"GET /simple/?q=%0Ainjected" 200' in line and '"pip/24.0\\x1b[31m"' in line
