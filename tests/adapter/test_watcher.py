"""The watcher gives its own watches unpaired moves, without touching watchdog's defaults.

watchdog offers no public setting for move pairing, so spoold reaches into one place of
its inotify emitter (spoold.worker.watcher). These tests fail loudly when watchdog changes
what that relies on, instead of spoold silently losing half a second per claim.
"""

from __future__ import annotations

import queue
import sys
from pathlib import Path

import pytest

from spoold.worker.watcher import FolderWatcher, _observer

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="inotify is Linux-only")


def test_watchdog_still_has_what_the_watcher_relies_on() -> None:
    from watchdog.observers.inotify import InotifyEmitter, InotifyWatchGroup
    from watchdog.observers.inotify_move_event_grouper import InotifyMoveEventGrouper

    assert InotifyMoveEventGrouper.delay > 0, "watchdog no longer delays moves: drop the override"
    assert "_move_event_grouper" in InotifyWatchGroup.__dataclass_fields__
    assert callable(InotifyEmitter.on_thread_start)


def test_own_watches_hand_moves_over_at_once_and_the_default_is_untouched(tmp_path: Path) -> None:
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers.inotify_move_event_grouper import InotifyMoveEventGrouper

    default = InotifyMoveEventGrouper.delay
    observer = _observer()
    observer.schedule(FileSystemEventHandler(), str(tmp_path), recursive=False)
    observer.start()
    try:
        (emitter,) = observer.emitters
        grouper = emitter._inotify._move_event_grouper
        assert grouper.delay == 0.0
        assert InotifyMoveEventGrouper.delay == default
    finally:
        observer.stop()
        observer.join(5)


def test_hints_arrive_for_renames_into_and_writes_in_the_folder(tmp_path: Path) -> None:
    got: queue.Queue[tuple[str, str]] = queue.Queue()
    watcher = FolderWatcher({"new": tmp_path}, lambda f, *a: f(*a), lambda folder, name: got.put((folder, name)))
    watcher.start()
    try:
        assert watcher.alive()
        (tmp_path.parent / "x-1.0.tar.gz").write_bytes(b"x")
        (tmp_path.parent / "x-1.0.tar.gz").rename(tmp_path / "x-1.0.tar.gz")
        assert got.get(timeout=10) == ("new", "x-1.0.tar.gz")
    finally:
        watcher.stop()
    assert not watcher.alive()
