"""Is the worker that holds a claim still alive? (one host: pid and start time)

A claim names its owner (host, pid, process start time). On the owner's host the reaper
asks the kernel; a pid that was reused by another process is told apart by its start time,
and a zombie counts as dead. Workers on other hosts are judged by lease age instead
(:func:`spoold.spool.housekeeping.reap`).
"""

from __future__ import annotations

import errno
import os

from spoold.spool.names import Owner

__all__ = ["alive", "process_start"]


def process_start(pid: int) -> int:
    """Start time of a process in clock ticks since boot (Linux); 0 if unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return 0
    fields = data[data.rfind(b")") + 2:].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return 0


def alive(owner: Owner) -> bool:
    """Whether a worker on this host still runs (zombies and reused pids count as dead)."""
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        # It exists but belongs to another user; under systemd's ProtectProc=invisible its
        # /proc entry is hidden too, so this is all we will learn: alive.
        if not os.path.exists(f"/proc/{owner.pid}"):
            return True
    except OSError as e:
        return e.errno != errno.ESRCH
    try:
        with open(f"/proc/{owner.pid}/stat", "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return False
    except OSError:
        return True
    fields = data[data.rfind(b")") + 2:].split()
    if fields and fields[0] in (b"Z", b"X"):
        return False
    if owner.start and len(fields) > 19 and fields[19].isdigit():
        return int(fields[19]) == owner.start
    return True
