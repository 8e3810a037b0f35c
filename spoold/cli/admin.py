"""Handlers for the maintenance commands: reindex, yank, unyank, remove.

Each takes plain arguments (as parsed by ``spoold.cli.main``) and returns an exit status
of :mod:`spoold.cli.exits` (0 done, also when there was nothing to change; 1 the named
project, file or version does not exist; 75 the storage is unreachable; 78 a setting to
fix). Errors a user can fix are printed on one line, never as a traceback. Every yank,
unyank and removal that changed something is an event of the audit trail, recorded as the
command line's (``cli (USER)``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from spoold.access.events import Event
from spoold.access.store import AccessStore
from spoold.cli import exits
from spoold.cli.access_commands import operator
from spoold.cli.exits import ExitStatus
from spoold.index import ReindexProgress, extract_metadata, reindex, remove, unyank, yank
from spoold.index.changes import ChangeResult
from spoold.index.reindex import MetadataExtractor
from spoold.storage import Storage, open_storage

__all__ = ["reindex_command", "remove_command", "unyank_command", "yank_command"]


def _run(command: str, err: TextIO, action: Callable[[], int]) -> int:
    return exits.run(command, action, err)


def _open(storage_url: str | Storage) -> Storage:
    """The storage, probed first: a typo, a missing bucket or missing credentials is a
    configuration error (78), an unreachable one a temporary failure (75) -- never "no
    published files", and never a new empty directory."""
    storage = storage_url if isinstance(storage_url, Storage) else open_storage(storage_url)
    storage.probe()
    return storage


def _record(storage: Storage, action: str, result: ChangeResult, detail: str | None = None) -> None:
    store = AccessStore(storage)
    for filename in result.filenames:
        store.record(Event(action, operator(), project=result.project, filename=filename, detail=detail))


def reindex_command(
    storage_url: str | Storage,
    projects: Sequence[str] = (),
    *,
    extract: MetadataExtractor = extract_metadata,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``spoold reindex [--storage URL] [PROJECT...]``: rebuild from the stored files."""
    out = out or sys.stdout
    err = err or sys.stderr
    live = err.isatty()

    def show(step: ReindexProgress) -> None:
        if live:
            line = f"\rreindexing [{step.done}/{step.total}] {step.project}"
            err.write(line[:79].ljust(79))
            err.flush()

    def action() -> int:
        storage = _open(storage_url)
        report = reindex(storage, list(projects) or None, extract=extract, progress=show)
        if live:
            err.write("\r" + " " * 79 + "\r")
        for problem in report.problems:
            print(f"spoold reindex: warning: {problem}", file=err)
        print(
            f"reindexed {report.projects} project(s), {report.files} file(s); "
            f"extracted metadata for {report.metadata_extracted}",
            file=out,
        )
        return ExitStatus.FAILED if projects and report.problems else ExitStatus.OK

    return _run("reindex", err, action)


def yank_command(
    storage_url: str | Storage,
    project: str,
    target: str,
    reason: str = "",
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``spoold yank [--storage URL] [--reason TEXT] PROJECT VERSION|FILENAME`` (PEP 592)."""
    out = out or sys.stdout

    def action() -> int:
        storage = _open(storage_url)
        result = yank(storage, project, target, reason)
        if result.changed:
            _record(storage, "yank", result, reason or None)
            print(f"yanked {', '.join(result.filenames)}", file=out)
        else:
            print(f"{target} was already yanked with that reason", file=out)
        return ExitStatus.OK

    return _run("yank", err or sys.stderr, action)


def unyank_command(
    storage_url: str | Storage,
    project: str,
    target: str,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``spoold unyank [--storage URL] PROJECT VERSION|FILENAME``."""
    out = out or sys.stdout

    def action() -> int:
        storage = _open(storage_url)
        result = unyank(storage, project, target)
        if result.changed:
            _record(storage, "unyank", result)
            print(f"unyanked {', '.join(result.filenames)}", file=out)
        else:
            print(f"{target} was not yanked", file=out)
        return ExitStatus.OK

    return _run("unyank", err or sys.stderr, action)


def remove_command(
    storage_url: str | Storage,
    project: str,
    filename: str,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``spoold remove [--storage URL] PROJECT FILENAME``: delete a file from the index."""
    out = out or sys.stdout

    def action() -> int:
        storage = _open(storage_url)
        result = remove(storage, project, filename)
        _record(storage, "remove", result)
        print(f"removed {filename}", file=out)
        return ExitStatus.OK

    return _run("remove", err or sys.stderr, action)
