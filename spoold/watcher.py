"""A watchdog observer whose only job is to wake the reactor.

Filesystem events are hints, never the truth: inotify drops events when its queue
overflows and never sees writes by other NFS clients, so the worker also scans on a timer.
The handler runs on watchdog's thread and does nothing but hand a folder name to the
reactor with ``callFromThread``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer


class _Handler(FileSystemEventHandler):
    def __init__(self, folder: str, call_from_thread: Callable[..., Any], hint: Callable[[str], None]) -> None:
        self._folder = folder
        self._call = call_from_thread
        self._hint = hint

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("created", "moved", "closed", "modified"):
            self._call(self._hint, self._folder)


class FolderWatcher:
    """Watch some spool folders; ``hint(folder_name)`` runs on the reactor thread."""

    def __init__(self, folders: dict[str, Path], call_from_thread: Callable[..., Any],
                 hint: Callable[[str], None]) -> None:
        self._folders = folders
        self._call = call_from_thread
        self._hint = hint
        self._observer: Any = None

    def start(self) -> None:
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
