#!/usr/bin/env python3
"""The explorer: project page and JSON API beside /simple/<project>/, and search latency.

* Dataset: bench_http's 20,000 files (10,000 projects x 2 versions), plus what publishing
  renders for the explorer -- a release view per version (metadata, a ~4 KB Markdown README
  rendered), ``pypi/<p>/json`` and ``pypi/<p>/<v>/json``, and the catalog -- built by
  rendering one project and substituting names (as bench_publish does), so it takes seconds.
* ``spoold serve`` (public reads, no access log) on core 1; wrk (1 thread, 8 connections)
  on core 0, random projects: ``/simple/<p>/`` (HTML), ``/project/<p>/`` and
  ``/pypi/<p>/json``, in interleaved rounds of the same run, each after a pass over
  every project (the steady state of a read cache: served, or revalidated by one read).
* Search: the in-memory index over 10,000 and 50,000 synthetic projects (names and
  summaries from a word list): p50/p99 of ``SearchIndex.search`` for a mix of queries
  (exact names, prefixes, substrings, summary words, two words, misses), its build time,
  and p50/p99 of ``GET /search/?q=`` through HTTP (sequential requests).

Needs wrk (``apt-get install wrk``).

Run:  python benchmarks/bench_explorer.py [--seconds N] [--reuse DIR]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from bench_http import CLIENT_CPU, Proc, free_port, pinned  # noqa: E402
from bench_publish import build_store, manifest_with, project_name, write_direct  # noqa: E402

from spoold.explorer.catalog import SHARDS, CatalogEntry, _render, shard_of  # noqa: E402
from spoold.explorer.release import release_view  # noqa: E402
from spoold.explorer.search import SearchIndex  # noqa: E402
from spoold.index.jsonapi import render_project_doc, render_release_doc  # noqa: E402
from spoold.storage import open_storage  # noqa: E402
from spoold.storage.keys import catalog_key, pypi_project_key, pypi_release_key, release_view_key  # noqa: E402
from testlib.explorerdists import rich_metadata  # noqa: E402

WORDS = ("http client server async data json yaml parser test mock cloud aws azure django flask "
         "api rest graph sql orm cache redis queue task worker cli tool image audio video text nlp "
         "model train tensor array plot chart time date log debug lint format type stub auth token "
         "crypto hash zip tar file path config env secret vault stream event kafka grpc proto").split()

README = "# Project\n\n" + "\n\n".join(
    f"## Section {i}\n\nSome *text* with `code`, a [link](https://example.org/{i}) and a list:\n\n"
    "- one\n- two\n\n```python\nprint('x')\n```" for i in range(12))


def explorer_docs(storage_url: str, projects: int) -> None:
    storage = open_storage(storage_url)
    template = manifest_with(project_name(0), 2)
    views = {e.version: release_view(template.project, e.version, e.filename,
                                     rich_metadata(template.project, e.version, summary="a project for benchmarks",
                                                   readme=README))
             for e in template.files}
    blake2 = {e.filename: "b" * 64 for e in template.files}
    pages = {release_view_key(template.project, v): view.to_json() for v, view in views.items()}
    pages[pypi_project_key(template.project)] = render_project_doc(template, "0.1", views["0.1"], blake2)
    for v, view in views.items():
        pages[pypi_release_key(template.project, v)] = render_release_doc(template, v, view, blake2)
    old = [project_name(0), project_name(0).replace("-", "_")]
    shards: dict[int, dict[str, CatalogEntry]] = {}
    for i in range(projects):
        name = project_name(i)
        for key, data in pages.items():
            text = data.decode()
            for a, b in zip(old, [name, name.replace("-", "_")], strict=True):
                text = text.replace(a, b)
            write_direct(storage, key.replace(old[0], name), text.encode())
        shards.setdefault(shard_of(name), {})[name] = CatalogEntry(
            name, name, "a project for benchmarks", "0.1", f"2024-01-01T00:{i % 60:02d}:00.000000Z")
    write_catalog(storage, shards)


def write_catalog(storage, shards) -> None:  # type: ignore[no-untyped-def]
    for shard in range(SHARDS):
        storage.swap_doc(catalog_key(shard), _render(1, shards.get(shard, {})), 1, None)


def synthetic(count: int, seed: int = 1) -> list[CatalogEntry]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        name = f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-{i}"
        summary = " ".join(rng.choice(WORDS) for _ in range(8))
        out.append(CatalogEntry(name, name, summary, "1.0", f"2024-01-01T00:00:{i % 60:02d}Z"))
    return out


def queries(entries: list[CatalogEntry], count: int, seed: int = 2) -> list[str]:
    rng = random.Random(seed)
    kinds = [
        lambda: rng.choice(entries).project,                      # exact name
        lambda: rng.choice(entries).project[:4],                  # name prefix
        lambda: rng.choice(entries).project.split("-")[1],        # a word of names (substring)
        lambda: rng.choice(WORDS),                                # a summary word
        lambda: f"{rng.choice(WORDS)} {rng.choice(WORDS)}",       # two words
        lambda: f"nothing{rng.randrange(10**6)}",                 # no match
    ]
    return [rng.choice(kinds)() for _ in range(count)]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def search_in_memory(size: int) -> dict[str, float]:
    entries = synthetic(size)
    t0 = time.perf_counter()
    index = SearchIndex(entries)
    build = time.perf_counter() - t0
    times = []
    for q in queries(entries, 3000):
        t = time.perf_counter()
        index.search(q, 1)
        times.append(time.perf_counter() - t)
    return {"build_s": build, "p50_ms": pct(times, 0.5) * 1e3, "p99_ms": pct(times, 0.99) * 1e3,
            "mean_ms": statistics.fmean(times) * 1e3}


def search_http(url: str, entries: list[CatalogEntry], count: int = 400) -> dict[str, float]:
    times = []
    for q in queries(entries, count, seed=3):
        t = time.perf_counter()
        urllib.request.urlopen(f"{url}/search/?q={urllib.parse.quote(q)}", timeout=30).read()
        times.append(time.perf_counter() - t)
    return {"p50_ms": pct(times, 0.5) * 1e3, "p99_ms": pct(times, 0.99) * 1e3}


WRK = """
local n = {projects}
local i = -1
math.randomseed({seed})
request = function()
  i = i + 1
  if {sequential} then return wrk.format("GET", string.format("{pattern}", i % n)) end
  return wrk.format("GET", string.format("{pattern}", math.random(0, n - 1)))
end
"""


def wrk(url: str, pattern: str, projects: int, seconds: int, work: Path, *,
        sequential: bool = False) -> tuple[float, str]:
    import re
    import subprocess

    script = work / "explorer.lua"
    script.write_text(WRK.format(projects=projects, seed=int(time.time()), pattern=pattern,
                                 sequential="true" if sequential else "false"))
    out = subprocess.run(pinned(CLIENT_CPU, ["wrk", "-t1", "-c8", f"-d{seconds}s", "--timeout", "30s",
                                             "-s", str(script), url]), capture_output=True, text=True).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return (float(rate[1]) if rate else 0.0), (f" ({bad[1]} non-2xx!)" if bad else "")


def serve(work: Path, storage: Path) -> Proc:
    port = free_port()
    config = work / "spoold.toml"
    config.write_text('access_log = false\nread = "public"\n')
    return Proc([sys.executable, "-m", "spoold", "serve", "--config", str(config), "--spool", str(work / "spool"),
                 "--storage", str(storage), "--listen", f"tcp:{port}:interface=127.0.0.1",
                 "--htpasswd", str(work / "htpasswd")], work / "spoold.log", f"http://127.0.0.1:{port}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per endpoint")
    parser.add_argument("--projects", type=int, default=10_000)
    parser.add_argument("--reuse", metavar="DIR", help="a dataset folder an earlier run left")
    args = parser.parse_args()
    work = Path(args.reuse) if args.reuse else Path(tempfile.mkdtemp(prefix="spoold-bench-explorer-"))
    store = work / "storage"
    if not args.reuse:
        print(f"building the dataset in {work} ...")
        build_store(open_storage(str(store)), args.projects, 2)
        explorer_docs(str(store), args.projects)
    for leftover in ("s", "s50", "catalog-50k"):
        shutil.rmtree(work / leftover, ignore_errors=True)
    (work / "htpasswd").write_text("")
    (work / "s").mkdir()
    server = serve(work / "s", store)
    try:
        endpoints = (("/simple/<p>/", "/simple/project-%06d/"), ("/project/<p>/", "/project/project-%06d/"),
                     ("/pypi/<p>/json", "/pypi/project-%06d/json"))
        # Interleaved rounds, so a machine shared with other work slows every column alike;
        # before each, one pass over every project (the caches hold what readers asked for).
        runs: dict[str, list[float]] = {label: [] for label, _ in endpoints}
        notes: dict[str, str] = {}
        for _ in range(args.rounds):
            for label, pattern in endpoints:
                wrk(server.url, pattern, args.projects, 4, work, sequential=True)
                rate, notes[label] = wrk(server.url, pattern, args.projects, args.seconds, work)
                runs[label].append(rate)
        rows = {label: (statistics.median(rates), notes[label]) for label, rates in runs.items()}
        print(f"\nrequests/s (median of {args.rounds} interleaved rounds of {args.seconds} s), "
              f"{2 * args.projects} files in {args.projects} projects, wrk -t1 -c8 on core "
              f"{CLIENT_CPU}, spoold on the other core, public reads, default page_cache")
        for label, (rate, note) in rows.items():
            print(f"  {label:<16} {rate:>9.1f}   rounds: {', '.join(f'{r:.0f}' for r in runs[label])}{note}")
        simple = rows["/simple/<p>/"][0]
        print(f"  project page / simple page: {rows['/project/<p>/'][0] / simple:.2f} (goal >= 0.5); "
              f"JSON API / simple page: {rows['/pypi/<p>/json'][0] / simple:.2f}")
        at10k = [CatalogEntry(project_name(i), project_name(i), "a project for benchmarks", "0.1", "x")
                 for i in range(args.projects)]
        http10 = search_http(server.url, at10k)
    finally:
        server.stop()
    print("\nsearch, in memory (3,000 mixed queries):")
    for size in (10_000, 50_000):
        r = search_in_memory(size)
        print(f"  {size:>6} projects: p50 {r['p50_ms']:.3f} ms, p99 {r['p99_ms']:.3f} ms, mean {r['mean_ms']:.3f} ms; "
              f"index built in {r['build_s']:.2f} s")
    big = work / "catalog-50k"
    entries = synthetic(50_000)
    shards: dict[int, dict[str, CatalogEntry]] = {}
    for e in entries:
        shards.setdefault(shard_of(e.project), {})[e.project] = e
    write_catalog(open_storage(str(big)), shards)
    (work / "s50").mkdir()
    (work / "s50" / "htpasswd").write_text("")
    server = serve(work / "s50", big)
    try:
        urllib.request.urlopen(f"{server.url}/search/?q=warmup", timeout=60).read()
        http50 = search_http(server.url, entries)
    finally:
        server.stop()
    print("search through HTTP (GET /search/?q=, sequential, 400 queries):")
    print(f"  {args.projects:>6} projects: p50 {http10['p50_ms']:.2f} ms, p99 {http10['p99_ms']:.2f} ms")
    print(f"  {50_000:>6} projects: p50 {http50['p50_ms']:.2f} ms, p99 {http50['p99_ms']:.2f} ms")
    print(f"\n(dataset left in {work})")


if __name__ == "__main__":
    main()
