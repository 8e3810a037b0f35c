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


def _observer() -> Any:
    """An observer that hands every move over at once (Linux), else watchdog's default.

    watchdog holds each IN_MOVED_FROM for half a second to pair it with an IN_MOVED_TO,
    in a first-in first-out queue, so every claim (a rename *out of* ``new/``) held back
    every later event -- a new delivery included -- by up to 0.5 s. spoold never needs
    moves paired: it only wants to know that something arrived. watchdog has no public
    setting for this, so :class:`_UnpairedEmitter` gives *its own* watches a grouper
    without the delay; the class-wide default stays as it is for anyone else in the
    process. ``tests/unit/test_watcher.py`` fails loudly if watchdog's internals move.
    """
    try:
        from watchdog.observers.api import BaseObserver
        from watchdog.observers.inotify import InotifyEmitter
        from watchdog.observers.inotify_move_event_grouper import InotifyMoveEventGrouper
    except ImportError:  # not Linux
        return Observer()

    class _ImmediateMoves(InotifyMoveEventGrouper):
        delay = 0.0

    class _UnpairedEmitter(InotifyEmitter):
        def on_thread_start(self) -> None:
            super().on_thread_start()
            group = getattr(self, "_inotify", None)
            if group is not None and hasattr(group, "_move_event_grouper"):
                group._move_event_grouper = _ImmediateMoves()

    # BaseObserver(emitter_class) is watchdog's documented way to pick an emitter; the
    # emitters share watchdog's process-wide inotify reader.
    return BaseObserver(_UnpairedEmitter)


class FolderWatcher:
    """Watch some spool folders; ``hint(folder, entry)`` runs on the reactor thread."""

    def __init__(self, folders: dict[str, Path], call_from_thread: Callable[..., Any],
                 hint: Callable[[str, str], None]) -> None:
        self._folders = folders
        self._call = call_from_thread
        self._hint = hint
        self._observer: Any = None

    def start(self) -> None:
        observer = _observer()
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
