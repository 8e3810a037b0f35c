#!/usr/bin/env python3
"""Worker daemon: ingest rate and time-to-visible.

1. Ingest rate: small wheels per second through 1, 2 and 4 ``spoold worker`` processes on
   local storage (a backlog released into ``new/`` at once), beside the same work done by
   a plain loop in one process (``inspect_file`` + ``publish``, no daemon, no spool) in the
   same run. The ratio is the daemon's efficiency against doing the bare work.
2. Time-to-visible: from a delivery into the spool returning (what ``spoold drop`` does
   before it exits) to the file appearing in its project's index page, one file at a time
   on an idle daemon, with 1,000 and with 20,000 files already published (20 files per
   project, so only the store size differs). The worker is pinned to one core and this
   process to the other (``taskset``). Target: p50 < 30 ms, p99 < 200 ms at both sizes.

Run:  python benchmarks/bench_worker.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from bench_publish import build_store, project_name  # noqa: E402
from testlib.distbuild import write_wheel  # noqa: E402

from spoold.inspection.inspect import inspect_file  # noqa: E402
from spoold.index import publish  # noqa: E402
from spoold.spool.queue import Spool  # noqa: E402
from spoold.storage import open_storage  # noqa: E402

FILES_PER_PROJECT = 20


def start_workers(n: int, spool: Path, storage: Path, work: Path, cpus: str | None) -> list[subprocess.Popen]:
    config = work / "spoold.toml"
    config.write_text(f'spool = "{spool}"\nstorage = "{storage}"\nthreads = 4\n')
    prefix = ["taskset", "-c", cpus] if cpus and shutil.which("taskset") else []
    procs = []
    for i in range(n):
        log = open(work / f"worker-{i}.log", "wb")
        procs.append(subprocess.Popen(
            [*prefix, sys.executable, "-m", "spoold", "worker", "--config", str(config)],
            stdout=log, stderr=subprocess.STDOUT))
    # Ready once each has logged its first line (the reactor runs and has scanned).
    deadline = time.monotonic() + 30
    while any((work / f"worker-{i}.log").stat().st_size == 0 for i in range(n)):
        if time.monotonic() > deadline:
            raise SystemExit("workers did not start; see " + str(work))
        time.sleep(0.05)
    time.sleep(0.5)
    return procs


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(60)


def ingest(procs: int, count: int, wheels: list[Path], base: Path) -> float:
    work = Path(tempfile.mkdtemp(dir=base))
    try:
        spool = Spool.create(work / "spool")
        staging = Spool.create(work / "staging")
        items = [staging.deliver_file(w) for w in wheels[:count]]
        workers = start_workers(procs, spool.root, work / "storage", work, None)
        t0 = time.perf_counter()
        for item in items:  # release the backlog at once: rename(2) into new/
            os.rename(staging.new / item, spool.new / item)
        while len(os.listdir(spool.done)) < count:
            time.sleep(0.005)
        elapsed = time.perf_counter() - t0
        stop(workers)
        assert len(os.listdir(spool.failed)) == 0
        return count / elapsed
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bare_loop(count: int, wheels: list[Path], base: Path) -> float:
    work = Path(tempfile.mkdtemp(dir=base))
    try:
        storage = open_storage(str(work / "storage"))
        t0 = time.perf_counter()
        for w in wheels[:count]:
            publish(storage, inspect_file(w, w.name), w)
        return count / (time.perf_counter() - t0)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def time_to_visible(published: int, samples: int, base: Path) -> list[float]:
    work = Path(tempfile.mkdtemp(dir=base))
    try:
        storage_root = work / "storage"
        projects = published // FILES_PER_PROJECT
        build_store(open_storage(str(storage_root)), projects, FILES_PER_PROJECT)
        spool = Spool.create(work / "spool")
        dists = work / "dists"
        dists.mkdir()
        wheels = [write_wheel(dists, project_name(i % projects), f"9.{i}") for i in range(samples)]
        os.sched_setaffinity(0, {0})
        workers = start_workers(1, spool.root, storage_root, work, "1")
        latencies = []
        try:
            for i, wheel in enumerate(wheels):
                page = storage_root / "simple" / project_name(i % projects) / "index.v1.json"
                needle = wheel.name.encode()
                spool.deliver_file(wheel)
                t0 = time.perf_counter()
                while True:
                    try:
                        if needle in page.read_bytes():
                            break
                    except FileNotFoundError:
                        pass
                    time.sleep(0.0005)
                latencies.append((time.perf_counter() - t0) * 1000)
        finally:
            stop(workers)
            os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
        return latencies
    finally:
        shutil.rmtree(work, ignore_errors=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller runs (a smoke test of the benchmark)")
    parser.add_argument("--dir", default=None, help="filesystem to run on (default: the temp dir)")
    args = parser.parse_args()
    base = Path(args.dir or tempfile.gettempdir())
    count = 200 if args.quick else 1000
    samples = 50 if args.quick else 300
    dists = Path(tempfile.mkdtemp(dir=base))
    try:
        wheels = [write_wheel(dists, f"ingest{i % 20}", f"1.{i}") for i in range(count)]
        print(f"ingest: {count} small wheels, local storage ({os.cpu_count()} cores)\n")
        bare = bare_loop(count, wheels, base)
        print(f"{'workers':>8} {'wheels/s':>9} {'vs bare loop':>13}")
        print(f"{'bare':>8} {bare:>9.0f} {1.0:>13.2f}")
        for procs in (1, 2, 4):
            rate = ingest(procs, count, wheels, base)
            print(f"{procs:>8} {rate:>9.0f} {rate / bare:>13.2f}")
    finally:
        shutil.rmtree(dists, ignore_errors=True)

    print(f"\ntime to visible, {samples} files one at a time, idle daemon (ms)\n")
    print(f"{'published':>10} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7} {'mean':>7}")
    results = {}
    for published in (1_000, 20_000):
        lat = time_to_visible(published, samples, base)
        results[published] = lat
        print(f"{published:>10} {pct(lat, .5):>7.1f} {pct(lat, .9):>7.1f} {pct(lat, .99):>7.1f}"
              f" {max(lat):>7.1f} {statistics.mean(lat):>7.1f}")
    ratio = pct(results[20_000], .5) / pct(results[1_000], .5)
    print(f"\np50 ratio 20,000 / 1,000 files: {ratio:.2f}  (target: p50 < 30 ms, p99 < 200 ms, same at both sizes)")


if __name__ == "__main__":
    main()
