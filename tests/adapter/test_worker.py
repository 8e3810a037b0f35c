"""The worker service with an injected reactor and clock, and a synchronous 'thread pool'."""

from __future__ import annotations

import os

import pytest
from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock

from testlib.distbuild import write_wheel  # noqa: E402

from spoold.errors import Transient  # noqa: E402
from spoold.spool.outcome import Result  # noqa: E402
from spoold.worker.processing import Handled  # noqa: E402
from spoold.spool.queue import Spool  # noqa: E402
from spoold.storage import open_storage  # noqa: E402
from spoold.worker.service import Worker  # noqa: E402


def sync_run(f, *args, **kwargs):
    return defer.maybeDeferred(f, *args, **kwargs)


class ManualRun:
    """A 'thread pool' whose jobs finish only when the test says so."""

    def __init__(self):
        self.pending: list[tuple[defer.Deferred, object, tuple]] = []

    def __call__(self, f, *args, **kwargs):
        d = defer.Deferred()
        self.pending.append((d, f, args))
        return d

    def finish_one(self):
        d, f, args = self.pending.pop(0)
        d.callback(f(*args))


@pytest.fixture
def reactor():
    return MemoryReactorClock()


@pytest.fixture
def storage(tmp_path):
    return open_storage(str(tmp_path / "storage"))


@pytest.fixture
def dists(tmp_path):
    out = tmp_path / "dists"
    out.mkdir()
    return out


def make_worker(spool, storage, reactor, **kwargs) -> Worker:
    kwargs.setdefault("run", sync_run)
    kwargs.setdefault("call_from_thread", lambda f, *a: f(*a))
    return Worker(spool, storage, reactor=reactor, **kwargs)


def deliver(spool, dists, name="demo", version="1.0") -> str:
    return spool.deliver_file(write_wheel(dists, name, version))


def test_backlog_is_published_on_start(spool, storage, reactor, dists):
    for i in range(5):
        deliver(spool, dists, version=f"1.{i}")
    worker = make_worker(spool, storage, reactor)
    worker.startService()
    assert len(os.listdir(spool.done)) == 5
    assert spool.pending() == [] and os.listdir(spool.cur) == []
    page = storage.read_page("simple/demo/index.v1.json")
    assert page is not None and b"demo-1.4-py3-none-any.whl" in page.data
    worker.stopService()


def test_hint_picks_up_new_items_at_once_and_scan_finds_missed_ones(spool, storage, reactor, dists):
    worker = make_worker(spool, storage, reactor)
    worker.startService()
    deliver(spool, dists, version="1.0")
    worker.hint("new")
    assert len(os.listdir(spool.done)) == 1
    deliver(spool, dists, version="2.0")  # no hint: the event was lost
    assert len(os.listdir(spool.done)) == 1
    reactor.advance(worker.scan_interval)
    assert len(os.listdir(spool.done)) == 2
    worker.stopService()


def test_never_more_jobs_than_slots(spool, storage, reactor, dists):
    for i in range(7):
        deliver(spool, dists, version=f"1.{i}")
    run = ManualRun()
    worker = make_worker(spool, storage, reactor, run=run, jobs=3, group=1)
    worker.startService()
    # The first thing in the pool is the listing of new/; housekeeping etc. may queue too.
    while worker.running_jobs == 0:
        run.finish_one()
    assert worker.running_jobs == 3
    while run.pending:
        run.finish_one()
        assert worker.running_jobs <= 3
    assert len(os.listdir(spool.done)) == 7


def test_a_job_takes_the_queued_items_of_one_project_together(spool, storage, reactor, dists):
    for i in range(5):
        deliver(spool, dists, version=f"1.{i}")
    for i in range(2):
        spool.deliver_file(write_wheel(dists, "other", f"2.{i}"))
    run = ManualRun()
    worker = make_worker(spool, storage, reactor, run=run, jobs=3, group=4)
    handled: list[Handled] = []
    worker.on_handled.append(handled.append)
    worker.startService()
    while worker.running_jobs == 0:
        run.finish_one()
    assert worker.running_jobs == 3  # demo x4, then demo x1 and other x2 (order of new/)
    while run.pending:
        run.finish_one()
    assert len(os.listdir(spool.done)) == 7 and len(handled) == 7
    assert all(h.outcome is not None and h.outcome.result is Result.PUBLISHED for h in handled)
    # Four versions of demo landed in one change of its manifest: at most four changes
    # (two groups, each a change and its listing mark), not one or two per file.
    assert storage.generation_of("simple/demo/index.v1.json") <= 4


def test_wait_for_fires_with_the_outcome_of_this_process(spool, storage, reactor, dists):
    worker = make_worker(spool, storage, reactor)
    worker.startService()
    good = deliver(spool, dists)
    bad = spool.deliver_bytes(b"not a zip", "broken-1.0-py3-none-any.whl")
    outcomes = {}
    worker.wait_for(good).addCallback(lambda o: outcomes.__setitem__("good", o))
    worker.wait_for(bad).addCallback(lambda o: outcomes.__setitem__("bad", o))
    reactor.advance(0)
    assert outcomes["good"].result is Result.PUBLISHED and outcomes["good"].project == "demo"
    assert outcomes["bad"].result is Result.REJECTED
    assert outcomes["bad"].http_status == 400 and outcomes["bad"].code == "invalid-archive"
    worker.stopService()


def test_wait_for_sees_outcomes_of_other_processes(spool, storage, reactor, dists):
    # This worker never claims (no job slots); "another process" does the work.
    worker = make_worker(spool, storage, reactor, jobs=0)
    worker.startService()
    item = deliver(spool, dists)
    elsewhere = dists / "elsewhere"
    elsewhere.mkdir()
    rival = spool.deliver_file(write_wheel(elsewhere, "demo", "1.0", files={"demo/__init__.py": b"x = 2\n"}))
    broken = spool.deliver_bytes(b"not a zip", "broken-1.0-py3-none-any.whl")
    got = {}
    for name in (item, rival, broken):
        worker.wait_for(name).addCallback(lambda o, name=name: got.__setitem__(name, o))
    other = make_worker(Spool(spool.root), storage, MemoryReactorClock())
    other.startService()
    assert got == {}
    reactor.advance(worker.poll_interval)
    # Same filename, other bytes: whichever the other process took second is a 409 there
    # and must be a 409 here too; a broken archive is a 400.
    assert sorted((got[item].http_status, got[rival].http_status)) == [200, 409]
    assert {got[item].result, got[rival].result} == {Result.PUBLISHED, Result.REJECTED}
    assert "File already exists" in (got[item].message + got[rival].message)
    assert (got[broken].result, got[broken].http_status) == (Result.REJECTED, 400)
    worker.stopService()


def test_storage_outage_defers_instead_of_failing(spool, reactor, dists):
    class Down:
        def __getattr__(self, name):
            def fail(*a, **kw):
                raise Transient("storage unreachable: connection refused")
            return fail

    worker = make_worker(spool, Down(), reactor)
    item = deliver(spool, dists)
    waited = []
    worker.startService()
    worker.wait_for(item).addCallback(waited.append)
    reactor.advance(0)
    assert len(os.listdir(spool.deferred)) == 1
    assert os.listdir(spool.failed) == [] and waited == []


def test_stop_waits_for_in_flight_items(spool, storage, reactor, dists):
    deliver(spool, dists)
    run = ManualRun()
    worker = make_worker(spool, storage, reactor, run=run, jobs=1)
    worker.startService()
    while worker.running_jobs == 0:
        run.finish_one()
    stopped = []
    worker.stopService().addCallback(stopped.append)
    assert stopped == []
    while run.pending:
        run.finish_one()
    assert stopped == [None]
    assert len(os.listdir(spool.done)) == 1


def test_stop_gives_up_after_the_drain_timeout(spool, storage, reactor, dists):
    deliver(spool, dists)
    run = ManualRun()
    worker = make_worker(spool, storage, reactor, run=run, jobs=1, drain_timeout=10)
    worker.startService()
    while worker.running_jobs == 0:
        run.finish_one()
    stopped = []
    worker.stopService().addCallback(stopped.append)
    reactor.advance(9)
    assert stopped == []
    reactor.advance(1)
    assert stopped == [None]


def test_stopping_worker_claims_nothing_more(spool, storage, reactor, dists):
    worker = make_worker(spool, storage, reactor)
    worker.startService()
    worker.stopService()
    deliver(spool, dists)
    worker.hint("new")
    reactor.advance(60)
    assert len(spool.pending()) == 1


def test_dead_watcher_is_restarted_and_reported(spool, storage, reactor):
    started = []

    class FakeWatcher:
        def __init__(self, folders, call_from_thread, hint):
            self.folders, self.running = folders, False
            started.append(self)

        def start(self):
            self.running = True

        def alive(self):
            return self.running

        def stop(self):
            self.running = False

    worker = make_worker(spool, storage, reactor, watcher_factory=FakeWatcher)
    worker.startService()
    assert len(started) == 1 and set(started[0].folders) == {"new", "incoming", "done"}
    assert worker.healthy()
    started[0].running = False  # the observer thread died
    assert not worker.healthy()
    reactor.advance(worker.scan_interval)
    assert len(started) == 2 and worker.healthy()


def test_incoming_hint_runs_housekeeping(spool, storage, reactor, dists):
    worker = make_worker(spool, storage, reactor, housekeeping_interval=1000)
    worker.startService()
    wheel = write_wheel(dists, "demo", "3.0")
    (spool.incoming / wheel.name).write_bytes(wheel.read_bytes())
    import hashlib
    (spool.incoming / (wheel.name + ".sha256")).write_text(hashlib.sha256(wheel.read_bytes()).hexdigest())
    for _ in range(100):  # an scp in progress: an event per write
        worker.hint("incoming")
    reactor.advance(0.5)
    assert len(os.listdir(spool.done)) == 1
    assert len(reactor.getDelayedCalls()) == len(worker._loops), "hints were coalesced"


def test_handled_observers_are_told(spool, storage, reactor, dists):
    seen: list[Handled] = []
    worker = make_worker(spool, storage, reactor)
    worker.on_handled.append(seen.append)
    deliver(spool, dists)
    worker.startService()
    assert [h.outcome.result for h in seen] == [Result.PUBLISHED]


def test_publishes_are_announced_whoever_made_them(spool, storage, reactor, dists):
    published: list[str] = []
    worker = make_worker(spool, storage, reactor)
    worker.on_published.append(published.append)
    worker.startService()
    deliver(spool, dists, version="1.0")
    worker.hint("new")
    assert published == ["demo-1.0-py3-none-any.whl"]  # by this process
    worker.hint("done", "1795373333.368590.2933_0.4a6d66.vm,other-2.0.tar.gz")  # the watcher saw it
    assert published[-1] == "other-2.0.tar.gz"
    spool.deliver_bytes(b"junk", "bad-1.0-py3-none-any.whl")
    worker.hint("new")
    assert len(published) == 2, "rejections change no page"


def test_outcome_from_another_process_is_announced_before_the_waiter_hears(spool, storage, reactor, dists):
    order: list[str] = []
    worker = make_worker(spool, storage, reactor, jobs=0)
    worker.on_published.append(lambda f: order.append("published " + f))
    worker.startService()
    item = deliver(spool, dists)
    worker.wait_for(item).addCallback(lambda o: order.append("answered"))
    make_worker(Spool(spool.root), storage, MemoryReactorClock()).startService()
    reactor.advance(worker.poll_interval)
    assert order == ["published demo-1.0-py3-none-any.whl", "answered"]
