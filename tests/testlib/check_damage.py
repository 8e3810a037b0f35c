"""Planting damage in a published tree, on any backend, for the ``spoold check`` tests.

Each helper does what a disk fault, a killed writer or a hand edit would: behind
spoold's back, never through the code under test.
"""

from __future__ import annotations

import itertools
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from spoold.index import publish
from spoold.inspection.distribution import Distribution
from spoold.storage import Storage
from spoold.storage.local import LocalStorage
from spoold.testing.dists import make_distribution

_dirs = itertools.count()


class Killed(Exception):
    """Raised by a checkpoint to stop a writer where a crash would."""


def published(
    storage: Storage, tmp_path: Path, name: str, version: str, **kwargs: object
) -> tuple[Distribution, Path]:
    """Build and publish one wheel (each in its own folder, so names never clash)."""
    dist, path = built(tmp_path, name, version, **kwargs)
    publish(storage, dist, path)
    return dist, path


def built(tmp_path: Path, name: str, version: str, **kwargs: object) -> tuple[Distribution, Path]:
    folder = tmp_path / f"dist-{next(_dirs)}"
    folder.mkdir()
    return make_distribution(name, version, folder, **kwargs)  # type: ignore[arg-type]


def overwrite(storage: Storage, key: str, data: bytes) -> None:
    """Change the bytes under ``key`` in place (on local disk the history's hard link to
    a page sees it too, as it would see a disk fault)."""
    if isinstance(storage, LocalStorage):
        (storage.root / key).write_bytes(data)
    else:
        storage.replace_file(key, data)


def flip_byte(storage: Storage, key: str, at: int = 40) -> None:
    data = bytearray(storage.read_bytes(key) or b"")
    data[at] ^= 0x01
    overwrite(storage, key, bytes(data))


def plant_temporary(storage: Storage, key: str, age: timedelta) -> datetime:
    """A temporary file that looks ``age`` old; returns the clock to check with."""
    if isinstance(storage, LocalStorage):
        path = storage.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half a file")
        moment = (datetime.now(UTC) - age).timestamp()
        os.utime(path, (moment, moment))
        return datetime.now(UTC)
    # Memory and S3 set the modification time themselves: move the clock instead.
    storage.put_file(key, b"half a file", "0" * 64)
    return datetime.now(UTC) + age


def crash_at(storage: Storage, event: str, key: str | None = None) -> None:
    """Make the next writer on this handle die at ``event`` (for ``key``)."""

    def die(seen: str, seen_key: str) -> None:
        if seen == event and key in (None, seen_key):
            storage.checkpoint = lambda e, k: None
            raise Killed(f"killed at {event} {seen_key}")

    storage.checkpoint = die
