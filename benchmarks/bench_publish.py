#!/usr/bin/env python
"""Publish latency against the size of the store and the size of the project.

The claim under test: publishing into a project costs what that project costs, never
what the whole index costs (nothing lists projects; the root index is touched only when
a project is new). So:

* publishing into a store of 1,000 projects vs one of 50,000 projects should take the
  same time (target: p50 ratio <= 1.3);
* publishing into a project of 10 files vs one of 2,000 files grows with the manifest
  (it is re-read, re-rendered and rewritten), which is expected and reported.

Stores are built quickly by writing manifests and pages directly (no history), exactly
as a store copied in by hand would look. Samples of the two stores alternate, so drift
of the machine affects both equally. ``--s3`` adds the same comparison on a moto server
(smaller sizes; moto's own speed dominates, so read it as a sanity check only).

Each publish runs as the worker runs it: inside a storage batch, whose end is the
durability barrier (:mod:`spoold.storage.barrier`); ``--unbatched`` measures a bare
:func:`publish`, every write fsynced on its own. The table of publishes into existing
projects also says what the explorer's documents cost (the file record, the release view,
the JSON API documents and the catalog line: :mod:`spoold.index.explorer_docs`).

``--concurrent N CLIENTS`` is the end-to-end check of the root index under load: N new
projects uploaded by CLIENTS threads at once (each delivers a wheel to the spool and waits
for its outcome, as an upload does) through two ``spoold worker`` processes, into the
larger store; then every project must be in both root pages (nothing lost).

    python benchmarks/bench_publish.py
    python benchmarks/bench_publish.py --projects 1000 50000 --samples 300 --s3
    python benchmarks/bench_publish.py --only-new
    python benchmarks/bench_publish.py --concurrent 200 8
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spoold.index.pages import render_project_html, render_project_json, render_root_html, render_root_json  # noqa: E402
from spoold.index.manifest import FileEntry, Manifest, RootIndex  # noqa: E402
from spoold.index.publish import publish  # noqa: E402

publishing = importlib.import_module("spoold.index.publish")  # the module (the package's
# "publish" is the function)
from spoold.storage.keys import ROOT_HTML, ROOT_JSON  # noqa: E402
from spoold.storage import Storage  # noqa: E402
from spoold.storage.local import LocalStorage  # noqa: E402
from spoold.testing.dists import make_distribution  # noqa: E402

NOW = datetime(2024, 1, 1, tzinfo=UTC)


def project_name(i: int) -> str:
    return f"project-{i:06d}"


def manifest_with(project: str, files: int) -> Manifest:
    manifest = Manifest.empty(project, project).with_listed().with_generation(1)
    entries = tuple(
        FileEntry(
            filename=f"{project.replace('-', '_')}-0.{n}-py3-none-any.whl",
            version=f"0.{n}",
            size=1000,
            sha256=f"{n:064x}",
            upload_time=NOW,
            metadata_sha256=f"{n + 1:064x}",
        )
        for n in range(files)
    )
    manifest = replace(manifest, files=entries)  # already in version order
    return manifest


def write_direct(storage: Storage, key: str, data: bytes) -> None:
    """Write a visible file without history (as a hand-made or copied tree would be)."""
    if isinstance(storage, LocalStorage):
        path = storage.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    else:
        storage.replace_file(key, data)


def build_store(storage: Storage, projects: int, files_per_project: int = 1) -> None:
    root = RootIndex()
    entries: dict[str, str] = {}
    # Render one project and substitute the name (all names have the same shape), so
    # building 50,000 projects takes seconds.
    template = manifest_with(project_name(0), files_per_project)
    json_page, html_page = render_project_json(template), render_project_html(template)
    placeholder = [project_name(0), project_name(0).replace("-", "_")]
    for i in range(projects):
        name = project_name(i)

        def fill(page: bytes, name: str = name) -> bytes:
            text = page.decode()
            for old, new in zip(placeholder, [name, name.replace("-", "_")], strict=True):
                text = text.replace(old, new)
            return text.encode()

        write_direct(storage, f"simple/{name}/index.v1.json", fill(json_page))
        write_direct(storage, f"simple/{name}/index.html", fill(html_page))
        entries[name] = name
    root = root.with_projects(entries).with_generation(1)
    write_direct(storage, ROOT_JSON, render_root_json(root))
    write_direct(storage, ROOT_HTML, render_root_html(root))


#: Whether publishes run inside a storage batch, as the worker runs them (--unbatched: no).
BATCHED = True
#: Milliseconds spent in the explorer's documents, per publish (see ExplorerTimer).
EXPLORER_MS: list[float] = []


class ExplorerTimer:
    """Times the explorer's share of each publish: the file record and the refresh of
    the release view, the JSON API documents and the catalog (wrapped where publish
    calls them, for this benchmark only)."""

    def __init__(self) -> None:
        self.spent = 0.0
        for name in ("record_file", "refresh"):
            setattr(publishing, name, self._timed(getattr(publishing, name)))

    def _timed(self, func: Callable[..., None]) -> Callable[..., None]:
        def timed(*args: object, **kwargs: object) -> None:
            start = time.perf_counter()
            try:
                func(*args, **kwargs)
            finally:
                self.spent += time.perf_counter() - start
        return timed


TIMER = ExplorerTimer()


def publish_as_worker(storage: Storage, dist: object, path: Path) -> bool:
    """One publish as the worker does it: in a batch, the barrier included."""
    scope = storage.batch() if BATCHED else contextlib.nullcontext()
    TIMER.spent = 0.0
    with scope:
        result = publish(storage, dist, path, now=NOW)  # type: ignore[arg-type]
    EXPLORER_MS.append(TIMER.spent * 1000)
    return result.published


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run_pair(
    label_a: str,
    target_a: Callable[[int], tuple[Storage, str]],
    label_b: str,
    target_b: Callable[[int], tuple[Storage, str]],
    samples: int,
    workdir: Path,
) -> list[tuple[str, list[float]]]:
    """Alternate publishes into A and B; return per-publish latencies in ms."""
    timings: dict[str, list[float]] = {label_a: [], label_b: []}
    explorer: dict[str, list[float]] = {label_a: [], label_b: []}
    prepared = []
    for n in range(samples):
        for label, target in ((label_a, target_a), (label_b, target_b)):
            storage, project = target(n)
            folder = workdir / f"{label}-{n}"
            folder.mkdir(parents=True)
            dist, path = make_distribution(project, f"9.{n}", folder)
            prepared.append((label, storage, dist, path))
    for label, storage, dist, path in prepared:
        start = time.perf_counter()
        published = publish_as_worker(storage, dist, path)
        timings[label].append((time.perf_counter() - start) * 1000)
        explorer[label].append(EXPLORER_MS[-1])
        assert published
    for label in (label_a, label_b):
        print(f"  ({label}: explorer documents p50 {percentile(explorer[label], 0.5):.2f} ms "
              f"of the publish's {percentile(timings[label], 0.5):.2f} ms)")
    return [(label_a, timings[label_a]), (label_b, timings[label_b])]


def table(title: str, rows: list[tuple[str, list[float]]], target: float | None) -> None:
    print(f"\n{title}")
    print(f"  {'case':<34} {'n':>5} {'p50 ms':>9} {'p99 ms':>9} {'mean ms':>9}")
    for label, values in rows:
        print(
            f"  {label:<34} {len(values):>5} {percentile(values, 0.5):>9.2f} "
            f"{percentile(values, 0.99):>9.2f} {statistics.fmean(values):>9.2f}"
        )
    (_, a), (_, b) = rows
    p50 = percentile(b, 0.5) / percentile(a, 0.5)
    p99 = percentile(b, 0.99) / percentile(a, 0.99)
    verdict = ""
    if target is not None:
        verdict = "  OK" if p50 <= target else f"  ABOVE TARGET {target}"
    print(f"  ratio (second / first): p50 {p50:.2f}, p99 {p99:.2f}{verdict}")


def compare_store_sizes(
    make: Callable[[str], Storage], sizes: tuple[int, int], samples: int, workdir: Path, kind: str,
    new_samples: int | None = None, only_new: bool = False,
) -> None:
    small, large = sizes
    started = time.perf_counter()
    stores = {}
    for size in sizes:
        storage = make(f"store-{size}")
        build_store(storage, size)
        stores[size] = storage
    print(f"\n[{kind}] built stores of {small} and {large} projects "
          f"in {time.perf_counter() - started:.1f} s")
    # Publish into existing projects spread over the whole store (new files, not new
    # projects): the common case, and the one that must not depend on the store's size.
    if not only_new:
        existing_projects(stores, small, large, samples, workdir, kind)
    # New projects touch the root index (one compare-and-swap of its JSON and a rewrite of
    # both root pages, whose size is the number of projects).
    rows = run_pair(
        f"new project, {small:,} projects",
        lambda n: (stores[small], f"fresh-{n:06d}"),
        f"new project, {large:,} projects",
        lambda n: (stores[large], f"fresh-{n:06d}"),
        new_samples or max(10, samples // 10),
        workdir / f"{kind}-new",
    )
    table(f"[{kind}] publish the first file of a new project (updates the root index)", rows, 1.3)


def existing_projects(stores: dict[int, Storage], small: int, large: int, samples: int,
                      workdir: Path, kind: str) -> None:
    rows = run_pair(
        f"{small:,} projects",
        lambda n: (stores[small], project_name((n * 7919) % small)),
        f"{large:,} projects",
        lambda n: (stores[large], project_name((n * 7919) % large)),
        samples,
        workdir / f"{kind}-stores",
    )
    table(f"[{kind}] publish a new file into an existing project, by store size", rows, 1.3)


def compare_project_sizes(
    make: Callable[[str], Storage], sizes: tuple[int, int], samples: int, workdir: Path, kind: str
) -> None:
    storage = make("projects")
    for size in sizes:
        manifest = manifest_with(f"files-{size}", size)
        write_direct(storage, f"simple/files-{size}/index.v1.json", render_project_json(manifest))
        write_direct(storage, f"simple/files-{size}/index.html", render_project_html(manifest))
    rows = run_pair(
        f"project with {sizes[0]:,} files",
        lambda n: (storage, f"files-{sizes[0]}"),
        f"project with {sizes[1]:,} files",
        lambda n: (storage, f"files-{sizes[1]}"),
        samples,
        workdir / f"{kind}-projects",
    )
    table(f"[{kind}] publish a new file, by project size", rows, None)


def concurrent_new(size: int, count: int, clients: int, workdir: Path) -> None:
    """``count`` new projects uploaded by ``clients`` at once through two worker processes
    into a store of ``size`` projects; each client checks, as soon as its upload is
    answered, that the project is in both root pages; at the end every project must be."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_ingest import start_workers, stop  # type: ignore[import-not-found]

    from spoold.index.pages import parse_root_json
    from spoold.spool.names import ItemName
    from spoold.spool.queue import Spool

    store = workdir / "concurrent-store"
    storage = LocalStorage(store)
    started = time.perf_counter()
    build_store(storage, size)
    print(f"\n[concurrent] built a store of {size:,} projects in {time.perf_counter() - started:.1f} s")
    spool = Spool.create(workdir / "concurrent-spool")
    names = [f"upload-{i:05d}" for i in range(count)]
    folder = workdir / "concurrent-dists"
    folder.mkdir()
    paths = [make_distribution(name, "1.0", folder)[1] for name in names]
    latencies: list[float] = []
    unlisted: list[str] = []

    def client(mine: list[tuple[str, Path]]) -> None:
        for name, path in mine:
            start = time.perf_counter()
            item = ItemName.parse(spool.deliver_file(path))
            while (outcome := spool.outcome_of(item)) is None:
                time.sleep(0.002)
            latencies.append((time.perf_counter() - start) * 1000)
            assert outcome.ok, outcome
            html, data = (store / ROOT_HTML).read_bytes(), (store / ROOT_JSON).read_bytes()
            if f'"{name}/"'.encode() not in html or f'"{name}"'.encode() not in data:
                unlisted.append(name)

    workers = start_workers(2, spool.root, store, workdir, 4)
    try:
        jobs = list(zip(names, paths, strict=True))
        threads = [threading.Thread(target=client, args=(jobs[c::clients],)) for c in range(clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    finally:
        stop(workers)
    for log in sorted(workdir.glob("worker-*.log")):
        deferred = [line for line in log.read_text().splitlines() if "deferred" in line]
        print(f"  {log.name}: {len(deferred)} deferred" + "".join(f"\n    {d[:200]}" for d in deferred[:3]))
    root = parse_root_json((store / ROOT_JSON).read_bytes())
    listed_json = {e.project for e in root.projects}
    listed_html = set(re.findall(r'href="([^"/]+)/"', (store / ROOT_HTML).read_text()))
    missing = [n for n in names if n not in listed_json or n not in listed_html]
    print(f"[concurrent] {count} new projects by {clients} clients through 2 workers into "
          f"{size:,} projects: {elapsed:.1f} s, {count / elapsed:.1f} /s; upload to answer "
          f"p50 {percentile(latencies, 0.5):.0f} ms, p99 {percentile(latencies, 0.99):.0f} ms")
    print(f"  root: {len(listed_json):,} projects in JSON, {len(listed_html):,} in HTML "
          f"(expected {size + count:,}); HTML = JSON: {listed_json == listed_html}; "
          f"not listed when answered: {len(unlisted)}; missing at the end: {len(missing)}")
    if missing or unlisted or listed_json != listed_html or len(listed_json) != size + count:
        raise SystemExit("LOST UPDATE: the root index does not list every project")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", nargs=2, type=int, default=[1000, 50000],
                        metavar=("SMALL", "LARGE"), help="store sizes (default 1000 50000)")
    parser.add_argument("--files", nargs=2, type=int, default=[10, 2000],
                        metavar=("SMALL", "LARGE"), help="project sizes (default 10 2000)")
    parser.add_argument("--samples", type=int, default=200, help="publishes per case")
    parser.add_argument("--new-samples", type=int, default=60, help="new projects per store size")
    parser.add_argument("--only-new", action="store_true", help="only the new-project comparison")
    parser.add_argument("--dir", type=Path, help="work directory (default: a temp dir)")
    parser.add_argument("--no-fsync", action="store_true", help="skip fsync (not safe)")
    parser.add_argument("--unbatched", action="store_true",
                        help="bare publish(), every write fsynced on its own (not as the worker)")
    parser.add_argument("--concurrent", nargs=2, type=int, metavar=("PROJECTS", "CLIENTS"),
                        help="only the end-to-end run: new projects uploaded by clients at once")
    parser.add_argument("--s3", action="store_true",
                        help="also run on a moto S3 server (sizes divided by 50 and 10)")
    args = parser.parse_args(argv)
    global BATCHED
    BATCHED = not args.unbatched

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        workdir = Path(tmp)

        def local(name: str) -> Storage:
            return LocalStorage(workdir / name, fsync=not args.no_fsync)

        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, work dir {workdir}, "
              f"{'each write fsynced' if args.unbatched else 'batched as the worker'}")
        if args.concurrent:
            concurrent_new(args.projects[1], *args.concurrent, workdir)
            return 0
        compare_store_sizes(local, tuple(args.projects), args.samples, workdir, "local",
                            args.new_samples, args.only_new)
        if not args.only_new:
            compare_project_sizes(local, tuple(args.files), args.samples, workdir, "local")

        if args.s3:
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
            from testlib.s3server import new_bucket  # type: ignore[import-not-found]

            from spoold.storage.s3 import S3Storage

            def s3(name: str) -> Storage:
                return S3Storage(new_bucket(), name)

            small, large = args.projects
            compare_store_sizes(
                s3, (max(10, small // 50), max(20, large // 50)),
                max(20, args.samples // 4), workdir, "moto S3",
            )
            compare_project_sizes(
                s3, (args.files[0], max(20, args.files[1] // 10)),
                max(20, args.samples // 4), workdir, "moto S3",
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
