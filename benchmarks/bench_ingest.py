#!/usr/bin/env python3
"""Bulk ingest: many small wheels through ``spoold drop`` (or ``spoold import``) and two
``spoold worker`` processes, against the durable floor measured in the same run.

The floor is what one durable delivery needs from the filesystem, with no spool code
around it: create a file, write 1 KB, fsync, rename, fsync the directory -- done in one
process, back to back, on the same filesystem. A published file needs several of those
(the spool item, the stored file, its ``.metadata``, the manifest, the pages, the
outcome), so the goal is a fraction of it: ingest >= 0.2 of the floor. (A worker job
takes the queued items of one project together, stages their files and makes the group
durable with shared ``syncfs`` barriers: :mod:`spoold.storage.barrier`.) The floor is a
short sequential run, so on a machine whose disk others share it moves a lot between
runs; compare the ingest rate of two versions run back to back as well as the ratio.

The wheels are 10 versions each of ``--wheels / 10`` projects (a migration: new projects
and new versions, so the root writer and the manifests both work). ``spoold drop`` is
started with the workers already running, and the clock stops when every file is in
``done/``; nothing may land in ``failed/``.

Run:  python benchmarks/bench_ingest.py [--wheels 10000] [--workers 2] [--via drop|import]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))

from testlib.distbuild import write_wheel  # noqa: E402

from bench_spool import raw_deliveries  # noqa: E402
from spoold.spool.queue import Spool  # noqa: E402


def durable_floor(folder: Path, count: int = 2000) -> float:
    """Durable create + write 1 KB + fsync + rename + fsync dir, per second."""
    tmp, new = folder / "tmp", folder / "new"
    tmp.mkdir(parents=True)
    new.mkdir()
    t0 = time.perf_counter()
    raw_deliveries(tmp, new, [f"f{i}" for i in range(count)], b"x" * 1024)
    return count / (time.perf_counter() - t0)


def start_workers(n: int, spool: Path, storage: Path, work: Path, threads: int) -> list[subprocess.Popen]:
    config = work / "spoold.toml"
    config.write_text(f'spool = "{spool}"\nstorage = "{storage}"\nthreads = {threads}\n')
    procs = []
    for i in range(n):
        log = open(work / f"worker-{i}.log", "wb")
        procs.append(subprocess.Popen([sys.executable, "-m", "spoold", "worker", "--config", str(config)],
                                      stdout=log, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + 60
    while any(b"worker started" not in (work / f"worker-{i}.log").read_bytes() for i in range(n)):
        if time.monotonic() > deadline:
            raise SystemExit(f"workers did not start; see {work}")
        time.sleep(0.05)
    return procs


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(120)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def count(folder: Path) -> int:
    return sum(1 for _ in os.scandir(folder))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheels", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4, help="job slots per worker")
    parser.add_argument("--via", choices=("drop", "import"), default="drop")
    parser.add_argument("--dir", default=None, help="filesystem to run on (default: the temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="spoold-bench-ingest-", dir=args.dir))
    try:
        dists = work / "dists"
        dists.mkdir()
        t0 = time.perf_counter()
        wheels = [write_wheel(dists, f"ingest-{i // 10:05d}", f"1.{i % 10}") for i in range(args.wheels)]
        print(f"{len(wheels)} wheels of {wheels[0].stat().st_size} bytes in {args.wheels // 10} projects, "
              f"built in {time.perf_counter() - t0:.0f} s; {args.workers} workers x {args.threads} jobs; "
              f"{os.cpu_count()} cores\n")
        floor = durable_floor(work / "floor")
        spool = Spool.create(work / "spool")
        workers = start_workers(args.workers, spool.root, work / "storage", work, args.threads)
        try:
            t0 = time.perf_counter()
            if args.via == "drop":
                cmd = [sys.executable, "-m", "spoold", "drop", "--spool", str(spool.root), *map(str, wheels)]
            else:
                cmd = [sys.executable, "-m", "spoold", "import", "--spool", str(spool.root),
                       "--storage", str(work / "storage"), str(dists)]
            delivered = subprocess.run(cmd, capture_output=True)
            if delivered.returncode != 0:
                raise SystemExit(delivered.stderr.decode()[-2000:])
            drop_seconds = time.perf_counter() - t0
            while count(spool.done) < args.wheels:
                if count(spool.failed):
                    raise SystemExit(f"items failed: see spoold status --spool {spool.root}")
                time.sleep(0.01)
            elapsed = time.perf_counter() - t0
            cpu = sum(cpu_seconds(p.pid) for p in workers)
        finally:
            stop(workers)
        rate = args.wheels / elapsed
        print(f"{'durable floor (create+write 1 KB+fsync+rename+fsync dir)':<62} {floor:>8.0f} /s")
        print(f"{f'spoold {args.via} ({drop_seconds:.1f} s) + {args.workers} workers, all published':<62} "
              f"{rate:>8.0f} /s")
        print(f"workers' CPU per file: {cpu / args.wheels * 1000:.1f} ms (user + system, both workers)")
        print(f"\ningest / floor: {rate / floor:.3f}  (goal >= 0.2)")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
