"""Handlers for the maintenance commands: reindex, yank, unyank, remove.

Each takes plain arguments (as parsed by ``spoold.cli.main``) and returns an exit code. Errors
a user can fix are printed on one line, never as a traceback:

* 0 -- done (also when there was nothing to change: the commands are idempotent);
* 1 -- the named project, file or version does not exist, or the index is damaged;
* 2 -- bad storage URL or settings (:class:`~spoold.errors.ConfigError`);
* 3 -- the storage is unreachable (:class:`~spoold.errors.Transient`); try again.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from spoold.cli import exits
from spoold.cli.exits import ExitStatus
from spoold.index import ReindexProgress, extract_metadata, reindex, remove, unyank, yank
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
        result = yank(_open(storage_url), project, target, reason)
        if result.changed:
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
        result = unyank(_open(storage_url), project, target)
        if result.changed:
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
        remove(_open(storage_url), project, filename)
        print(f"removed {filename}", file=out)
        return ExitStatus.OK

    return _run("remove", err or sys.stderr, action)
