"""File digests: computed in one streaming pass, compared with what the uploader declared.

sha256 and blake2b-256 are what the index publishes (hash fragments, PEP 691); md5 is only
computed when an uploader declared one, because it exists for legacy clients alone.
Hashing is done in large chunks so the C hash functions (which release the GIL) do the
work, which is what lets :mod:`spoold.inspection.inspect` hash a big file in a background thread
while the archive is being read.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import BinaryIO

from spoold.errors import Rejected

__all__ = [
    "CHUNK_SIZE",
    "DECLARED_FIELDS",
    "DigestMismatch",
    "Digests",
    "Hasher",
    "check_declared",
    "hash_file",
    "hash_stream",
    "BackgroundHash",
]

#: Large enough that per-call overhead vanishes, small enough to stay in cache.
CHUNK_SIZE = 1 << 20

#: The upload form fields twine sends, and the attribute of :class:`Digests` each checks.
DECLARED_FIELDS: Mapping[str, str] = {
    "sha256_digest": "sha256",
    "blake2_256_digest": "blake2_256",
    "md5_digest": "md5",
}

_HEX_LENGTHS = {"sha256": 64, "blake2_256": 64, "md5": 32}


class DigestMismatch(Rejected):
    """The bytes received are not the bytes the uploader hashed (corrupted or replaced)."""

    code = "digest-mismatch"


@dataclass(frozen=True, slots=True)
class Digests:
    """Size and lowercase hex digests of one file."""

    size: int
    sha256: str
    blake2_256: str
    #: Only computed when asked for (an upload declared ``md5_digest``).
    md5: str | None = None


class Hasher:
    """Incremental hashing, for writers that see the bytes go by (an upload being spooled)."""

    __slots__ = ("_sha256", "_blake2", "_md5", "_size")

    def __init__(self, *, md5: bool = False) -> None:
        self._sha256 = hashlib.sha256()
        self._blake2 = hashlib.blake2b(digest_size=32)
        self._md5 = hashlib.md5(usedforsecurity=False) if md5 else None
        self._size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._sha256.update(data)
        self._blake2.update(data)
        if self._md5 is not None:
            self._md5.update(data)
        self._size += len(data)

    def digests(self) -> Digests:
        return Digests(
            size=self._size,
            sha256=self._sha256.hexdigest(),
            blake2_256=self._blake2.hexdigest(),
            md5=self._md5.hexdigest() if self._md5 is not None else None,
        )


def hash_stream(stream: BinaryIO, *, md5: bool = False, chunk_size: int = CHUNK_SIZE) -> Digests:
    """Hash everything left in *stream*, reading it exactly once."""
    hasher = Hasher(md5=md5)
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


def hash_file(path: str | os.PathLike[str], *, md5: bool = False) -> Digests:
    """Hash the file at *path* in one pass (unbuffered: the chunks are already large)."""
    with open(path, "rb", buffering=0) as stream:
        # A small file needs no megabyte buffer (allocating it dominated tiny wheels).
        size = os.fstat(stream.fileno()).st_size
        chunk_size = min(CHUNK_SIZE, max(size + 1, 1 << 16))
        return hash_stream(stream, md5=md5, chunk_size=chunk_size)  # type: ignore[arg-type]


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


def check_declared(actual: Digests, declared: Mapping[str, str] | None) -> None:
    """Raise :class:`DigestMismatch` unless every declared digest matches *actual*.

    *declared* holds upload form fields (``sha256_digest``, ``md5_digest``,
    ``blake2_256_digest``); other keys and empty values are ignored, as twine leaves some
    out. A declared md5 needs ``actual.md5``: compute it with ``md5=True``.
    """
    if not declared:
        return
    problems: list[str] = []
    for field, attribute in DECLARED_FIELDS.items():
        value = declared.get(field)
        if value is None:
            continue
        value = value.strip().lower()
        if not value:
            continue
        computed = getattr(actual, attribute)
        if computed is None:
            raise ValueError(f"{field} was declared but {attribute} was not computed")
        if len(value) != _HEX_LENGTHS[attribute] or not _is_hex(value):
            problems.append(
                f"{field} {value[:80]!r} is not a {_HEX_LENGTHS[attribute]}-digit hex digest"
            )
        elif value != computed:
            problems.append(f"{field} was {value} but the received file's is {computed}")
    if problems:
        raise DigestMismatch(
            "The file received does not match the digests sent with it ("
            + "; ".join(problems)
            + "). It was corrupted or changed in transit; upload it again."
        )


def _is_hex(value: str) -> bool:
    return all(c in "0123456789abcdef" for c in value)
