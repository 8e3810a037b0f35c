"""The spool's folders and the names of the files inside its items: the layout contract.

``docs/architecture.md`` ("The spool") names these folders; scripts and the ``status --json``
schema depend on them, so they are spelled once, here.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["FOLDERS", "META", "PAYLOAD", "REASON_SUFFIX", "STATUS_FOLDERS", "listdir", "move"]

#: Every folder of a spool, in pipeline order.
FOLDERS = ("incoming", "tmp", "new", "cur", "deferred", "done", "failed")
#: The folders a one-line status (systemd STATUS=) shows: the ones an operator watches.
STATUS_FOLDERS = ("incoming", "new", "cur", "deferred", "failed")
#: In a directory item, the distribution's bytes and the delivery's metadata.
PAYLOAD = "data"
META = "meta.json"
#: Beside each item in ``failed/``: ``<uid>.reason.json``, why it was rejected.
REASON_SUFFIX = ".reason.json"


def listdir(folder: Path) -> list[str]:
    """The entries of a spool folder; a missing folder has none."""
    try:
        return os.listdir(folder)
    except FileNotFoundError:
        return []


def move(source: Path, target: Path) -> bool:
    """rename(2) between spool folders; False when the source is gone (another worker got
    there first)."""
    try:
        os.rename(source, target)
    except FileNotFoundError:
        return False
    return True
