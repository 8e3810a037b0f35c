"""SpooldRequest and SpooldChannel against the installed Twisted.

spoold learns the request line, a disconnect and the end of a response through methods
Twisted calls (``lineReceived``, ``notifyFinish``, ``allContentReceived``/``requestDone``)
instead of Twisted's private attributes. These tests pin each of those down, so a Twisted
release that calls them differently fails here, loudly, rather than quietly turning off
early refusals, disconnect handling or the header deadline.
"""

from __future__ import annotations

from pathlib import Path

from testlib.web_harness import make_site
from twisted.internet.testing import MemoryReactorClock
from twisted.web.http import HTTPChannel
from twisted.web.server import Request

from spoold.http.headers import RequestLine
from spoold.spool.queue import Spool
from spoold.testing import Connection, ManualRun, raw_request
from spoold.web.channel import SpooldChannel
from spoold.web.request import SpooldRequest
from spoold.web.responses import is_gone
from spoold.web.site import WebPolicy

NO_CREDENTIALS_UPLOAD = raw_request("POST", "/legacy/?x=1", {
    "Content-Type": "multipart/form-data; boundary=x", "Content-Length": str(50 << 20)})


def test_the_hooks_spoold_overrides_are_still_twisteds() -> None:
    """An override of a method Twisted no longer calls would be dead code, silently."""
    for name in ("dataReceived", "lineReceived", "headerReceived", "lineLengthExceeded", "allHeadersReceived",
                 "allContentReceived", "requestDone", "connectionLost", "resumeProducing"):
        assert name in dir(HTTPChannel), name
        assert name in vars(SpooldChannel), name
    for name in ("gotLength", "handleContentChunk", "requestReceived", "notifyFinish"):
        assert name in dir(Request), name


def test_spoolds_own_attributes_do_not_shadow_twisteds(tmp_path: Path, spool: Spool) -> None:
    site = make_site(tmp_path, spool)
    conn = Connection(site)
    conn.send(b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
    request = conn.channel.requests[-1]
    ours_on_request = ("request_line", "gone", "verified", "_refused", "_received", "_drained", "_site",
                       "_lost", "_refuse", "_discard", "_holding", "_held", "_held_bytes", "_expect_continue",
                       "_declared", "_complete", "_slot", "_rate_call", "_rate_mark", "_hold", "_admitted",
                       "_admission_failed",
                       "_open_content", "_store", "_start_rate_clock", "_check_rate", "_end_body")
    ours_on_channel = ("headerTimeout", "_headerCall", "_inBody", "_responding", "_cancelHeaderCall",
                       "_headersTooSlow", "_holdingReads", "_headBytes", "_headLines", "hold_reading",
                       "resume_reading", "_headTooLarge")
    twisted_request = set(dir(Request)) | {n for n in vars(request) if n not in ours_on_request}
    twisted_channel = set(dir(HTTPChannel)) | {n for n in vars(conn.channel) if n not in ours_on_channel}
    assert twisted_request.isdisjoint(ours_on_request)
    assert twisted_channel.isdisjoint(ours_on_channel)


def test_the_request_line_is_known_before_the_body(tmp_path: Path, spool: Spool) -> None:
    conn = Connection(make_site(tmp_path, spool))
    conn.send(raw_request("POST", "/legacy/?x=1", {"Content-Length": "10"}) + b"01234")
    request = conn.channel.requests[-1]
    assert isinstance(request, SpooldRequest)
    assert request.request_line == RequestLine(b"POST", b"/legacy/?x=1", b"HTTP/1.1")
    assert request.request_line.path == b"/legacy/"
    assert request.method != b"POST"  # Twisted's own: not set until the body is in


def test_pipelined_requests_each_get_their_own_request_line(tmp_path: Path, spool: Spool) -> None:
    """The second request line arrives while the first request is answered (nested in
    its lineReceived); it must be recorded on the second request, not lost."""
    site = make_site(tmp_path, spool, auth=None)
    conn = Connection(site)
    conn.send(raw_request("GET", "/simple/") + raw_request("HEAD", "/health") + NO_CREDENTIALS_UPLOAD)
    assert [r.status for r in conn.responses(["GET", "HEAD", "POST"])] == [200, 200, 403]
    metrics = site.metrics.render().decode()
    assert 'spoold_http_requests_total{method="POST",status="403"} 1.0' in metrics


def test_a_blank_line_before_a_request_is_not_a_request_line(tmp_path: Path, spool: Spool) -> None:
    """Some clients send an extra CRLF after a POST body; Twisted skips one."""
    site = make_site(tmp_path, spool, auth=None)
    conn = Connection(site)
    conn.send(raw_request("POST", "/nowhere", body=b"abc") + b"\r\n" + NO_CREDENTIALS_UPLOAD)
    assert [r.status for r in conn.responses()] == [404, 403]


def test_a_malformed_request_line_is_recorded_as_none(tmp_path: Path, spool: Spool) -> None:
    conn = Connection(make_site(tmp_path, spool))
    conn.send(b"POST  /legacy/ HTTP/1.1\r\n")
    assert conn.channel.requests[-1].request_line is None
    assert conn.transport.value().startswith(b"HTTP/1.1 400")


def test_gone_follows_the_connection(tmp_path: Path, spool: Spool) -> None:
    run = ManualRun()
    conn = Connection(make_site(tmp_path, spool, run=run))
    conn.request("GET", "/health")
    [request] = conn.channel.requests
    assert run.names() == ["health_report"]
    assert not request.gone and not is_gone(request)
    conn.lose()
    assert request.gone and is_gone(request)
    run.flush()  # the answer finds the client gone and writes nothing (Twisted would raise)
    assert conn.transport.value() == b""


def test_a_finished_request_is_over_but_not_gone(tmp_path: Path, spool: Spool) -> None:
    conn = Connection(make_site(tmp_path, spool))
    conn.send(raw_request("GET", "/health", {"Content-Length": "1"}))
    [request] = conn.channel.requests
    conn.send(b"x")
    assert conn.responses()[0].status == 200
    assert not request.gone and is_gone(request)


def test_the_header_deadline_applies_to_every_request_on_a_connection(tmp_path: Path, spool: Spool) -> None:
    """After a response the channel parses headers again, and the deadline is back on."""
    reactor = MemoryReactorClock()
    site = make_site(tmp_path, spool, reactor=reactor, policy=WebPolicy(header_timeout=30, idle_timeout=600))
    conn = Connection(site)
    conn.request("GET", "/health")
    assert conn.responses()[0].status == 200
    conn.send(b"GET /simple/ HTTP/1.1\r\n")  # the next request, slowly
    reactor.advance(29)
    assert not conn.closed
    reactor.advance(2)
    assert conn.closed and b"HTTP/1.1 408 " in conn.transport.value()


def test_no_header_deadline_while_a_response_is_under_way(tmp_path: Path, spool: Spool) -> None:
    """Bytes of a pipelined request that arrive while one is answered are only buffered."""
    reactor = MemoryReactorClock()
    run = ManualRun()
    site = make_site(tmp_path, spool, reactor=reactor, run=run,
                     policy=WebPolicy(header_timeout=30, idle_timeout=600))
    conn = Connection(site)
    conn.request("GET", "/health")
    conn.send(b"GET /simple/ HT")  # buffered by Twisted while /health waits for its thread
    reactor.advance(100)
    assert not conn.closed and conn.transport.value() == b""
    run.flush()
    conn.send(b"TP/1.1\r\nHost: x\r\n\r\n")
    run.flush()
    assert [r.status for r in conn.responses(["GET", "GET"])] == [200, 200]


def test_channels_are_spoolds(tmp_path: Path, spool: Spool) -> None:
    channel = make_site(tmp_path, spool).buildProtocol(None)
    assert isinstance(channel, SpooldChannel)
    # The explorer's FormRequest: a SpooldRequest that keeps small form bodies.
    assert issubclass(channel.requestFactory, SpooldRequest)


# -- heads too large: answered, not dropped --------------------------------------------------------


def _head_refused(conn: Connection, status: int) -> None:
    [r] = conn.responses()
    assert r.status == status, r
    assert r.header("connection") == "close" and r.header("content-type") == "text/plain; charset=utf-8"
    assert r.text.strip()  # says what was too large
    assert conn.closed


def test_twisteds_head_limits_are_the_ones_spoold_answers_for() -> None:
    assert SpooldChannel.totalHeadersSize == HTTPChannel.totalHeadersSize == 16384
    assert SpooldChannel.maxHeaders == 500 and SpooldChannel.MAX_LENGTH == 16384


def test_a_header_line_over_16_kib_is_431_not_a_dropped_connection(tmp_path: Path, spool: Spool) -> None:
    conn = Connection(make_site(tmp_path, spool))
    conn.send(b"GET /simple/ HTTP/1.1\r\nHost: x\r\nCookie: " + b"c" * 20_000 + b"\r\n\r\n")
    _head_refused(conn, 431)
    assert "headers are larger" in conn.responses()[0].text


def test_a_header_line_over_16_kib_still_coming_is_431(tmp_path: Path, spool: Spool) -> None:
    conn = Connection(make_site(tmp_path, spool))
    conn.send(b"GET /simple/ HTTP/1.1\r\nHost: x\r\nCookie: " + b"c" * 20_000)  # no line end yet
    _head_refused(conn, 431)


def test_headers_over_16_kib_in_all_are_431(tmp_path: Path, spool: Spool) -> None:
    site = make_site(tmp_path, spool)
    conn = Connection(site)
    conn.send(raw_request("GET", "/simple/", [(f"X-Header-{i}", "v" * 1000) for i in range(20)]))
    _head_refused(conn, 431)
    assert 'spoold_http_requests_total{method="other",status="431"} 1.0' in site.metrics.render().decode()


def test_more_than_500_header_fields_are_431(tmp_path: Path, spool: Spool) -> None:
    conn = Connection(make_site(tmp_path, spool))
    conn.send(raw_request("GET", "/simple/", [("X", "1")] * 501))
    _head_refused(conn, 431)


def test_a_request_line_over_16_kib_is_414(tmp_path: Path, spool: Spool) -> None:
    conn = Connection(make_site(tmp_path, spool))
    conn.send(b"GET /simple/" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    _head_refused(conn, 414)


def test_heads_just_under_the_limits_are_served(tmp_path: Path, spool: Spool) -> None:
    conn = Connection(make_site(tmp_path, spool))
    conn.request("GET", "/health", [("X", "1")] * 498 + [("Cookie", "c" * 8000)])  # 500 with Host
    conn.request("GET", "/health")  # the counts start again for the next request
    assert [r.status for r in conn.responses()] == [200, 200]
