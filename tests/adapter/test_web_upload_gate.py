"""The upload gate: no body is read, let alone stored, before its upload may be taken.

Credentials are checked with only the headers in (the transport paused meanwhile); bodies
in flight are capped per client and in all; a free-space reserve is kept in the spool; a
body that trickles is cut. Every refusal comes before a byte of the body is stored.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from testlib.web_harness import make_site, upload_form, wheel
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock

from spoold.access.accounts import add_user
from spoold.access.htpasswd import Htpasswd
from spoold.http.admission import AdmissionPolicy, Space
from spoold.spool.outcome import Result
from spoold.spool.queue import Spool
from spoold.testing import Connection, FakeWaiter, ManualRun, basic_auth, raw_request
from spoold.web import admission
from spoold.web.site import WebPolicy

USER, PASSWORD = "alice", "wonderland"
MULTIPART = "multipart/form-data; boundary=x"


@pytest.fixture
def auth(tmp_path: Path) -> Htpasswd:
    add_user(tmp_path / "htpasswd", USER, PASSWORD, rounds=4)
    return Htpasswd(tmp_path / "htpasswd")


@pytest.fixture
def run() -> ManualRun:
    return ManualRun()


@pytest.fixture
def waiter() -> FakeWaiter:
    return FakeWaiter()


def headers(length: int | None = 1000, password: str = PASSWORD, **extra: str) -> dict[str, str]:
    h = {"Content-Type": MULTIPART, "Authorization": basic_auth(USER, password), **extra}
    if length is not None:
        h["Content-Length"] = str(length)
    return h


def upload_head(length: int | None = 1000, password: str = PASSWORD, **extra: str) -> bytes:
    return raw_request("POST", "/legacy/", headers(length, password, **extra))


def peer(n: int) -> IPv4Address:
    return IPv4Address("TCP", f"10.0.0.{n}", 40000)


def stored(conn: Connection) -> Any:
    return conn.channel.requests[-1].content


def leftovers(spool: Spool) -> list[str]:
    return sorted(p.name for p in spool.tmp.iterdir())


# -- credentials before the body ---------------------------------------------------------------


def test_the_body_is_not_read_until_the_credentials_are_checked(
    tmp_path: Path, spool: Spool, auth: Htpasswd, run: ManualRun, waiter: FakeWaiter
) -> None:
    site = make_site(tmp_path, spool, auth=auth, run=run, waiter=waiter)
    body, content_type = upload_form(*wheel())
    conn = Connection(site)
    conn.send(raw_request("POST", "/legacy/", {"Content-Type": content_type, "Expect": "100-continue",
                                               "Authorization": basic_auth(USER, PASSWORD),
                                               "Content-Length": str(len(body))}))
    # only the headers are in: the check is queued, the transport paused, no 100 Continue
    assert run.names() == ["check"]
    assert conn.transport.producerState == "paused"
    assert conn.transport.value() == b""
    assert isinstance(stored(conn), io.BytesIO)  # no file in tmp/ yet
    run.step()
    assert conn.transport.producerState == "producing"
    assert conn.transport.value() == b"HTTP/1.1 100 Continue\r\n\r\n"
    conn.send(body)
    assert run.names() == ["_receive"]  # the upload goes on without a second password check
    run.flush()
    [item] = waiter.waiting
    waiter.resolve(item, Result.PUBLISHED)
    assert [r.status for r in conn.responses(["POST", "POST"])] == [100, 200]
    assert auth.slow_checks == 1


def test_a_wrong_password_is_answered_after_the_check_without_100_continue(
    tmp_path: Path, spool: Spool, auth: Htpasswd, run: ManualRun
) -> None:
    site = make_site(tmp_path, spool, auth=auth, run=run)
    conn = Connection(site)
    conn.send(upload_head(50 << 20, "wrong", Expect="100-continue"))
    assert conn.transport.producerState == "paused"
    run.step()
    [r] = conn.responses()
    assert r.status == 401 and r.header("www-authenticate") and r.header("connection") == "close"
    assert b"100 Continue" not in conn.transport.value()
    assert conn.transport.producerState == "producing"  # reading on, to drop what comes
    conn.send(b"x" * 100_000)
    assert stored(conn).getvalue() == b"" and leftovers(spool) == []
    assert run.names() == []
    text = site.metrics.render().decode()
    assert 'spoold_rejections_total{code="unauthorized"} 1.0' in text
    assert 'spoold_http_requests_total{method="POST",status="401"} 1.0' in text


def test_bytes_that_came_with_the_headers_wait_in_memory(
    tmp_path: Path, spool: Spool, auth: Htpasswd, run: ManualRun, waiter: FakeWaiter
) -> None:
    """A client that does not wait (no Expect) sent part of the body with the headers:
    kept in memory until the check, stored after, and the upload completes."""
    site = make_site(tmp_path, spool, auth=auth, run=run, waiter=waiter)
    body, content_type = upload_form(*wheel())
    whole = raw_request("POST", "/legacy/", {"Content-Type": content_type,
                                             "Authorization": basic_auth(USER, PASSWORD)}, body)
    conn = Connection(site)
    conn.send(whole[:-5000])
    assert isinstance(stored(conn), io.BytesIO) and stored(conn).getvalue() == b""
    run.step()
    content = stored(conn)
    assert not isinstance(content, io.BytesIO)  # a file in tmp/ now: the body is large
    conn.send(whole[-5000:])
    run.flush()
    assert len(waiter.waiting) == 1


def test_a_whole_body_that_came_while_checking_is_processed_after_the_check(
    tmp_path: Path, spool: Spool, auth: Htpasswd, run: ManualRun, waiter: FakeWaiter
) -> None:
    site = make_site(tmp_path, spool, auth=auth, run=run, waiter=waiter)
    body, content_type = upload_form(*wheel())
    conn = Connection(site)
    conn.send(raw_request("POST", "/legacy/", {"Content-Type": content_type,
                                               "Authorization": basic_auth(USER, PASSWORD)}, body))
    assert run.names() == ["check"]  # the body is in, but not processed: not yet admitted
    run.step()
    assert run.names() == ["_receive"]
    run.flush()
    assert len(waiter.waiting) == 1
    assert b"100 Continue" not in conn.transport.value()


def test_a_whole_body_with_a_wrong_password_is_refused_and_the_connection_closed(
    tmp_path: Path, spool: Spool, auth: Htpasswd, run: ManualRun
) -> None:
    site = make_site(tmp_path, spool, auth=auth, run=run)
    body, content_type = upload_form(*wheel())
    conn = Connection(site)
    conn.send(raw_request("POST", "/legacy/", {"Content-Type": content_type,
                                               "Authorization": basic_auth(USER, "wrong")}, body))
    run.step()
    assert [r.status for r in conn.responses()] == [401]
    assert conn.closed and run.names() == [] and leftovers(spool) == []


def test_a_client_that_keeps_sending_while_held_is_cut_at_the_hold_limit(
    tmp_path: Path, spool: Spool, auth: Htpasswd, run: ManualRun
) -> None:
    site = make_site(tmp_path, spool, auth=auth, run=run, policy=WebPolicy(hold_limit=10_000))
    conn = Connection(site)
    conn.send(upload_head(1 << 20))
    conn.send(b"x" * 9_000)
    assert not conn.closed
    conn.send(b"x" * 2_000)
    assert conn.transport.disconnected  # aborted: never buffered without bound


def test_a_client_that_leaves_during_the_check_frees_its_slot(
    tmp_path: Path, spool: Spool, auth: Htpasswd, run: ManualRun
) -> None:
    site = make_site(tmp_path, spool, auth=auth, run=run)
    conn = Connection(site)
    conn.send(upload_head())
    assert site.gate is not None and site.gate.slots.total == 1
    conn.lose()
    assert site.gate.slots.total == 0
    run.step()  # the answer finds nobody: nothing written, nothing raised
    assert conn.transport.value() == b""


def test_a_transport_drained_by_twisted_stays_paused_while_held(
    tmp_path: Path, spool: Spool, auth: Htpasswd, run: ManualRun
) -> None:
    """Twisted resumes reading when its write buffer drains (resumeProducing); not while
    an upload holds its body."""
    site = make_site(tmp_path, spool, auth=auth, run=run)
    conn = Connection(site)
    conn.send(upload_head())
    conn.channel.pauseProducing()
    conn.channel.resumeProducing()
    assert conn.transport.producerState == "paused"
    run.step()
    assert conn.transport.producerState == "producing"


def test_a_broken_htpasswd_file_is_503_not_a_wrong_password(tmp_path: Path, spool: Spool, auth: Htpasswd) -> None:
    site = make_site(tmp_path, spool, auth=auth)
    auth.path.unlink()
    conn = Connection(site)
    conn.send(upload_head())
    [r] = conn.responses()
    assert r.status == 503 and "htpasswd" in r.text and "operator" in r.text
    assert r.header("retry-after") and not r.header("www-authenticate")


# -- bodies in flight ------------------------------------------------------------------------


def test_bodies_in_flight_are_capped_per_client(tmp_path: Path, spool: Spool, auth: Htpasswd, run: ManualRun) -> None:
    policy = WebPolicy(uploads=AdmissionPolicy(max_per_client=2, max_total=10, retry_after=7))
    site = make_site(tmp_path, spool, auth=auth, run=run, policy=policy)
    first, second = Connection(site, peer=peer(1)), Connection(site, peer=peer(1))
    for conn in (first, second):
        conn.send(upload_head())
    third = Connection(site, peer=peer(1))
    third.send(upload_head(50 << 20))
    [r] = third.responses()  # with only the headers in
    assert r.status == 429 and r.header("retry-after") == "7" and "at once" in r.text
    assert len(run) == 2  # no password check queued for the refused one
    other = Connection(site, peer=peer(2))
    other.send(upload_head())
    assert other.transport.value() == b"" and len(run) == 3
    first.send(b"x" * 1000)  # its body is in: its slot is free again
    run.step()
    again = Connection(site, peer=peer(1))
    again.send(upload_head())
    assert again.transport.value() == b""
    assert 'spoold_rejections_total{code="too-many-uploads"} 1.0' in site.metrics.render().decode()


def test_bodies_in_flight_are_capped_in_all(tmp_path: Path, spool: Spool, auth: Htpasswd, run: ManualRun) -> None:
    policy = WebPolicy(uploads=AdmissionPolicy(max_per_client=0, max_total=2))
    site = make_site(tmp_path, spool, auth=auth, run=run, policy=policy)
    for n in range(2):
        Connection(site, peer=peer(n)).send(upload_head())
    late = Connection(site, peer=peer(9))
    late.send(upload_head())
    [r] = late.responses()
    assert r.status == 503 and r.header("retry-after") and "try again" in r.text


def test_a_refused_upload_frees_its_slot(tmp_path: Path, spool: Spool, auth: Htpasswd, run: ManualRun) -> None:
    policy = WebPolicy(uploads=AdmissionPolicy(max_per_client=1))
    site = make_site(tmp_path, spool, auth=auth, run=run, policy=policy)
    conn = Connection(site)
    conn.send(upload_head(password="wrong"))
    run.step()
    assert conn.responses()[0].status == 401
    retry = Connection(site)
    retry.send(upload_head())
    assert retry.transport.value() == b"" and run.names() == ["check"]


# -- free space --------------------------------------------------------------------------------


def test_a_spool_short_of_space_is_507_before_the_body(tmp_path: Path, spool: Spool, auth: Htpasswd) -> None:
    policy = WebPolicy(uploads=AdmissionPolicy(reserve=1 << 62))  # more than any disk has
    site = make_site(tmp_path, spool, auth=auth, policy=policy)
    conn = Connection(site)
    conn.send(upload_head(10 << 20, Expect="100-continue"))
    [r] = conn.responses()
    assert r.status == 507 and r.reason.startswith("Insufficient Storage")
    assert "free space" in r.text and "spool_reserve" in r.text and r.header("retry-after")
    assert b"100 Continue" not in conn.transport.value()
    conn.send(b"x" * 100_000)
    assert leftovers(spool) == []


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """The spool's filesystem as the gate measures it: 100 MB, ``free`` bytes free."""
    state = {"free": 50_000_000, "measured": 0}

    def measure(folder: Path) -> Space:
        state["measured"] += 1
        return Space(free=state["free"], size=100_000_000)

    monkeypatch.setattr(admission, "measure_space", measure)
    return state


def test_a_declared_length_that_would_cross_the_reserve_is_507(
    tmp_path: Path, spool: Spool, auth: Htpasswd, disk: dict[str, int]
) -> None:
    """The default reserve is 5% (here 5 MB); an upload needs twice its size for a moment
    (the body, and the spool delivery copied from it)."""
    site = make_site(tmp_path, spool, auth=auth)
    conn = Connection(site)
    conn.send(upload_head(22_600_000))  # 45.2 MB needed, 50 MB free: 4.8 MB would be left
    assert conn.responses()[0].status == 507
    ok = Connection(site)
    ok.send(upload_head(22_400_000))  # 44.8 MB needed: 5.2 MB left
    assert ok.transport.value() == b""
    # Judged on the first one's measurement: it is fresh and nothing was admitted since.
    assert disk["measured"] == 1


def test_bodies_admitted_but_not_yet_in_count_against_the_space(
    tmp_path: Path, spool: Spool, auth: Htpasswd, disk: dict[str, int], run: ManualRun
) -> None:
    site = make_site(tmp_path, spool, auth=auth, run=run)
    first = Connection(site, peer=peer(1))
    first.send(upload_head(10_000_000))  # 20 MB promised
    run.step()
    assert first.transport.value() == b""
    second = Connection(site, peer=peer(2))
    second.send(upload_head(13_000_000))  # 26 MB more: 50 - 20 - 26 = 4 MB, under the reserve
    run.step()
    assert second.responses()[0].status == 507
    first.lose()  # the first one's promise goes with it
    third = Connection(site, peer=peer(3))
    third.send(upload_head(13_000_000))
    run.step()
    assert third.transport.value() == b""


def test_a_release_pays_for_one_check_and_its_other_files_for_none(
    tmp_path: Path, spool: Spool, run: ManualRun, waiter: FakeWaiter, disk: dict[str, int]
) -> None:
    """twine uploads each file of a release with the same credentials: once one of them
    passed the check, the others are admitted as their headers arrive (the password
    remembered, the free space measured a moment ago), without a thread trip."""
    reactor = MemoryReactorClock()
    add_user(tmp_path / "htpasswd", USER, PASSWORD, rounds=4)
    auth = Htpasswd(tmp_path / "htpasswd", clock=reactor.seconds)
    site = make_site(tmp_path, spool, auth=auth, run=run, waiter=waiter, reactor=reactor)
    first = Connection(site)
    first.send(upload_head(2000, Expect="100-continue"))
    assert run.names() == ["check"]
    run.step()
    second = Connection(site)
    second.send(upload_head(2000, Expect="100-continue"))
    assert run.names() == []  # nothing queued: no check, no statvfs
    assert second.transport.producerState == "producing"
    assert second.transport.value() == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert second.channel.requests[-1].verified is not None
    assert disk["measured"] == 1 and auth.slow_checks == 1
    wrong = Connection(site)
    wrong.send(upload_head(2000, "wrong"))
    assert run.names() == ["check"]  # another password is checked as ever
    run.step()
    assert wrong.responses()[0].status == 401
    reactor.advance(1.5)  # the measurement and the look at the htpasswd file are old now
    third = Connection(site)
    third.send(upload_head(2000))
    assert run.names() == ["check"] and third.transport.producerState == "paused"
    run.step()
    assert third.transport.value() == b"" and disk["measured"] == 2


def test_bodies_in_since_the_measurement_count_against_it(
    tmp_path: Path, spool: Spool, run: ManualRun, disk: dict[str, int]
) -> None:
    """A body admitted on a measurement and then stored is not in that measurement: the
    next upload that would need that room is measured again, not admitted from memory."""
    reactor = MemoryReactorClock()
    add_user(tmp_path / "htpasswd", USER, PASSWORD, rounds=4)
    auth = Htpasswd(tmp_path / "htpasswd", clock=reactor.seconds)
    site = make_site(tmp_path, spool, auth=auth, run=run, reactor=reactor)
    first = Connection(site, peer=peer(1))
    first.send(upload_head(10_000))
    run.step()
    first.send(b"x" * 10_000)  # in (20 KB counted); its slot is free again
    disk["free"] -= 20_000
    second = Connection(site, peer=peer(2))
    second.send(upload_head(20_000_000))  # 40 MB: 50 MB - 20 KB - 40 MB is above the reserve
    assert run.names() == ["_receive"] and second.transport.value() == b""  # the first's form
    third = Connection(site, peer=peer(3))
    third.send(upload_head(2_000_000))  # 4 MB more would leave less than 5 MB by the estimate
    assert run.names() == ["_receive", "check"]
    disk["free"] -= 40_000_000  # the second's body is in by the time of the measurement
    run.flush()
    assert third.responses()[0].status == 507  # only a measurement refuses


def test_a_throttled_sender_is_refused_from_memory_and_frees_its_slot(
    tmp_path: Path, spool: Spool, auth: Htpasswd, run: ManualRun
) -> None:
    policy = WebPolicy(uploads=AdmissionPolicy(max_per_client=1))
    site = make_site(tmp_path, spool, auth=auth, run=run, policy=policy)
    for _ in range(11):
        conn = Connection(site)
        conn.send(upload_head(password="wrong"))
        run.step()
        assert conn.responses()[0].status == 401
    blocked = Connection(site)
    blocked.send(upload_head())
    [r] = blocked.responses()
    assert r.status == 429 and r.header("retry-after") and run.names() == []
    assert site.gate is not None and site.gate.slots.total == 0


# -- the pace of a body -----------------------------------------------------------------------


def test_a_body_that_trickles_is_cut_with_408(tmp_path: Path, spool: Spool, auth: Htpasswd) -> None:
    reactor = MemoryReactorClock()
    policy = WebPolicy(body_min_rate=1000, body_grace=10, idle_timeout=600)
    site = make_site(tmp_path, spool, auth=auth, reactor=reactor, policy=policy)
    conn = Connection(site)
    conn.send(upload_head(1 << 20))
    for _ in range(9):  # 9 s at 1500 B/s: above the minimum
        conn.send(b"x" * 1500)
        reactor.advance(1)
    reactor.advance(1)
    assert not conn.closed
    for _ in range(10):  # then a drip: 10 B/s, far below 1000
        conn.send(b"x" * 10)
        reactor.advance(1)
    [r] = conn.responses()
    assert r.status == 408 and "too slowly" in r.text
    assert conn.closed
    assert 'spoold_rejections_total{code="slow-body"} 1.0' in site.metrics.render().decode()


def test_a_steady_body_is_never_cut(tmp_path: Path, spool: Spool, auth: Htpasswd, waiter: FakeWaiter) -> None:
    reactor = MemoryReactorClock()
    policy = WebPolicy(body_min_rate=1000, body_grace=10, idle_timeout=600)
    site = make_site(tmp_path, spool, auth=auth, reactor=reactor, policy=policy, waiter=waiter)
    body, content_type = upload_form(*wheel())
    conn = Connection(site)
    conn.send(raw_request("POST", "/legacy/", {"Content-Type": content_type,
                                               "Authorization": basic_auth(USER, PASSWORD),
                                               "Content-Length": str(len(body))}))
    for i in range(0, len(body), 12_000):  # 12 kB/s
        conn.send(body[i:i + 12_000])
        reactor.advance(1)
    assert not conn.closed and len(waiter.waiting) == 1
    reactor.advance(100)  # the clock stopped with the body: waiting for the worker is fine
    assert not conn.closed


def test_the_wait_for_the_check_is_not_counted_against_the_pace(
    tmp_path: Path, spool: Spool, auth: Htpasswd, run: ManualRun
) -> None:
    reactor = MemoryReactorClock()
    policy = WebPolicy(body_min_rate=1000, body_grace=10, idle_timeout=600)
    site = make_site(tmp_path, spool, auth=auth, reactor=reactor, policy=policy, run=run)
    conn = Connection(site)
    conn.send(upload_head(1 << 20))
    reactor.advance(30)  # the password check is slow, the client is told to wait
    run.step()
    assert conn.transport.value() == b""


def test_a_trickling_body_on_any_path_is_cut(tmp_path: Path, spool: Spool) -> None:
    reactor = MemoryReactorClock()
    site = make_site(tmp_path, spool, reactor=reactor,
                     policy=WebPolicy(body_min_rate=1000, body_grace=10, idle_timeout=600))
    conn = Connection(site)
    conn.send(raw_request("GET", "/simple/", {"Content-Length": "100000"}) + b"x" * 50)
    reactor.advance(10)
    assert conn.responses()[0].status == 408 and conn.closed


# -- bodies nobody reads --------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "status"), [("POST", "/simple/", 405), ("PUT", "/", 405),
                                                        ("POST", "/legacy/x", 404), ("GET", "/health", 200)])
def test_other_requests_bodies_are_read_and_dropped_not_stored(
    tmp_path: Path, spool: Spool, auth: Htpasswd, method: str, path: str, status: int
) -> None:
    site = make_site(tmp_path, spool, auth=auth)
    conn = Connection(site)
    conn.send(raw_request(method, path, {"Content-Length": str(1 << 20)}))
    content = stored(conn)
    assert isinstance(content, io.BytesIO)
    conn.send(b"x" * ((1 << 20) - 1))
    assert content.getvalue() == b""  # read, counted, dropped
    conn.send(b"x")
    assert conn.responses()[0].status == status
    assert leftovers(spool) == []


# -- settings ------------------------------------------------------------------------------------


def test_the_settings_reach_the_gate_and_the_requests(tmp_path: Path, spool: Spool) -> None:
    from spoold import config
    from spoold.storage.memory import MemoryStorage
    from spoold.web.site import build_site

    settings = config.load(None, {"spool": str(spool.root), "max_uploads_per_client": 1, "max_uploads": 7,
                                  "body_min_rate": 10, "body_grace": 5.0, "spool_reserve": 123})
    site = build_site(storage_reader=MemoryStorage(), spool=spool, waiter=FakeWaiter(), auth=None,
                      settings=settings, reactor=MemoryReactorClock(), threadpool=None, run=lambda f, *a: None)
    assert site.web.uploads == AdmissionPolicy(max_per_client=1, max_total=7, reserve=123)
    assert (site.web.body_min_rate, site.web.body_grace) == (10, 5.0)
    assert site.gate is not None and site.gate.policy is site.web.uploads and site.gate.folder == spool.tmp
