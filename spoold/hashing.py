"""Hashing files in one streaming pass: sha256 and blake2b-256, md5 only on request.

The one home of file hashing in spoold (inspection, the ``incoming/`` sidecar check,
storage's "are the stored bytes ours?" check, reindex and ``spoold check``). sha256 and
blake2b-256 are what the index publishes (hash fragments, PEP 691); md5 exists for legacy
upload clients alone. Hashing runs in large chunks so the C hash functions (which release
the GIL) do the work, which is what lets inspection hash a big file on a second thread
while the archive is being read.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from typing import BinaryIO

from spoold.safeopen import open_regular

__all__ = [
    "CHUNK_SIZE",
    "BackgroundHash",
    "Digests",
    "Hasher",
    "hash_file",
    "hash_stream",
]

#: Large enough that per-call overhead vanishes, small enough to stay in cache.
CHUNK_SIZE = 1 << 20


@dataclass(frozen=True, slots=True)
class Digests:
    """Size and lowercase hex digests of one file."""

    size: int
    sha256: str
    #: None only when hashing was asked for sha256 alone (``blake2=False``).
    blake2_256: str | None
    #: Only computed when asked for (an upload declared ``md5_digest``).
    md5: str | None = None


class Hasher:
    """Incremental hashing, for writers that see the bytes go by (an upload being spooled)."""

    __slots__ = ("_sha256", "_blake2", "_md5", "_size")

    def __init__(self, *, md5: bool = False, blake2: bool = True) -> None:
        self._sha256 = hashlib.sha256()
        self._blake2 = hashlib.blake2b(digest_size=32) if blake2 else None
        self._md5 = hashlib.md5(usedforsecurity=False) if md5 else None
        self._size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._sha256.update(data)
        if self._blake2 is not None:
            self._blake2.update(data)
        if self._md5 is not None:
            self._md5.update(data)
        self._size += len(data)

    def digests(self) -> Digests:
        return Digests(
            size=self._size,
            sha256=self._sha256.hexdigest(),
            blake2_256=self._blake2.hexdigest() if self._blake2 is not None else None,
            md5=self._md5.hexdigest() if self._md5 is not None else None,
        )


def hash_stream(
    stream: BinaryIO, *, md5: bool = False, blake2: bool = True, chunk_size: int = CHUNK_SIZE
) -> Digests:
    """Hash everything left in *stream*, reading it exactly once."""
    hasher = Hasher(md5=md5, blake2=blake2)
    buffer = bytearray(chunk_size)
    view = memoryview(buffer)
    readinto = getattr(stream, "readinto", None)
    while True:
        if readinto is not None:
            n = readinto(buffer)
            if not n:
                break
            hasher.update(view[:n])
        else:
            chunk = stream.read(chunk_size)
            if not chunk:
                break
            hasher.update(chunk)
    return hasher.digests()


def hash_file(path: str | os.PathLike[str], *, md5: bool = False, blake2: bool = True) -> Digests:
    """Hash the file at *path* in one pass (unbuffered: the chunks are already large).

    Only a regular file is hashed: a link or a FIFO put in its place raises
    :class:`~spoold.safeopen.NotRegularFile` instead of being followed or blocking."""
    with open_regular(path, buffering=0) as stream:
        # A small file needs no megabyte buffer (allocating it dominated tiny wheels).
        size = os.fstat(stream.fileno()).st_size
        chunk_size = min(CHUNK_SIZE, max(size + 1, 1 << 16))
        return hash_stream(stream, md5=md5, blake2=blake2, chunk_size=chunk_size)  # type: ignore[arg-type]


class BackgroundHash:
    """Hash a file on a second thread while the caller reads the archive.

    hashlib releases the GIL on large updates, so on a machine with two cores the file
    hashes cost no wall time next to decompressing and checking the members. ``result()``
    re-raises whatever the thread raised (an OSError is the environment's fault, not the
    item's, and is left for the caller to classify).
    """

    def __init__(self, path: str | os.PathLike[str], *, md5: bool = False) -> None:
        self._path = path
        self._md5 = md5
        self._result: Digests | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="spoold-hash", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._result = hash_file(self._path, md5=self._md5)
        except BaseException as exc:  # handed over to result()
            self._error = exc

    def result(self) -> Digests:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result
