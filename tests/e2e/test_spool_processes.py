"""The spool under real OS processes: contention, SIGKILL at random moments, crashes
mid-delivery. No locks anywhere; the rename into cur/ must be the only arbiter."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import random
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from spoold.spool.names import ItemName
from spoold.spool.queue import Spool, SpoolPolicy
from testlib.spoolwork import claim_next
from spoold.spool import ItemMeta

mp = multiprocessing.get_context("fork")
POLICY = SpoolPolicy(max_attempts=1000)


def uid_of(entry: str) -> str:
    return ItemName.parse(entry).uid


def claimer(root: str, log: str, go) -> None:
    """Claim until new/ is empty, logging every claim won (a worker with no real work)."""
    spool = Spool(root, policy=POLICY)
    go.wait()
    with open(log, "a") as out:
        while names := spool.pending():
            while (claim := claim_next(spool, names)) is not None:
                out.write(claim.name.uid + "\n")
                out.flush()
                assert spool.finish(claim)
                names = [n for n in names if uid_of(n) != claim.name.uid]


def test_exactly_once_claims_under_contention(tmp_path):
    spool = Spool.create(tmp_path / "spool")
    delivered = {uid_of(spool.deliver_bytes(b"x", f"p{i}-1.0.tar.gz")) for i in range(2000)}
    go = mp.Event()
    logs = [tmp_path / f"claims-{n}.log" for n in range(4)]
    procs = [mp.Process(target=claimer, args=(str(spool.root), str(log), go)) for log in logs]
    for p in procs:
        p.start()
    go.set()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    claims = Counter(line for log in logs for line in log.read_text().split())
    assert set(claims) == delivered
    assert max(claims.values()) == 1, "an item was claimed twice"
    assert sum(1 for log in logs if log.read_text()) >= 2, "no contention happened"
    assert {uid_of(e) for e in os.listdir(spool.done)} == delivered
    assert os.listdir(spool.new) == [] and os.listdir(spool.cur) == []


#: Beside the spool once the test delivers no more: workers may stop when all is done.
CLOSED = "closed"


def crashy_worker(root: str, log: str) -> None:
    """Claim, 'work' a little, finish; log each step so the test can see where kills hit."""
    spool = Spool(root, policy=POLICY)
    rng = random.Random(os.getpid())
    closed = Path(root).parent / CLOSED
    with open(log, "a") as out:
        while True:
            spool.reap()
            claim = claim_next(spool)
            if claim is None:
                if closed.exists() and not spool.pending() and not os.listdir(spool.cur):
                    return
                time.sleep(0.001)
                continue
            out.write(f"claim {claim.name.uid}\n")
            out.flush()
            time.sleep(rng.random() / 500)  # the work a real worker does takes time
            if spool.finish(claim):
                out.write(f"done {claim.name.uid}\n")
                out.flush()


def test_sigkilled_claimers_lose_nothing_and_finish_everything_once(tmp_path):
    spool = Spool.create(tmp_path / "spool", policy=POLICY)
    delivered: set[str] = set()
    rng = random.Random(1234)
    logs = iter(tmp_path / f"w{n}.log" for n in range(1000))

    def start() -> mp.Process:
        p = mp.Process(target=crashy_worker, args=(str(spool.root), str(next(logs))))
        p.start()
        return p

    # The work arrives in waves, one kill per wave once its work is seen to progress, so
    # every kill lands while the workers are busy however fast the machine is.
    workers = [start() for _ in range(4)]
    kills = 0
    for wave in range(25):
        before = len(os.listdir(spool.done))
        delivered |= {uid_of(spool.deliver_bytes(b"x", f"p{wave}x{i}-1.0.tar.gz")) for i in range(24)}
        while len(os.listdir(spool.done)) == before:
            time.sleep(0.001)
        victim = workers.pop(rng.randrange(len(workers)))
        os.kill(victim.pid, signal.SIGKILL)
        victim.join()
        assert victim.exitcode == -signal.SIGKILL  # it was running, not finished
        kills += 1
        workers.append(start())
    (tmp_path / CLOSED).touch()
    for p in workers:
        p.join(120)
        assert p.exitcode == 0
    # Whatever the last kills left in cur/ is returned by a reaper and finished.
    spool.reap()
    crashy_worker(str(spool.root), str(tmp_path / "final.log"))

    done = Counter(uid_of(e) for e in os.listdir(spool.done))
    assert set(done) == delivered and max(done.values()) == 1
    assert os.listdir(spool.new) == [] and os.listdir(spool.cur) == []
    assert os.listdir(spool.failed) == []
    finished = Counter(line.split()[1] for log in tmp_path.glob("*.log")
                       for line in log.read_text().splitlines() if line.startswith("done "))
    assert set(finished) <= delivered
    assert max(finished.values()) == 1, "an item was finished by two workers"
    # Kills that hit an item between its claim and its finish (the case that matters).
    mid_item = sum(1 for log in tmp_path.glob("w*.log")
                   if (lines := log.read_text().splitlines()) and lines[-1].startswith("claim "))
    assert kills == 25 and mid_item >= 1


def payload(n: int) -> bytes:
    body = random.Random(n).randbytes(64 * 1024 + n)
    return hashlib.sha256(body).hexdigest().encode() + body


def complete(data: bytes) -> bool:
    return hashlib.sha256(data[64:]).hexdigest().encode() == data[:64]


def reader(root: str, stop, seen: str) -> None:
    """Read every item that appears in new/; log whether each was whole."""
    new = Path(root) / "new"
    checked: dict[str, bool] = {}
    while not stop.is_set() or len(checked) < len(os.listdir(new)):
        for entry in os.listdir(new):
            if entry not in checked:
                checked[entry] = complete((new / entry).read_bytes())
    Path(seen).write_text("".join(f"{ok}\n" for ok in checked.values()))


def test_readers_never_see_a_partial_file_in_new(tmp_path):
    spool = Spool.create(tmp_path / "spool")
    stop = mp.Event()
    seen = tmp_path / "seen"
    r = mp.Process(target=reader, args=(str(spool.root), stop, str(seen)))
    r.start()
    for n in range(300):
        with spool.delivery(f"p{n}-1.0.tar.gz") as f:
            data = payload(n)
            for i in range(0, len(data), 8192):  # written in pieces, as a network upload is
                f.write(data[i:i + 8192])
    stop.set()
    r.join(60)
    results = seen.read_text().split()
    assert len(results) == 300
    assert set(results) == {"True"}


STEPS = ["write", "fsync", "rename", "fsync-dir"]


def deliver_and_die(root: str, step: str, when: int) -> None:
    """Deliver one item, dying (as in a power cut: no cleanup) at the given step."""
    spool = Spool(root)
    real_fsync, real_rename = os.fsync, os.rename
    calls = Counter()

    def hook(kind: str) -> None:
        calls[kind] += 1
        if kind == step and calls[kind] == when:
            os._exit(9)

    def fsync(fd):
        hook("fsync-dir" if os.path.isdir(os.readlink(f"/proc/self/fd/{fd}")) else "fsync")
        real_fsync(fd)

    def rename(a, b):
        hook("rename")
        real_rename(a, b)

    os.fsync, os.rename = fsync, rename
    with spool.delivery("demo-1.0.tar.gz", ItemMeta(uploader="x") if when == 2 else None) as f:
        data = payload(7)
        for i in range(0, len(data), 8192):
            hook("write")
            f.write(data[i:i + 8192])
    os._exit(0)


@pytest.mark.parametrize("when", [1, 2])
@pytest.mark.parametrize("step", STEPS)
def test_a_crash_at_any_step_of_delivery_leaves_new_whole_or_empty(tmp_path, step, when):
    spool = Spool.create(tmp_path / "spool")
    p = mp.Process(target=deliver_and_die, args=(str(spool.root), step, when))
    p.start()
    p.join(30)
    entries = os.listdir(spool.new)
    if entries:
        (entry,) = entries
        claim = spool.claim(entry)
        assert claim is not None and complete(claim.payload.read_bytes())
        assert p.exitcode in (0, 9)
    else:
        assert p.exitcode == 9, "the delivery finished but nothing is in new/"
    # Whatever the crash left in tmp/ is swept later and never reaches a worker.
    assert spool.pending() == []
