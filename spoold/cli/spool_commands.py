"""``spoold drop`` and ``spoold status``: the commands that work on the spool directly."""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from spoold import config
from spoold.cli.exits import ExitStatus
from spoold.errors import SpooldError
from spoold.inspection.filenames import parse_filename
from spoold.spool import Spool
from spoold.spool.names import display

__all__ = ["cmd_drop", "cmd_retry", "cmd_status"]


def _spool_path(args: argparse.Namespace) -> str:
    return config.load(args.config, {"spool": args.spool}).spool


#: Files delivered at once: each delivery is durable on its own (fsync of the bytes, the
#: rename, fsync of new/), and fsyncs issued together share the filesystem's journal
#: commits, so a drop of many files goes several times faster than one after another.
DROP_THREADS = 8


def _drop_one(spool: Spool, name: str) -> tuple[str | None, str | None]:
    """(item, None) once delivered, or (None, the error for the user)."""
    path = Path(name)
    try:
        if not path.is_file():
            raise SpooldError("not a regular file")
        parse_filename(path.name)  # refuse what the worker would reject by name alone
        return spool.deliver_file(path), None
    except OSError as e:
        return None, f"spoold drop: {display(name)}: {e.strerror}"
    except SpooldError as e:
        return None, f"spoold drop: {display(name)}: {e}"


def cmd_drop(args: argparse.Namespace) -> int:
    """Deliver files into the spool: each appears in new/ whole or not at all."""
    spool = Spool.open(_spool_path(args), create_if_empty=True)
    status = ExitStatus.OK
    with ThreadPoolExecutor(min(DROP_THREADS, len(args.files))) as pool:
        for item, error in pool.map(lambda name: _drop_one(spool, name), args.files):
            if error is not None:
                print(error, file=sys.stderr)
                status = ExitStatus.FAILED
            elif args.verbose:
                print(item)
    return status


def cmd_status(args: argparse.Namespace) -> int:
    """Queue depths and every failed item with its reason."""
    status = Spool.open(_spool_path(args), writable=False).status()
    if args.json:
        json.dump(status.as_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return ExitStatus.OK
    for folder, count in status.counts.items():
        print(f"{folder:<9} {count}")
    if status.failures:
        print("\nfailed:")
        for failure in status.failures:
            print(f"  {failure.filename}: [{failure.code}] {failure.error}")
            print(f"    item {failure.item}")
        print("\nretry one with `spoold retry ITEM` (or all of a file with `spoold retry FILENAME`);"
              " fix the cause first, or it fails again")
    return ExitStatus.OK


def cmd_retry(args: argparse.Namespace) -> int:
    """Move failed items back into new/ (by item name or distribution filename)."""
    spool = Spool.open(_spool_path(args))
    failures = spool.status().failures
    if not args.all and not args.items:
        raise SpooldError("name the items to retry (ITEM or FILENAME from `spoold status`), or pass --all")
    status = ExitStatus.OK
    chosen: list[str] = []
    if args.all:
        chosen = [f.item for f in failures]
    for wanted in args.items:
        matches = [f.item for f in failures if wanted in (f.item, f.filename)]
        if not matches:
            print(f"spoold retry: {display(wanted)}: no such item in failed/", file=sys.stderr)
            status = ExitStatus.FAILED
        chosen += [m for m in matches if m not in chosen]
    for item in chosen:
        fresh = spool.retry(item)
        if fresh is None:
            print(f"spoold retry: {item}: it left failed/ meanwhile", file=sys.stderr)
            status = ExitStatus.FAILED
        else:
            print(f"retrying {item}")
    return status
