"""Whole-tree chores of local storage: sweeping temporaries, probing the directory."""

from __future__ import annotations

import os
import time
from pathlib import Path

from spoold.durable import is_temporary, read_only
from spoold.errors import ConfigError

__all__ = ["probe", "sweep_temporary"]


def sweep_temporary(root: Path, max_age: float) -> int:
    """Walk the tree for ``.NAME.<hex>.tmp`` files older than ``max_age``: a write that
    died between creating one and linking it into place (disk full, SIGKILL)."""
    cutoff = time.time() - max_age
    removed = 0
    for folder, _dirs, names in os.walk(root):
        for name in names:
            if not is_temporary(name):
                continue
            path = os.path.join(folder, name)
            try:
                if os.lstat(path).st_mtime < cutoff:
                    os.unlink(path)
                    removed += 1
            except FileNotFoundError:
                continue
    return removed


def probe(root: Path, *, create: bool = False) -> None:
    if not root.exists() and not root.is_symlink():
        if not create:
            raise ConfigError(
                f"no storage at {root}: the directory does not exist (a typo?); pass "
                "--storage PATH of an existing index, or start `spoold serve` once to create it"
            )
        try:
            root.mkdir(parents=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the storage directory {root}: {exc.strerror}") from None
        return
    if not root.is_dir():
        raise ConfigError(f"the storage path {root} is not a directory; pass --storage DIR")
    if read_only(root):
        raise ConfigError(f"the storage directory {root} is on a read-only filesystem")
    if not os.access(root, os.W_OK | os.X_OK):
        raise ConfigError(
            f"the storage directory {root} is not writable by this user (uid {os.getuid()}); "
            "fix its owner or permissions"
        )
