"""The storage interface every backend implements, and the errors they share.

Publishing needs only a handful of primitives, chosen so that the same publishing code is
safe on a local disk (no locks, several processes and hosts) and on S3 (conditional
writes):

* immutable files (:meth:`Storage.put_file`): created once, identical bytes are a no-op,
  different bytes are :class:`~spoold.errors.FileExists`;
* versioned documents (:meth:`Storage.read_doc` / :meth:`Storage.swap_doc`): a
  compare-and-swap on a document that carries a *generation* number; only one writer can
  produce generation ``n + 1`` from generation ``n``;
* derived pages (:meth:`Storage.put_page`): replaced only by a page of a newer generation,
  so a slow writer never puts back an older page.

Keys are ``/``-separated paths relative to the storage root (``simple/foo/index.html``).
"""

from __future__ import annotations

import contextlib
import random
import re
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from spoold.errors import FileExists, SpooldError, Transient

__all__ = [
    "Checkpoint",
    "Doc",
    "InvalidKey",
    "Page",
    "Staged",
    "Storage",
    "StorageUnavailable",
    "StoredObject",
    "check_key",
    "file_exists",
]

#: A test hook called at points where another writer could interleave
#: (``checkpoint(event, key)``); the default does nothing.
Checkpoint = Callable[[str, str], None]

_KEY_PART = re.compile(r"^[^/\x00]+$")


class StorageUnavailable(Transient):
    """The storage cannot be reached or refused the request for a reason outside the item.

    A :class:`~spoold.errors.Transient`, so the worker defers the item and retries it;
    nothing is rejected because storage is down, throttled or misconfigured.
    """

    code = "storage-unavailable"


class InvalidKey(SpooldError):
    """A key that would escape the storage root; a programming error upstream."""

    code = "invalid-key"


@dataclass(frozen=True, slots=True)
class Doc:
    """A versioned document as read: its bytes and the backend's token for a later swap.

    ``token`` is the S3 ETag, or the local generation; ``None`` when the backend has no
    token (a local document written by hand without generation history).
    """

    data: bytes
    token: str | None


@dataclass(frozen=True, slots=True)
class Staged:
    """An immutable file on its way (:meth:`Storage.stage_file`): already stored
    (``created`` says whether by this call), or bytes in ``tmp`` waiting to be linked."""

    key: str
    sha256: str
    created: bool = False
    tmp: Path | None = None


@dataclass(frozen=True, slots=True)
class Page:
    """A page for the HTTP layer: its bytes and a strong entity tag (quoted)."""

    data: bytes
    etag: str


@dataclass(frozen=True, slots=True)
class StoredObject:
    """One stored file as listed: key, size and last modification time (UTC)."""

    key: str
    size: int
    modified: datetime


def check_key(key: str) -> str:
    """Refuse keys that are absolute, empty, or climb out of the root (defence in depth:
    names are validated upstream, but storage is where a bad one would do harm)."""
    parts = key.split("/")
    if not key or any(p in ("", ".", "..") or not _KEY_PART.match(p) for p in parts):
        raise InvalidKey(f"refusing unsafe storage key {key!r}")
    return key


def file_exists(key: str, stored: str, uploaded: str) -> FileExists:
    """The rejection of different bytes under a published name (the Warehouse rule)."""
    name = key.rsplit("/", 1)[-1]
    return FileExists(
        f"File already exists: {name} is already published with different contents "
        f"(stored sha256 {stored}, uploaded {uploaded}); published files are immutable, "
        "upload a new version instead",
    )


def _no_checkpoint(event: str, key: str) -> None:
    return None


class Storage(ABC):
    """Where the index lives. Synchronous and thread-safe; call it from a thread pool."""

    #: The URL this storage was opened from (for messages and logs).
    url: str
    #: Backoff after a lost compare-and-swap: full jitter in [0, min(cap, base * 2**n)).
    backoff_base: float = 0.001
    backoff_cap: float = 0.05
    #: True when a swapped document *is* what readers see (S3); False when readers see a
    #: copy that a writer may have to repair (local), so publishing re-checks it.
    docs_are_pages: bool = False

    def __init__(self) -> None:
        self.checkpoint: Checkpoint = _no_checkpoint

    def batch(self) -> AbstractContextManager[None]:
        """A scope whose writes may be made durable together when it ends, instead of
        each on its own (local storage: :mod:`spoold.storage.barrier`). Nested scopes
        join the outer one. Backends whose writes are durable when they return (S3):
        nothing to do."""
        return contextlib.nullcontext()

    # -- immutable files -------------------------------------------------------------

    @abstractmethod
    def put_file(self, key: str, source: bytes | Path, sha256: str) -> bool:
        """Create ``key`` with these bytes unless it exists.

        Returns True if created, False if the same bytes were already there. Raises
        :class:`~spoold.errors.FileExists` if different bytes are stored under the key.
        """

    def stage_file(self, key: str, source: bytes | Path, sha256: str) -> Staged:
        """:meth:`put_file` in two steps, so that files stored together are made durable
        together: this one checks the key (:class:`~spoold.errors.FileExists` at once
        if other bytes are stored) and may only write the bytes aside;
        :meth:`settle_files` puts them in place. The default stores at once."""
        return Staged(key, sha256, created=self.put_file(key, source, sha256))

    def settle_files(self, staged: list[Staged], *, synced: bool = False) -> list[bool | FileExists]:
        """Put staged files in place, each durable before it has its name: per file,
        True if created, False if the same bytes were there, or the FileExists of other
        bytes stored meanwhile (returned, not raised: the others are stored).
        ``synced``: staged before an earlier settle of this batch, whose barrier made
        their bytes durable already."""
        return [s.created for s in staged]

    def discard_staged(self, staged: list[Staged]) -> None:
        """Forget staged files that will not be settled."""

    @abstractmethod
    def replace_file(self, key: str, data: bytes) -> None:
        """Atomically replace a small derived file (a ``.metadata`` repaired by reindex)."""

    @abstractmethod
    def read_bytes(self, key: str) -> bytes | None:
        """The whole object, or None if missing (for small objects)."""

    @abstractmethod
    def open_read(self, key: str) -> AbstractContextManager[BinaryIO]:
        """A binary stream of the object; raises FileNotFoundError if missing."""

    @abstractmethod
    def stat(self, key: str) -> StoredObject | None:
        """Size and modification time, or None if missing."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; a missing object is not an error."""

    @abstractmethod
    def list_files(self, prefix: str) -> Iterator[StoredObject]:
        """Objects directly under the folder ``prefix`` (ending in ``/``), no dotfiles."""

    @abstractmethod
    def list_dirs(self, prefix: str) -> Iterator[str]:
        """Names of the sub-folders of ``prefix`` (ending in ``/``)."""

    def walk(self, prefix: str = "") -> Iterator[StoredObject]:
        """Every object under the folder ``prefix`` (``""``: the whole tree) at any depth,
        hidden names included (temporary files, local storage's ``.spoold/`` history), in
        no particular order; for ``spoold check``. This default sees only what
        :meth:`list_files` and :meth:`list_dirs` show; the backends list everything."""
        folders = [prefix]
        while folders:
            folder = folders.pop()
            yield from self.list_files(folder)
            folders.extend(f"{folder}{name}/" for name in self.list_dirs(folder))

    # -- versioned documents and pages -----------------------------------------------

    @abstractmethod
    def read_doc(self, key: str) -> Doc | None:
        """The newest version of a document (a manifest), or None if there is none."""

    @abstractmethod
    def swap_doc(self, key: str, data: bytes, generation: int, expected: Doc | None) -> bool:
        """Write generation ``generation`` of ``key`` if ``expected`` is still the newest.

        ``expected`` is what :meth:`read_doc` returned (None: create). Returns False when
        another writer got there first: re-read, merge and try again. The caller passes
        ``generation`` = the expected document's generation + 1.
        """

    def read_doc_unless(self, key: str, token: str | None) -> tuple[bool, Doc | None]:
        """``(False, None)`` when the newest version of ``key`` still has ``token``, else
        ``(True, read_doc(key))``: a large document (the root index) read only when it
        changed. The default reads it and compares; backends answer more cheaply."""
        doc = self.read_doc(key)
        if token is not None and doc is not None and doc.token == token:
            return False, None
        return True, doc

    def swap(self, key: str, data: bytes, generation: int, expected: Doc | None) -> Doc | None:
        """:meth:`swap_doc`, answering the document now stored (with its token, when the
        backend knows it without another read) instead of True, or None when lost."""
        return Doc(data, None) if self.swap_doc(key, data, generation, expected) else None

    @abstractmethod
    def put_page(self, key: str, data: bytes, generation: int) -> bool:
        """Store a page rendered from manifest generation ``generation``, unless the
        stored page is of that generation or newer. Returns True if this call wrote it.
        Rendering is deterministic, so two writers of one generation write equal bytes."""

    @abstractmethod
    def generation_of(self, key: str) -> int | None:
        """The generation of the stored page or document, or None if unknown/missing."""

    # -- serving -----------------------------------------------------------------------

    @abstractmethod
    def read_page(self, key: str) -> Page | None:
        """A page with its ETag for the HTTP layer, or None if missing."""

    def local_path(self, key: str) -> Path | None:
        """A filesystem path the HTTP layer can stream, or None (not a local backend)."""
        return None

    def presigned_url(self, key: str, expires: int = 300) -> str | None:
        """A time-limited URL to redirect a download to, or None (not an S3 backend)."""
        return None

    @abstractmethod
    def ping(self) -> None:
        """Cheap reachability check for /health; raises :class:`StorageUnavailable`."""

    def sweep_temporary(self, max_age: float = 3600.0) -> int:
        """Remove temporary files older than ``max_age`` seconds that failed or killed
        writes left behind; returns how many. Backends without temporaries: 0."""
        return 0

    def probe(self, *, create: bool = False) -> None:
        """Check, before any work starts, that this storage can do its job.

        Raises :class:`~spoold.errors.ConfigError` for what the operator must fix (no
        such directory or bucket, not writable, no credentials, a store that ignores
        conditional writes) and :class:`StorageUnavailable` when it cannot be reached
        right now. ``create``: a missing local directory is created (first start of a
        daemon) instead of being an error. The default is :meth:`ping`.
        """
        self.ping()

    # -- helpers shared by the publishing code ----------------------------------------

    def backoff(self, attempt: int) -> None:
        """Sleep a jittered, exponentially growing time after a lost compare-and-swap."""
        ceiling = min(self.backoff_cap, self.backoff_base * (2 ** min(attempt, 20)))
        time.sleep(random.uniform(0, ceiling))

    def fetch(self, key: str, dest: Path) -> Path:
        """Copy an object to a local file (for inspecting a stored distribution)."""
        with self.open_read(key) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        return dest
