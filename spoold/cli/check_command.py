"""``spoold check [--storage URL] [--repair] [--json]``: the storage fsck.

Prints one line per finding (the key and what to do) and a summary on stdout, or with
``--json`` one object (schema: :func:`spoold.index.check_report.report_json`). A progress
line (``checking [n/N] project``, rewritten with ``\\r``) goes to stderr when, and only
when, stderr is a terminal. Exit status (:mod:`spoold.cli.exits`): 0 clean (after
``--repair``: everything found was repaired), 1 damage left, 75 storage unreachable,
78 bad storage URL or settings.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import TextIO

from spoold.cli import exits
from spoold.cli.exits import ExitStatus
from spoold.errors import ConfigError
from spoold.index.check import check
from spoold.index.check_report import CheckProgress, report_json, report_lines
from spoold.storage import Storage, open_storage
from spoold.storage.local import LocalStorage

__all__ = ["check_command"]

_WIDTH = 79


def _open(storage_url: str | Storage) -> Storage:
    storage = storage_url if isinstance(storage_url, Storage) else open_storage(storage_url)
    if isinstance(storage, LocalStorage):
        # ping() would create the directory: a mistyped path must not check as "ok".
        if not storage.root.is_dir():
            raise ConfigError(
                f"no storage directory at {storage.root} (check --storage or the storage setting)"
            )
    else:
        storage.ping()
    return storage


def check_command(
    storage_url: str | Storage,
    *,
    repair: bool = False,
    as_json: bool = False,
    now: datetime | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Check (and with ``repair``, repair) the index; returns the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    live = err.isatty()
    shown = False

    def show(step: CheckProgress) -> None:
        nonlocal shown
        if live:
            line = f"\r{step.phase} [{step.done}/{step.total}] {step.project}"
            err.write(line[: _WIDTH + 1].ljust(_WIDTH + 1))
            err.flush()
            shown = True

    def action() -> int:
        nonlocal shown
        storage = _open(storage_url)
        try:
            report = check(storage, repair=repair, now=now, progress=show)
        finally:
            if shown:
                err.write("\r" + " " * _WIDTH + "\r")
                err.flush()
                shown = False
        if as_json:
            json.dump(report_json(report), out, indent=2)
            out.write("\n")
        else:
            for line in report_lines(report):
                print(line, file=out)
        return ExitStatus.OK if report.ok else ExitStatus.FAILED

    return exits.run("check", action, err)
