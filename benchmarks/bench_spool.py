#!/usr/bin/env python3
"""Spool throughput: deliveries/s and claims/s with 1, 2 and 4 processes.

Each figure is set beside a floor measured in the same run on the same filesystem, because
this machine is shared and absolute numbers drift while ratios hold:

* claims are one rename(2) each, so their floor is the raw ``os.rename`` rate;
* a delivery must create, write, fsync, rename and fsync the directory, so its floor is
  those raw system calls with no spool code around them (the raw ``os.rename`` rate is
  printed beside it too).

Run:  python benchmarks/bench_spool.py [--items 4000] [--dir /var/tmp]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import tempfile
import time
from pathlib import Path

from spoold.spool.queue import Spool

mp = multiprocessing.get_context("fork")
PAYLOAD = b"x" * 2048


def _parallel(procs: int, target, args_for) -> float:
    """Run ``target`` in ``procs`` processes started together; wall time of the slowest."""
    go, ready = mp.Event(), mp.Semaphore(0)

    def run(i):
        ready.release()
        go.wait()
        target(*args_for(i))

    ps = [mp.Process(target=run, args=(i,)) for i in range(procs)]
    for p in ps:
        p.start()
    for _ in ps:
        ready.acquire()
    t0 = time.perf_counter()
    go.set()
    for p in ps:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f"benchmark process failed with {p.exitcode}")
    return time.perf_counter() - t0


def raw_renames(src: Path, dst: Path, names: list[str]) -> None:
    for n in names:
        os.rename(src / n, dst / n)


def raw_deliveries(tmp: Path, new: Path, names: list[str], payload: bytes = PAYLOAD) -> None:
    """The floor of a durable delivery: create, write, fsync, rename, fsync the folder."""
    for n in names:
        fd = os.open(tmp / n, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, payload)
        os.fsync(fd)
        os.close(fd)
        os.rename(tmp / n, new / n)
        dfd = os.open(new, os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(dfd)
        os.close(dfd)


def spool_deliveries(root: str, count: int, offset: int) -> None:
    spool = Spool(root)
    for i in range(count):
        spool.deliver_bytes(PAYLOAD, f"pkg{offset + i}-1.0.tar.gz")




def spool_claims_drain(root: str) -> None:
    spool = Spool(root)
    while True:
        names = spool.pending()
        if not names:
            return
        # Each worker walks the listing from a random point; losing a race costs one
        # failed rename, which is part of the measured cost.
        for _ in spool.claims(names):
            pass


def bench(base: Path, items: int, procs: int) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(dir=base))
    try:
        per = items // procs
        # Raw rename floor: each process renames its own files.
        for i in range(procs):
            (work / f"a{i}").mkdir()
            (work / f"b{i}").mkdir()
            for n in range(per):
                (work / f"a{i}" / f"f{n}").write_bytes(b"")
        t_rename = _parallel(procs, raw_renames,
                             lambda i: (work / f"a{i}", work / f"b{i}", [f"f{n}" for n in range(per)]))
        # Raw delivery floor: create, write, fsync, rename, fsync dir.
        (work / "tmp").mkdir()
        (work / "new").mkdir()
        t_raw_deliver = _parallel(procs, raw_deliveries,
                                  lambda i: (work / "tmp", work / "new", [f"d{i}-{n}" for n in range(per)]))
        # The spool: deliveries, then claims of everything delivered (contended).
        spool = Spool.create(work / "spool")
        t_deliver = _parallel(procs, spool_deliveries, lambda i: (str(spool.root), per, i * per))
        t_claim = _parallel(procs, spool_claims_drain, lambda i: (str(spool.root),))
        assert len(os.listdir(spool.cur)) == per * procs, "every item claimed exactly once"
        n = per * procs
        return {
            "rename/s": n / t_rename,
            "raw deliver/s": n / t_raw_deliver,
            "deliver/s": n / t_deliver,
            "claim/s": n / t_claim,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=4000, help="items per measurement (default 4000)")
    parser.add_argument("--dir", default=None, help="filesystem to measure on (default: the temp dir)")
    parser.add_argument("--procs", default="1,2,4", help="process counts (default 1,2,4)")
    args = parser.parse_args()
    base = Path(args.dir or tempfile.gettempdir())
    print(f"spool benchmark on {base} ({os.cpu_count()} cores), {args.items} items per run\n")
    header = (f"{'procs':>5} {'rename/s':>10} {'raw dlv/s':>10} {'deliver/s':>10} {'claim/s':>10}"
              f" {'claim/rename':>13} {'dlv/raw dlv':>12} {'dlv/rename':>11}")
    print(header)
    print("-" * len(header))
    for procs in (int(p) for p in args.procs.split(",")):
        r = bench(base, args.items, procs)
        print(f"{procs:>5} {r['rename/s']:>10.0f} {r['raw deliver/s']:>10.0f} {r['deliver/s']:>10.0f}"
              f" {r['claim/s']:>10.0f} {r['claim/s'] / r['rename/s']:>13.2f}"
              f" {r['deliver/s'] / r['raw deliver/s']:>12.2f} {r['deliver/s'] / r['rename/s']:>11.3f}")


if __name__ == "__main__":
    main()
