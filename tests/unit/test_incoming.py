"""incoming/: files written in place by scp/sftp are taken only when finished."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from testlib.clock import FakeClock
from spoold.spool.incoming import IncomingPolicy, Verdict, decide, structural_problem
from spoold.spool.names import ItemName
from spoold.spool.queue import Spool, SpoolPolicy
from spoold.testing.dists import wheel_members, zip_bytes


def wheel_bytes() -> bytes:
    return zip_bytes(wheel_members("demo", "1.0", files={"demo/__init__.py": b"x = 1\n" * 2000}))


def sdist_bytes() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        data = os.urandom(50_000)
        info = tarfile.TarInfo("demo-1.0/PKG-INFO")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def spool(tmp_path, clock) -> Spool:
    return Spool.create(tmp_path / "spool", clock=clock,
                        policy=SpoolPolicy(incoming=IncomingPolicy(settle=30, expire=36 * 3600)))


def put(spool: Spool, name: str, data: bytes, age: float, clock) -> Path:
    path = spool.incoming / name
    path.write_bytes(data)
    os.utime(path, (clock.now - age,) * 2)
    return path


def quiet(clock, age: float) -> None:
    """ctime cannot be set; move the clock instead so that everything looks `age` old."""
    clock.now = max(clock.now, Path("/proc/self").stat().st_ctime) + age


def test_settled_wheel_is_taken(spool, clock):
    put(spool, "demo-1.0-py3-none-any.whl", wheel_bytes(), 0, clock)
    quiet(clock, 31)
    assert spool.take_incoming() == (1, 0)
    (item,) = spool.pending()
    assert ItemName.parse(item).filename == "demo-1.0-py3-none-any.whl"
    assert os.listdir(spool.incoming) == []


def test_a_growing_file_is_not_taken_until_it_settles(spool, clock):
    """An scp in progress: every chunk written refreshes mtime, so it never looks quiet."""
    data = sdist_bytes()
    path = spool.incoming / "demo-1.0.tar.gz"
    with open(path, "wb") as f:
        for i in range(0, len(data), 4096):
            f.write(data[i:i + 4096])
            f.flush()
            clock.now = path.stat().st_mtime + 5  # the next chunk arrives 5 s later
            assert spool.take_incoming() == (0, 0)
    clock.now = path.stat().st_ctime + 29
    assert spool.take_incoming() == (0, 0)
    clock.now += 2
    assert spool.take_incoming() == (1, 0)


@pytest.mark.parametrize("name,data", [
    ("demo-1.0-py3-none-any.whl", wheel_bytes()[:-100]),
    ("demo-1.0.tar.gz", sdist_bytes()[:-100]),
    ("demo-1.0.zip", wheel_bytes()[:len(wheel_bytes()) // 2]),
])
def test_structurally_incomplete_archive_is_left_then_expires(spool, clock, name, data):
    put(spool, name, data, 0, clock)
    quiet(clock, 3600)
    assert spool.take_incoming() == (0, 0)
    assert os.listdir(spool.incoming) == [name]
    quiet(clock, 36 * 3600 + 1)
    assert spool.take_incoming() == (0, 1)
    (failure,) = spool.status().failures
    assert failure.code == "incomplete-transfer" and failure.filename == name


def test_sidecar_match_takes_the_file_at_once(spool, clock):
    data = wheel_bytes()
    put(spool, "demo-1.0-py3-none-any.whl", data, 0, clock)
    (spool.incoming / "demo-1.0-py3-none-any.whl.sha256").write_text(
        f"{hashlib.sha256(data).hexdigest()}  demo-1.0-py3-none-any.whl\n")
    assert spool.take_incoming() == (1, 0)
    assert os.listdir(spool.incoming) == []


def test_wrong_sidecar_fails_with_the_reason_once_settled(spool, clock):
    put(spool, "demo-1.0-py3-none-any.whl", wheel_bytes(), 0, clock)
    (spool.incoming / "demo-1.0-py3-none-any.whl.sha256").write_text("0" * 64 + " *demo-1.0-py3-none-any.whl\n")
    assert spool.take_incoming() == (0, 0), "may still be arriving"
    quiet(clock, 31)
    assert spool.take_incoming() == (0, 1)
    (failure,) = spool.status().failures
    assert failure.code == "sidecar-mismatch"
    assert "0" * 64 in failure.error and "send both again" in failure.error
    assert os.listdir(spool.incoming) == []


def test_malformed_sidecar_fails(spool, clock):
    put(spool, "demo-1.0-py3-none-any.whl", wheel_bytes(), 0, clock)
    (spool.incoming / "demo-1.0-py3-none-any.whl.sha256").write_text("not a digest\n")
    quiet(clock, 31)
    assert spool.take_incoming() == (0, 1)
    assert spool.status().failures[0].code == "sidecar-invalid"


@pytest.mark.parametrize("name", [
    ".demo-1.0-py3-none-any.whl.Ab3dEf",  # rsync's temporary
    "demo-1.0-py3-none-any.whl.part",
    "demo-1.0-py3-none-any.whl.filepart",  # WinSCP
    "demo-1.0-py3-none-any.whl~",
    ".hidden",
])
def test_temporaries_are_never_taken(spool, clock, name):
    put(spool, name, wheel_bytes(), 0, clock)
    quiet(clock, 100 * 3600)
    assert spool.take_incoming() == (0, 0)
    assert os.listdir(spool.incoming) == [name]
    assert spool.status().counts["incoming"] == 0


def test_symlink_in_incoming_is_failed_not_followed(spool, clock, tmp_path):
    secret = tmp_path / "secret.whl"
    secret.write_bytes(wheel_bytes())
    (spool.incoming / "demo-1.0-py3-none-any.whl").symlink_to(secret)
    quiet(clock, 31)
    assert spool.take_incoming() == (0, 1)
    assert spool.status().failures[0].code == "not-a-file"
    assert spool.pending() == []


def test_hostile_names_in_incoming_are_failed_with_reason(spool, clock):
    raw_names = [b"caf\xe9-1.0.tar.gz", b"x" * 250 + b".zip", b"tab\there.whl"]
    for raw in raw_names:
        with open(os.path.join(os.fsencode(spool.incoming), raw), "wb") as f:
            f.write(b"not an archive")
    quiet(clock, 31)
    assert spool.take_incoming() == (0, 3)
    status = spool.status()
    assert {f.code for f in status.failures} == {"invalid-filename"}
    assert status.counts["incoming"] == 0


def test_non_archive_name_is_taken_for_the_worker_to_reject(spool, clock):
    put(spool, "notes.txt", b"hello", 0, clock)
    quiet(clock, 31)
    assert spool.take_incoming() == (1, 0)


def test_decide_ignores_directories(tmp_path):
    (tmp_path / "sub").mkdir()
    assert decide(tmp_path / "sub", 1e12).verdict is Verdict.IGNORE


def test_structural_problem_accepts_complete_archives(tmp_path):
    (tmp_path / "a.whl").write_bytes(wheel_bytes())
    (tmp_path / "a.tar.gz").write_bytes(sdist_bytes())
    (tmp_path / "b.tar.gz").write_bytes(gzip.compress(b"x") + b"trailing")
    assert structural_problem(tmp_path / "a.whl") is None
    assert structural_problem(tmp_path / "a.tar.gz") is None
    assert structural_problem(tmp_path / "b.tar.gz") is None
    (tmp_path / "c.tar.gz").write_bytes(b"\x1f\x8b\x08garbage")
    assert "gzip" in structural_problem(tmp_path / "c.tar.gz")


def test_a_fifo_never_blocks_housekeeping(spool, clock):
    """A spool-group user can put a FIFO anywhere spoold reads: as the file, as its
    sidecar, as a meta.json. Opening one without O_NONBLOCK would hang housekeeping (and
    SIGTERM) forever; each is refused instead. A hang fails the test by pytest-timeout."""
    os.mkfifo(spool.incoming / "fifo-1.0.tar.gz")
    put(spool, "demo-1.0.tar.gz", sdist_bytes(), 0, clock)
    os.mkfifo(spool.incoming / "demo-1.0.tar.gz.sha256")
    quiet(clock, 31)
    taken, failed = spool.take_incoming()
    status = spool.status()
    assert sorted(f.code for f in status.failures) == ["not-a-file", "sidecar-invalid"]
    assert (taken, failed) == (0, 2) and status.counts["incoming"] == 0


def test_a_fifo_as_meta_json_fails_the_item(spool):
    from spoold.spool import ItemMeta

    item = spool.deliver_bytes(b"x", "foo-1.0.tar.gz", ItemMeta(uploader="a"))
    os.unlink(spool.new / item / "meta.json")
    os.mkfifo(spool.new / item / "meta.json")
    assert spool.claim(item) is None
    (failure,) = spool.status().failures
    assert failure.code == "invalid-item" and "not a regular file" in failure.error


def test_the_incoming_file_swapped_for_a_fifo_after_its_check_is_not_read(tmp_path):
    from spoold.hashing import hash_file
    from spoold.safeopen import NotRegularFile

    os.mkfifo(tmp_path / "x.whl")
    with pytest.raises(NotRegularFile):
        hash_file(tmp_path / "x.whl")
    assert "no complete zip" in structural_problem(tmp_path / "x.whl")
    os.symlink(tmp_path / "elsewhere", tmp_path / "y.tar.gz")
    with pytest.raises(NotRegularFile, match="symbolic link"):
        hash_file(tmp_path / "y.tar.gz")
