"""``spoold drop`` and ``spoold status``: the commands that work on the spool directly."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from spoold import config
from spoold.cli.exits import ExitStatus
from spoold.errors import SpooldError
from spoold.inspection.filenames import parse_filename
from spoold.spool import Spool
from spoold.spool.names import display

__all__ = ["cmd_drop", "cmd_status"]


def _spool_path(args: argparse.Namespace) -> str:
    return config.load(args.config, {"spool": args.spool}).spool


def cmd_drop(args: argparse.Namespace) -> int:
    """Deliver files into the spool: each appears in new/ whole or not at all."""
    spool = Spool.open(_spool_path(args), create_if_empty=True)
    status = ExitStatus.OK
    for name in args.files:
        path = Path(name)
        try:
            if not path.is_file():
                raise SpooldError("not a regular file")
            parse_filename(path.name)  # refuse what the worker would reject by name alone
            item = spool.deliver_file(path)
        except OSError as e:
            print(f"spoold drop: {display(name)}: {e.strerror}", file=sys.stderr)
            status = ExitStatus.FAILED
            continue
        except SpooldError as e:
            print(f"spoold drop: {display(name)}: {e}", file=sys.stderr)
            status = ExitStatus.FAILED
            continue
        if args.verbose:
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
    return ExitStatus.OK
