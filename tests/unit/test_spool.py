"""Unit tests of the spool's moves, one process, injected clock and owners."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from testlib.clock import FakeClock
from spoold.errors import ConfigError, InvalidFilename
from spoold.spool.names import ItemName, Owner
from spoold.spool.queue import Spool, SpoolPolicy
from spoold.spool.records import ItemMeta
from testlib.spoolwork import claim_next


@pytest.fixture
def clock():
    return FakeClock()


def make(tmp_path: Path, clock, **policy) -> Spool:
    return Spool.create(tmp_path / "spool", clock=clock, policy=SpoolPolicy(**policy))


def listing(spool: Spool, folder: str) -> list[str]:
    return sorted(os.listdir(spool.root / folder))


def test_create_makes_the_layout(tmp_path):
    # The folder names are the contract (ARCHITECTURE.md, "The spool"), spelled out here
    # rather than read from spoold, so renaming one in the code fails this test.
    spool = Spool.create(tmp_path / "s")
    assert sorted(os.listdir(spool.root)) == [
        "cur", "deferred", "done", "failed", "incoming", "new", "tmp"]


def test_open_missing_spool_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no spool at"):
        Spool.open(tmp_path / "missing")


def test_open_incomplete_spool_is_a_config_error(tmp_path):
    spool = Spool.create(tmp_path / "s")
    os.rmdir(spool.deferred)
    with pytest.raises(ConfigError, match="incomplete"):
        Spool.open(spool.root)


def test_delivery_lands_in_new_with_the_filename_recoverable(spool):
    item = spool.deliver_bytes(b"payload", "foo-1.0.tar.gz")
    assert listing(spool, "new") == [item]
    assert ItemName.parse(item).filename == "foo-1.0.tar.gz"
    assert (spool.new / item).read_bytes() == b"payload"
    assert listing(spool, "tmp") == []


def test_two_deliveries_of_one_filename_never_collide(spool):
    a = spool.deliver_bytes(b"a", "foo-1.0.tar.gz")
    b = spool.deliver_bytes(b"b", "foo-1.0.tar.gz")
    assert a != b
    assert {(spool.new / a).read_bytes(), (spool.new / b).read_bytes()} == {b"a", b"b"}


def test_delivery_with_meta_is_a_directory_item(spool):
    meta = ItemMeta(sha256_digest="ab" * 32, uploader="alice", via="upload")
    item = spool.deliver_bytes(b"payload", "foo-1.0.tar.gz", meta)
    assert json.loads((spool.new / item / "meta.json").read_text()) == {
        "sha256_digest": "ab" * 32, "uploader": "alice", "via": "upload"}
    claim = spool.claim(item)
    assert claim.payload.read_bytes() == b"payload"
    assert claim.meta == meta
    assert claim.meta.declared == {"sha256_digest": "ab" * 32}
    assert claim.filename == "foo-1.0.tar.gz"


def test_delivery_from_stream_and_file(spool, tmp_path):
    src = tmp_path / "bar-2.0.zip"
    src.write_bytes(b"z" * 3_000_000)
    item = spool.deliver_file(src)
    assert (spool.new / item).read_bytes() == src.read_bytes()
    assert src.exists()
    with open(src, "rb") as f:
        item2 = spool.deliver_stream(f, "baz-1.0.zip")
    assert (spool.new / item2).stat().st_size == 3_000_000


def test_failed_delivery_leaves_nothing_behind(spool):
    with pytest.raises(RuntimeError):
        with spool.delivery("foo-1.0.tar.gz") as f:
            f.write(b"half")
            raise RuntimeError("client went away")
    assert listing(spool, "new") == [] and listing(spool, "tmp") == []


def test_delivery_fsyncs_the_file_before_the_rename_and_new_after(spool, monkeypatch):
    events = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def rename(a, b):
        events.append(("rename", str(b)))
        real_rename(a, b)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", rename)
    item = spool.deliver_bytes(b"x", "foo-1.0.tar.gz")
    kinds = [(kind, Path(p).parent.name if kind == "fsync" and p != str(spool.new) else p)
             for kind, p in events]
    assert kinds == [("fsync", "tmp"), ("rename", str(spool.new / item)), ("fsync", str(spool.new))]


@pytest.mark.parametrize(
    "filename",
    ["../evil-1.0.tar.gz", "a/b.whl", "/etc/passwd", "x\x00.whl", ".hidden.whl", "a" * 300,
     b"caf\xe9-1.0.tar.gz".decode("utf-8", "surrogateescape"), "", "..", "line\nbreak.whl"],
)
def test_hostile_delivery_names_never_escape(spool, tmp_path, filename):
    before = sorted(p for p in tmp_path.rglob("*"))
    with pytest.raises(InvalidFilename):
        spool.deliver_bytes(b"x", filename)
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_claim_is_a_rename_into_cur_and_only_one_wins(spool):
    item = spool.deliver_bytes(b"x", "foo-1.0.tar.gz")
    other = Spool(spool.root, owner=Owner("elsewhere", 1, 1))
    claim = spool.claim(item)
    assert claim is not None and claim.path.parent == spool.cur
    assert claim.name.owner == spool.owner
    assert other.claim(item) is None
    assert listing(spool, "new") == []


def test_claim_of_a_plain_rsynced_file_gives_it_a_unique_name(spool):
    (spool.new / "foo-1.0.tar.gz").write_bytes(b"x")
    claim = claim_next(spool)
    assert claim.name.uid is not None and claim.filename == "foo-1.0.tar.gz"


def test_pending_never_offers_dotfiles_or_partials(spool):
    for name in [".foo-1.0.tar.gz.Xy12Ab", "foo-1.0.tar.gz.part", "foo.whl~", "x.filepart"]:
        (spool.new / name).write_bytes(b"x")
    assert spool.pending() == []
    assert spool.claim(".foo-1.0.tar.gz.Xy12Ab") is None
    assert claim_next(spool) is None


def test_finish_moves_to_done(spool):
    claim = spool.claim(spool.deliver_bytes(b"x", "foo-1.0.tar.gz"))
    assert spool.finish(claim)
    (done,) = listing(spool, "done")
    assert ItemName.parse(done).owner is None
    assert listing(spool, "cur") == []
    assert not spool.finish(claim), "a claim can only be finished once"


def test_fail_records_a_machine_readable_reason(spool, clock):
    spool = Spool(spool.root, clock=clock)
    claim = spool.claim(spool.deliver_bytes(b"x", "foo-1.0.tar.gz", ItemMeta(uploader="bob")))
    spool.fail(claim, "invalid-archive", "not a gzip file")
    status = spool.status()
    assert status.counts["failed"] == 1 and status.counts["cur"] == 0
    (failure,) = status.failures
    assert (failure.filename, failure.code, failure.error) == (
        "foo-1.0.tar.gz", "invalid-archive", "not a gzip file")
    reason_file = spool.failed / (claim.name.uid + ".reason.json")
    assert json.loads(reason_file.read_text())["meta"] == {"uploader": "bob"}


def test_defer_backs_off_exponentially_and_promotes_when_due(tmp_path, clock):
    spool = make(tmp_path, clock, backoff_base=10, backoff_max=1000)
    item = spool.deliver_bytes(b"x", "foo-1.0.tar.gz")
    delays = []
    for _ in range(5):
        claim = spool.claim(item)
        due = spool.defer(claim, "storage down")
        delays.append(due - clock.now)
        assert spool.promote_deferred() == 0
        clock.advance(due - clock.now + 1.5)
        assert spool.promote_deferred() == 1
        (item,) = spool.pending()
    for n, delay in enumerate(delays):
        expected = min(1000, 10 * 2**n)
        assert 0.8 * expected <= delay <= 1.2 * expected
    assert ItemName.parse(item).defers == 5


def test_reap_returns_claims_of_dead_local_workers(spool):
    dead = Owner(spool.owner.host, 2**22 + 7, 1)  # a pid the kernel never hands out
    ghost = Spool(spool.root, owner=dead)
    claim = ghost.claim(spool.deliver_bytes(b"x", "foo-1.0.tar.gz"))
    mine = spool.claim(spool.deliver_bytes(b"y", "bar-1.0.tar.gz"))
    assert spool.reap() == (1, 0)
    (back,) = spool.pending()
    assert ItemName.parse(back).uid == claim.name.uid
    assert ItemName.parse(back).attempts == 1
    assert mine.path.exists(), "a live worker's claim is never reaped"


def test_reap_detects_pid_reuse_by_start_time(spool):
    reused = Owner(spool.owner.host, os.getpid(), spool.owner.start + 12345)
    Spool(spool.root, owner=reused).claim(spool.deliver_bytes(b"x", "foo-1.0.tar.gz"))
    assert spool.reap() == (1, 0)


def test_reap_waits_for_the_lease_of_workers_on_other_hosts(tmp_path, clock):
    spool = make(tmp_path, clock, lease=60)
    remote = Spool(spool.root, owner=Owner("other-host", 1, 1), clock=clock)
    claim = remote.claim(spool.deliver_bytes(b"x", "foo-1.0.tar.gz"))
    clock.now = claim.path.lstat().st_ctime + 30
    assert spool.reap() == (0, 0)
    clock.now += 31
    assert spool.reap() == (1, 0)


def test_item_that_keeps_killing_workers_is_failed(tmp_path, clock):
    spool = make(tmp_path, clock, max_attempts=3)
    dead = Spool(spool.root, owner=Owner(spool.owner.host, 2**22 + 9, 1))
    spool.deliver_bytes(b"x", "foo-1.0.tar.gz")
    for _ in range(2):
        claim_next(dead)
        assert spool.reap() == (1, 0)
    claim_next(dead)
    assert spool.reap() == (0, 1)
    (failure,) = spool.status().failures
    assert failure.code == "worker-crash" and "3 workers" in failure.error


def test_release_gives_a_claim_back(spool):
    claim = spool.claim(spool.deliver_bytes(b"x", "foo-1.0.tar.gz"))
    assert spool.release(claim)
    assert ItemName.parse(spool.pending()[0]).uid == claim.name.uid


def test_sweep_tmp_after_36_hours(tmp_path, clock):
    spool = make(tmp_path, clock)
    old, fresh = spool.tmp / "old", spool.tmp / "fresh"
    old.write_bytes(b"x")
    (spool.tmp / "olddir").mkdir()
    fresh.write_bytes(b"x")
    os.utime(old, (clock.now - 37 * 3600,) * 2)
    os.utime(spool.tmp / "olddir", (clock.now - 37 * 3600,) * 2)
    os.utime(fresh, (clock.now - 35 * 3600,) * 2)
    assert spool.sweep_tmp() == 2
    assert listing(spool, "tmp") == ["fresh"]


def test_done_expires_after_retention(tmp_path, clock):
    spool = make(tmp_path, clock, done_retention=100)
    spool.finish(spool.claim(spool.deliver_bytes(b"x", "foo-1.0.tar.gz")))
    clock.advance(99)
    assert spool.expire_done() == 0
    clock.advance(2)
    assert spool.expire_done() == 1


@pytest.mark.parametrize("kind", ["symlink", "fifo", "dir-without-meta", "dir-with-link"])
def test_hostile_entries_in_new_are_failed_not_followed(spool, tmp_path, kind):
    secret = tmp_path / "secret"
    secret.write_text("do not publish")
    target = spool.new / "foo-1.0.tar.gz"
    if kind == "symlink":
        target.symlink_to(secret)
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "dir-without-meta":
        target.mkdir()
        (target / "data").write_bytes(b"x")
    else:
        target.mkdir()
        (target / "data").symlink_to(secret)
        (target / "meta.json").write_text("{}")
    assert claim_next(spool) is None
    (failure,) = spool.status().failures
    assert failure.code in {"not-a-file", "invalid-item"}
    assert secret.read_text() == "do not publish"


@pytest.mark.parametrize(
    "raw",
    [b"caf\xe9-1.0.tar.gz", b"x" * 255, b"new\nline-1.0.tar.gz", b"a\\b-1.0.tar.gz"],
)
def test_hostile_plain_names_in_new_go_to_failed_with_reason(spool, raw):
    path = os.path.join(os.fsencode(spool.new), raw)
    with open(path, "wb") as f:
        f.write(b"x")
    assert claim_next(spool) is None
    status = spool.status()
    assert status.counts["new"] == 0 and status.counts["cur"] == 0
    (failure,) = status.failures
    assert failure.code == "invalid-filename"
    json.dumps(status.as_json())  # printable whatever the bytes were


def test_failed_items_expire_with_their_reasons(tmp_path, clock):
    spool = make(tmp_path, clock, failed_retention=100)
    claim = spool.claim(spool.deliver_bytes(b"x", "foo-1.0.tar.gz", ItemMeta(uploader="a")))
    spool.fail(claim, "invalid-archive", "not a gzip file")
    clock.now = (spool.failed / str(claim.name.released())).lstat().st_ctime + 50
    assert spool.expire_failed() == 0
    clock.now += 100
    assert spool.expire_failed() == 1
    assert listing(spool, "failed") == []  # the reason went with the item


def test_a_failure_fixed_by_a_later_publish_is_no_longer_listed(spool, tmp_path):
    broken = spool.claim(spool.deliver_bytes(b"x", "foo-1.0.tar.gz"))
    spool.fail(broken, "invalid-archive", "not a gzip file")
    other = spool.claim(spool.deliver_bytes(b"x", "bar-1.0.tar.gz"))
    spool.fail(other, "invalid-archive", "not a gzip file")
    assert len(spool.status().failures) == 2
    fixed = spool.claim(spool.deliver_bytes(b"y", "foo-1.0.tar.gz"))
    spool.finish(fixed)
    assert spool.housekeep().expired == 0  # kept a while: a waiting upload may still read it
    later = spool.failed.stat().st_mtime + 3601
    spool.clock = lambda: later
    report = spool.housekeep()
    assert report.expired == 1
    (left,) = spool.status().failures
    assert left.filename == "bar-1.0.tar.gz"
    assert len([e for e in listing(spool, "failed") if e.endswith(".reason.json")]) == 1


def test_retry_gives_a_failed_item_a_clean_slate(spool):
    claim = spool.claim(spool.deliver_bytes(b"x", "foo-1.0.tar.gz", ItemMeta(uploader="a")))
    spool.fail(claim, "storage-misconfigured", "the bucket does not exist")
    (failure,) = spool.status().failures
    fresh = spool.retry(failure.item)
    assert fresh is not None and ItemName.parse(fresh).attempts == 0
    assert listing(spool, "failed") == [] and listing(spool, "new") == [fresh]
    again = spool.claim(fresh)
    assert again is not None and again.meta == ItemMeta(uploader="a")
    assert spool.retry("no-such-item") is None
    assert spool.retry("../new/x") is None


def test_housekeeping_reports_rejection_codes_for_metrics(tmp_path, clock):
    spool = make(tmp_path, clock, max_attempts=1)
    (spool.incoming / "x.tar.gz").symlink_to(tmp_path)
    dead = Spool(spool.root, owner=Owner(spool.owner.host, 2**22 + 9, 1))
    spool.deliver_bytes(b"x", "foo-1.0.tar.gz")
    claim_next(dead)
    clock.now = max(clock.now, (spool.incoming / "x.tar.gz").lstat().st_ctime) + 60
    report = spool.housekeep()
    assert sorted(report.rejected) == ["not-a-file", "worker-crash"]
