"""``spoold import SOURCE...``: migrate a pypiserver directory, a tree of distributions or a
devpi export into the index, through the spool like any other file.

Nothing enters unchecked: every file is delivered into ``new/`` (a directory item whose
``meta.json`` carries the upload time the source recorded, see
:mod:`spoold.cli.import_sources`) and inspected and published by the same code as an
upload (:func:`spoold.worker.processing.process`) -- by the import's own job threads
(``--jobs``; 0 leaves it to the running daemon), by ``spoold serve`` and ``spoold worker``
processes sharing the spool, or both: the claim's rename decides who takes an item.

Re-running is safe, also after the import was killed: a file already published with the
same bytes is skipped, one published with other bytes is refused, and one still in the
queue from an earlier run (``new/``, ``cur/``, ``deferred/``, found by its filename) is
waited for, not delivered twice; claims the killed import held are returned to ``new/``
first. So every file ends published exactly once, and the summary says what became of
each: imported, skipped (already published, identical), rejected (with the reason).

On a terminal the progress is a bar on stderr; otherwise a plain line every few seconds.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from spoold import config
from spoold.cli.exits import ExitStatus
from spoold.cli.import_sources import Candidate, candidates
from spoold.errors import InvalidFilename, SpooldError
from spoold.hashing import hash_file
from spoold.index.manifest import Manifest, format_time
from spoold.index.pages import parse_project_json
from spoold.inspection.filenames import parse_filename
from spoold.spool import Spool
from spoold.spool.folders import REASON_SUFFIX, listdir
from spoold.spool.names import ItemName, display
from spoold.spool.queue import done_name
from spoold.spool.records import ItemMeta
from spoold.storage import Storage, open_storage
from spoold.storage.keys import project_json_key

__all__ = ["cmd_import", "import_files"]

#: Threads copying files into the spool: their fsyncs share the filesystem's journal
#: commits, so several at once deliver far more per second than one.
DELIVERY_THREADS = 8
#: Seconds between progress lines when stderr is not a terminal.
PLAIN_EVERY = 5.0


@dataclass(slots=True)
class _File:
    candidate: Candidate
    state: str = "pending"  # pending, waiting, imported, skipped, rejected
    reason: str = ""
    item: ItemName | None = None


class _Progress:
    def __init__(self, err: TextIO, total: int, clock=time.monotonic) -> None:  # type: ignore[no-untyped-def]
        self.err, self.total, self.clock = err, total, clock
        self.tty = err.isatty()
        self.last = 0.0

    def show(self, counts: dict[str, int], *, final: bool = False) -> None:
        now = self.clock()
        done = counts["imported"] + counts["skipped"] + counts["rejected"]
        text = (f"{done}/{self.total} done: {counts['imported']} imported, {counts['skipped']} skipped, "
                f"{counts['rejected']} rejected, {counts['waiting']} in the queue")
        if self.tty:
            width = 24
            filled = width * done // max(self.total, 1)
            self.err.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {text}"[:150].ljust(100))
            if final:
                self.err.write("\n")
            self.err.flush()
        elif final or now - self.last >= PLAIN_EVERY:
            self.last = now
            self.err.write(f"spoold import: {text}\n")
            self.err.flush()


class _Importer:
    def __init__(self, spool: Spool, storage: Storage, process_item, jobs: int) -> None:  # type: ignore[no-untyped-def]
        self.spool, self.storage, self.process_item, self.jobs = spool, storage, process_item, jobs
        self.files: list[_File] = []
        self._manifests: dict[str, Manifest | None] = {}
        self._lock = threading.Lock()

    def manifest(self, project: str) -> Manifest | None:
        if project not in self._manifests:
            data = self.storage.read_bytes(project_json_key(project))
            self._manifests[project] = parse_project_json(data) if data is not None else None
        return self._manifests[project]

    def queued(self) -> dict[str, ItemName]:
        """Items still on their way (an earlier run's, or anyone's), by filename."""
        found: dict[str, ItemName] = {}
        for folder in (self.spool.new, self.spool.cur, self.spool.deferred):
            for entry in listdir(folder):
                name = ItemName.parse(entry)
                if name.uid is not None:
                    found.setdefault(name.filename, name)
        return found

    def plan(self, sources: Iterable[Path]) -> None:
        """Decide, before anything is delivered, what each file of the sources needs."""
        seen: dict[str, _File] = {}
        queued = self.queued()
        for source in sources:
            for candidate in candidates(source):
                file = _File(candidate)
                self.files.append(file)
                first = seen.get(candidate.filename)
                if first is not None:
                    self._duplicate(file, first)
                    continue
                seen[candidate.filename] = file
                try:
                    project = parse_filename(candidate.filename).project
                except InvalidFilename as exc:
                    file.state, file.reason = "rejected", exc.message
                    continue
                if candidate.filename in queued:  # an earlier run's item: its outcome counts
                    file.state, file.item = "waiting", queued[candidate.filename]
                    continue
                entry = (manifest.file(candidate.filename)
                         if (manifest := self.manifest(project)) is not None else None)
                if entry is not None:
                    sha256 = hash_file(candidate.path, blake2=False).sha256
                    if sha256 == entry.sha256:
                        file.state, file.reason = "skipped", "already published, identical"
                    else:
                        file.state = "rejected"
                        file.reason = (f"already published with other bytes (sha256 {entry.sha256}, "
                                       f"this file {sha256}); published files are immutable")

    def _duplicate(self, file: _File, first: _File) -> None:
        same = (hash_file(file.candidate.path, blake2=False).sha256
                == hash_file(first.candidate.path, blake2=False).sha256)
        file.state = "skipped" if same else "rejected"
        file.reason = ("the same file is in the sources twice" if same else
                       f"another file named {file.candidate.filename} ({first.candidate.path}) "
                       "is imported; names are unique in an index")

    def deliver(self, file: _File) -> None:
        meta = ItemMeta(via="import", upload_time=format_time(file.candidate.upload_time))
        try:
            item = self.spool.deliver_file(file.candidate.path, file.candidate.filename, meta)
        except (OSError, SpooldError) as exc:
            with self._lock:
                file.state, file.reason = "rejected", f"cannot copy it into the spool: {exc}"
            return
        with self._lock:
            file.state, file.item = "waiting", ItemName.parse(item)

    def work(self, stop: threading.Event) -> None:
        """A job thread: claim this import's items from new/ and take them to their end."""
        while not stop.is_set():
            with self._lock:
                mine = [str(f.item) for f in self.files if f.state == "waiting" and f.item is not None]
            pending = set(listdir(self.spool.new))
            took = False
            for entry in mine:
                if entry in pending and not stop.is_set():
                    claim = self.spool.claim(entry)
                    if claim is not None:
                        took = True
                        self.process_item(self.spool, self.storage, claim)
            if not took:
                stop.wait(0.05)

    def resolve(self) -> None:
        """Record the outcomes that are in (two listings, whatever the number of items)."""
        done = set(listdir(self.spool.done))
        failed = {n for n in listdir(self.spool.failed) if n.endswith(REASON_SUFFIX)}
        with self._lock:
            waiting = [f for f in self.files if f.state == "waiting" and f.item is not None]
        for file in waiting:
            name = file.item
            assert name is not None
            if done_name(name) in done:
                file.state = "imported"
            elif done_name(name, unchanged=True) in done:
                file.state, file.reason = "skipped", "already published, identical"
            elif f"{name.uid}{REASON_SUFFIX}" in failed and (outcome := self.spool.outcome_of(name)):
                file.state, file.reason = "rejected", f"[{outcome.code}] {outcome.message}"

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(("imported", "skipped", "rejected", "waiting", "pending"), 0)
        for file in self.files:
            counts[file.state] += 1
        return counts


def import_files(sources: list[Path], spool: Spool, storage: Storage, *, process_item,  # type: ignore[no-untyped-def]
                 jobs: int = 2, wait: bool = True, err: TextIO | None = None,
                 out: TextIO | None = None) -> int:
    """The import itself (the command is :func:`cmd_import`); returns the exit status."""
    err, out = err or sys.stderr, out or sys.stdout
    spool.reap()  # claims a killed import (or worker) on this host left in cur/
    importer = _Importer(spool, storage, process_item, jobs)
    importer.plan(sources)
    progress = _Progress(err, len(importer.files))
    stop = threading.Event()
    helpers = [threading.Thread(target=importer.work, args=(stop,), daemon=True) for _ in range(jobs if wait else 0)]
    for helper in helpers:
        helper.start()
    try:
        with ThreadPoolExecutor(DELIVERY_THREADS) as pool:
            for _ in pool.map(importer.deliver, [f for f in importer.files if f.state == "pending"]):
                progress.show(importer.counts())
        while wait and importer.counts()["waiting"]:
            importer.resolve()
            progress.show(importer.counts())
            if not helpers and not any(True for _ in listdir(spool.cur)) and _only_deferred(importer):
                break
            time.sleep(0.1)
        importer.resolve()
    finally:
        stop.set()
        for helper in helpers:
            helper.join()
    counts = importer.counts()
    progress.show(counts, final=True)
    _summary(importer, counts, out, wait)
    return ExitStatus.FAILED if counts["rejected"] else ExitStatus.OK


def _only_deferred(importer: _Importer) -> bool:
    deferred = {ItemName.parse(n).uid for n in listdir(importer.spool.deferred)}
    return all(f.item is not None and f.item.uid in deferred for f in importer.files if f.state == "waiting")


def _summary(importer: _Importer, counts: dict[str, int], out: TextIO, wait: bool) -> None:
    print(f"imported {counts['imported']}, skipped {counts['skipped']} (already published, identical), "
          f"rejected {counts['rejected']}" + (f", {counts['waiting']} still in the queue" if counts["waiting"] else ""),
          file=out)
    for file in importer.files:
        if file.state == "rejected":
            print(f"  rejected {display(str(file.candidate.path))}: {file.reason}", file=out)
    if counts["waiting"]:
        print("  the daemon publishes what is still queued" + ("" if wait else " (--no-wait)")
              + "; `spoold status` shows it, and running the import again reports on it", file=out)


def cmd_import(args: argparse.Namespace) -> int:
    from functools import partial

    from spoold.worker.processing import archive_limits, process

    settings = config.load(args.config, {"spool": args.spool, "storage": args.storage})
    # A migration often comes before the first start: create the spool and storage, as
    # `spoold serve` would.
    spool = Spool.create(settings.spool)
    storage = open_storage(settings.storage)
    storage.probe(create=True)
    process_item = partial(process, limits=archive_limits(settings), admins=frozenset(settings.admins))
    return import_files([Path(s) for s in args.sources], spool, storage, process_item=process_item,
                        jobs=args.jobs, wait=not args.no_wait)


def register(sub: argparse._SubParsersAction, config_help: str) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("import", help="import pypiserver directories, trees of distributions, devpi exports",
                       description="import pypiserver directories, trees of distributions, devpi exports")
    p.set_defaults(func=cmd_import)
    p.add_argument("--config", metavar="FILE", help=config_help)
    p.add_argument("--spool", metavar="DIR", help="the spool directory")
    p.add_argument("--storage", metavar="URL", help="a path, file:///path or s3://bucket/prefix")
    p.add_argument("--jobs", type=int, default=2, metavar="N",
                   help="files this command inspects and publishes at once (0: leave it to the daemon)")
    p.add_argument("--no-wait", action="store_true",
                   help="deliver into the spool and return; the daemon publishes")
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="a pypiserver package directory, a tree of wheels and sdists, a devpi export, or files")
