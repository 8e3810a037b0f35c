"""A watchdog observer whose only job is to wake the reactor.

Filesystem events are hints, never the truth: inotify drops events when its queue
overflows and never sees writes by other NFS clients, so the worker also scans on a timer.
The handler runs on watchdog's thread and does nothing but hand a folder name to the
reactor with ``callFromThread``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer


class _Handler(FileSystemEventHandler):
    def __init__(self, folder: str, call_from_thread: Callable[..., Any],
                 hint: Callable[[str, str], None]) -> None:
        self._folder = folder
        self._call = call_from_thread
        self._hint = hint

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("created", "moved", "closed", "modified"):
            # For a move, the entry that appeared is the destination.
            path = getattr(event, "dest_path", "") or event.src_path
            name = os.path.basename(os.fsdecode(path))
            self._call(self._hint, self._folder, name)


def _no_move_pairing_delay() -> None:
    """Stop watchdog holding every IN_MOVED_FROM for 0.5 s (to pair it with a MOVED_TO).

    Its queue is first-in first-out, so each claim (a rename *out of* ``new/``) held back
    every later event -- a new delivery included -- by up to half a second. spoold never
    needs moves paired: it only wants to know that something arrived.
    """
    try:
        from watchdog.observers.inotify_move_event_grouper import InotifyMoveEventGrouper
    except ImportError:  # not Linux, or a watchdog without the grouper
        return
    InotifyMoveEventGrouper.delay = 0.0


class FolderWatcher:
    """Watch some spool folders; ``hint(folder, entry)`` runs on the reactor thread."""

    def __init__(self, folders: dict[str, Path], call_from_thread: Callable[..., Any],
                 hint: Callable[[str, str], None]) -> None:
        self._folders = folders
        self._call = call_from_thread
        self._hint = hint
        self._observer: Any = None

    def start(self) -> None:
        _no_move_pairing_delay()
        observer = Observer()
        for name, path in self._folders.items():
            observer.schedule(_Handler(name, self._call, self._hint), str(path), recursive=False)
        observer.daemon = True
        observer.start()
        self._observer = observer

    def alive(self) -> bool:
        return self._observer is not None and self._observer.is_alive()

    def stop(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            if observer.is_alive():
                observer.join(5)
