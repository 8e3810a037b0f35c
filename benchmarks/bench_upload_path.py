#!/usr/bin/env python3
"""Receiving an upload, without publishing it: the upload path's own CPU.

``spoold serve`` receives and publishes in one process, and publishing costs several times
what receiving does, so a change to the upload path is lost in the noise of the whole
server's CPU. Here spoold's site runs in this process over a real spool, with the real
reactor, thread pools and htpasswd file, and a waiter (:class:`spoold.testing.FakeWaiter`)
that answers every upload as published the moment it is in ``new/``: what is measured is
the HTTP request, the upload gate, the form parsed, the spool delivery with its fsyncs
and the answer -- nothing of the worker. A client process on core 0 posts small wheels as
raw multipart forms at concurrency 4 (after one unmeasured upload that pays for bcrypt);
the server runs on core 1. Figures: uploads/s and CPU per upload, in all and on the
reactor thread, median of ``--rounds`` runs.

Run:  python benchmarks/bench_upload_path.py [--uploads N] [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_http import CLIENT_CPU, SERVER_CPU, pinned  # noqa: E402
from twisted.internet import reactor  # noqa: E402
from twisted.python.threadpool import ThreadPool  # noqa: E402

from spoold.access.accounts import add_user  # noqa: E402
from spoold.access.htpasswd import Htpasswd  # noqa: E402
from spoold.config import Settings  # noqa: E402
from spoold.spool.outcome import Outcome, Result  # noqa: E402
from spoold.spool.queue import Spool  # noqa: E402
from spoold.storage import open_storage  # noqa: E402
from spoold.testing import FakeWaiter  # noqa: E402
from spoold.web.site import build_site  # noqa: E402

CLIENT = """
import concurrent.futures, sys
sys.path.insert(0, {here!r})
import bench_http as B
auth = "bench:bench-password"
B.post_upload({url!r}, *B.tiny_wheel("warm-up", "0.1"), auth)
for line in sys.stdin:
    n, tag = line.split()
    wheels = [B.tiny_wheel(f"project-{{i:06d}}", f"{{tag}}.{{i}}") for i in range(int(n))]
    print("ready", flush=True)
    sys.stdin.readline()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        statuses = {{s for s, _ in pool.map(lambda w: B.post_upload({url!r}, w[0], w[1], auth), wheels)}}
    print(" ".join(map(str, sorted(statuses))), flush=True)
"""


def task_cpu() -> dict[int, float]:
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def drive(url: str, uploads: int, rounds: int, results: list[tuple[float, float, float]]) -> None:
    """The client's rounds, measured from here (a thread beside the reactor's)."""
    client = subprocess.Popen(pinned(CLIENT_CPU, [sys.executable, "-c", CLIENT.format(here=str(HERE), url=url)]),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert client.stdin is not None and client.stdout is not None
    main = threading.main_thread().native_id
    try:
        for r in range(rounds):
            client.stdin.write(f"{uploads} {r + 1}\n")
            client.stdin.flush()
            assert client.stdout.readline().strip() == "ready"
            before = task_cpu()
            t0 = time.perf_counter()
            client.stdin.write("go\n")
            client.stdin.flush()
            statuses = client.stdout.readline().split()
            elapsed = time.perf_counter() - t0
            after = task_cpu()
            if statuses != ["200"]:
                print(f"  warning: uploads answered {statuses}")
            total = sum(after[t] - before.get(t, 0.0) for t in after)
            results.append((uploads / elapsed, total / uploads * 1000, (after[main] - before[main]) / uploads * 1000))
    finally:
        client.stdin.close()
        client.wait()
        reactor.callFromThread(reactor.stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uploads", type=int, default=500, help="uploads per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="spoold-bench-upload-path-"))
    try:
        add_user(work / "htpasswd", "bench", "bench-password", rounds=10)
        storage = open_storage(str(work / "storage"))
        storage.probe(create=True)
        spool = Spool.create(str(work / "spool"))
        pool = ThreadPool(minthreads=1, maxthreads=8, name="spoold")
        auth_pool = ThreadPool(minthreads=0, maxthreads=2, name="spoold-auth")
        settings = Settings(spool=str(work / "spool"), storage=str(work / "storage"), read="public",
                            admins=("bench",), access_log=False)
        site = build_site(storage_reader=storage, spool=spool,
                          waiter=FakeWaiter(auto=Outcome("", "", Result.PUBLISHED)),
                          auth=Htpasswd(work / "htpasswd"), settings=settings, reactor=reactor,
                          threadpool=pool, auth_threadpool=auth_pool)
        port = reactor.listenTCP(0, site, interface="127.0.0.1")
        results: list[tuple[float, float, float]] = []
        url = f"http://127.0.0.1:{port.getHost().port}"
        threading.Thread(target=drive, args=(url, args.uploads, args.rounds, results), daemon=True).start()
        os.sched_setaffinity(0, {int(SERVER_CPU)})
        pool.start()
        auth_pool.start()
        reactor.run()
        pool.stop()
        auth_pool.stop()
        rates, cpu, on_reactor = zip(*results)
        print(f"receiving {args.uploads} uploads at concurrency 4 (publishing left out), {args.rounds} rounds:")
        print(f"  uploads/s {statistics.median(rates):.0f} (spread {min(rates):.0f}-{max(rates):.0f})")
        print(f"  server CPU ms/upload {statistics.median(cpu):.2f} (spread {min(cpu):.2f}-{max(cpu):.2f}),"
              f" of which the reactor thread {statistics.median(on_reactor):.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
