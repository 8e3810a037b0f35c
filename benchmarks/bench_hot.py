#!/usr/bin/env python3
"""One hot project: publishes/s into a single project from 1, 4 and 8 concurrent writers.

Every writer is a process of its own with its own storage client, as workers on several
hosts would be; all publish new files into the same project, so every publish is a
compare-and-swap of the same manifest, inside the storage's batch scope as the worker
publishes (local storage: derived writes unsynced, one ``syncfs`` barrier per publish,
shared between the writers). Reported per case: publishes/s, the lost
compare-and-swaps (each one a re-read, a merge and a jittered backoff) per publish and
the most any publish lost, and a check that every file landed in the manifest and its
pages. ``--s3`` runs the same on a moto server (moto's own speed dominates there, and its
compare-and-swap is not atomic under real concurrency, so read it for the retry
behaviour, not for speed).

Run:  python benchmarks/bench_hot.py [--files 200] [--s3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))

from spoold.index.pages import parse_project_json  # noqa: E402
from spoold.storage import open_storage  # noqa: E402
from spoold.storage.keys import project_html_key, project_json_key  # noqa: E402

mp = multiprocessing.get_context("fork")


def writer(url: str, versions: list[str], workdir: str, start, results) -> None:  # type: ignore[no-untyped-def]
    from spoold.index.publish import publish
    from spoold.testing.dists import make_distribution

    storage = open_storage(url)
    lost: dict[str, int] = {}
    current = [""]

    def count(event: str, key: str) -> None:
        if event == "swap-lost" and key.endswith("index.v1.json") and "/hot/" in key:
            lost[current[0]] = lost.get(current[0], 0) + 1

    storage.checkpoint = count
    folder = Path(workdir) / versions[0]
    folder.mkdir()
    prepared = [make_distribution("hot", v, folder) for v in versions]
    start.wait()
    for dist, path in prepared:
        current[0] = dist.version
        with storage.batch():  # as the worker publishes: one durability barrier each
            publish(storage, dist, path)
    results.put([lost.get(v, 0) for v in versions])


def run_case(url: str, writers: int, files: int, workdir: Path) -> tuple[float, list[int]]:
    start, results = mp.Event(), mp.Queue()
    per = files // writers
    procs = [mp.Process(target=writer, args=(url, [f"1.{w}.{i}" for i in range(per)], str(workdir), start, results))
             for w in range(writers)]
    for p in procs:
        p.start()
    time.sleep(0.5)  # every writer has built its files
    t0 = time.perf_counter()
    start.set()
    lost = [n for _ in procs for n in results.get(timeout=600)]
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join()
    storage = open_storage(url)
    manifest = parse_project_json(storage.read_bytes(project_json_key("hot")) or b"")
    assert len(manifest.files) == per * writers, f"{len(manifest.files)} of {per * writers} files landed"
    assert storage.generation_of(project_html_key("hot")) == manifest.generation
    return per * writers / elapsed, lost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=200, help="publishes per case")
    parser.add_argument("--s3", action="store_true", help="also on a moto S3 server")
    args = parser.parse_args()
    kinds = ["local"] + (["moto S3"] if args.s3 else [])
    print(f"{'storage':<8} {'writers':>7} {'publishes/s':>12} {'lost CAS/publish':>17} {'max lost':>9}")
    for kind in kinds:
        for writers in (1, 4, 8):
            with tempfile.TemporaryDirectory() as tmp:
                work = Path(tmp)
                if kind == "local":
                    (work / "store").mkdir()
                    url = str(work / "store")
                    files = args.files
                else:
                    from testlib.s3server import moto_endpoint, new_bucket  # type: ignore[import-not-found]

                    moto_endpoint()
                    url = f"s3://{new_bucket()}/hot"
                    files = max(writers * 5, args.files // 4)
                (work / "dists").mkdir()
                rate, lost = run_case(url, writers, files - files % writers, work / "dists")
                print(f"{kind:<8} {writers:>7} {rate:>12.1f} {sum(lost) / len(lost):>17.2f} {max(lost):>9}")
    print("\nevery publish landed in the manifest and its pages (checked per case)")


if __name__ == "__main__":
    main()
