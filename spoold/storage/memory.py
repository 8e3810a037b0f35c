"""An in-memory :class:`~spoold.storage.base.Storage`: the whole contract, no disk, no S3.

For tests of code that publishes or serves (spoold's own and its users'), and for trying
things out. It behaves like the S3 backend (one flat key space, documents are the pages
readers see, compare-and-swap by entity tag) and is thread-safe, so the publishing code's
concurrency can be exercised with real threads. Two knobs make it useful as a fake:

* ``down``: a message; while set, every call raises
  :class:`~spoold.storage.base.StorageUnavailable` with it (an outage);
* ``presign``: a base URL; when set, :meth:`presigned_url` answers as S3 would, so the
  HTTP layer redirects downloads instead of streaming them.

``reads`` records every key read (pages and files), for tests that care what was read.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from .base import Doc, Page, Storage, StorageUnavailable, StoredObject, check_key, file_exists

__all__ = ["MemoryStorage"]


@dataclass(frozen=True, slots=True)
class _Object:
    data: bytes
    modified: datetime
    etag: str
    generation: int | None = None


class MemoryStorage(Storage):
    """Everything in a dict, behind one lock."""

    docs_are_pages = True
    backoff_base = 0.0005
    backoff_cap = 0.005

    def __init__(self, *, presign: str | None = None, url: str = "memory://") -> None:
        super().__init__()
        self.url = url
        self.presign = presign
        self.down: str | None = None
        self.reads: list[str] = []
        self._objects: dict[str, _Object] = {}
        self._lock = threading.Lock()
        self._etags = itertools.count(1)

    # -- helpers -------------------------------------------------------------------------

    def _check(self) -> None:
        if self.down is not None:
            raise StorageUnavailable(self.down)

    def _store(self, key: str, data: bytes, generation: int | None = None) -> _Object:
        obj = _Object(bytes(data), datetime.now(UTC), f'"m{next(self._etags)}"', generation)
        self._objects[key] = obj
        return obj

    def _get(self, key: str) -> _Object | None:
        self._check()
        check_key(key)
        with self._lock:
            self.reads.append(key)
            return self._objects.get(key)

    def another_client(self) -> MemoryStorage:
        """A second client of the same store, as another process would have one: same
        objects, its own ``checkpoint`` and ``down``."""
        other = MemoryStorage(presign=self.presign, url=self.url)
        other._objects = self._objects
        other._lock = self._lock
        other._etags = self._etags
        other.reads = self.reads
        return other

    def keys(self) -> list[str]:
        """Every stored key, sorted (for tests)."""
        with self._lock:
            return sorted(self._objects)

    # -- immutable files -------------------------------------------------------------

    def put_file(self, key: str, source: bytes | Path, sha256: str) -> bool:
        self._check()
        check_key(key)
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        with self._lock:
            existing = self._objects.get(key)
            if existing is None:
                self._store(key, data)
                return True
        stored = hashlib.sha256(existing.data).hexdigest()
        if stored == sha256:
            return False
        raise file_exists(key, stored, sha256)

    def replace_file(self, key: str, data: bytes) -> None:
        self._check()
        check_key(key)
        with self._lock:
            self._store(key, data)

    def read_bytes(self, key: str) -> bytes | None:
        obj = self._get(key)
        return obj.data if obj is not None else None

    @contextmanager
    def _open(self, key: str) -> Iterator[BinaryIO]:
        obj = self._get(key)
        if obj is None:
            raise FileNotFoundError(key)
        yield io.BytesIO(obj.data)

    def open_read(self, key: str) -> AbstractContextManager[BinaryIO]:
        return self._open(key)

    def stat(self, key: str) -> StoredObject | None:
        self._check()
        check_key(key)
        with self._lock:
            obj = self._objects.get(key)
        return StoredObject(key, len(obj.data), obj.modified) if obj is not None else None

    def delete(self, key: str) -> None:
        self._check()
        check_key(key)
        with self._lock:
            self._objects.pop(key, None)

    def _children(self, prefix: str) -> list[tuple[str, _Object]]:
        self._check()
        with self._lock:
            return sorted((k, o) for k, o in self._objects.items() if k.startswith(prefix))

    def list_files(self, prefix: str) -> Iterator[StoredObject]:
        for key, obj in self._children(prefix):
            rest = key[len(prefix):]
            if "/" not in rest and not rest.startswith("."):
                yield StoredObject(key, len(obj.data), obj.modified)

    def list_dirs(self, prefix: str) -> Iterator[str]:
        seen: set[str] = set()
        for key, _obj in self._children(prefix):
            rest = key[len(prefix):]
            if "/" in rest:
                folder = rest.split("/", 1)[0]
                if folder not in seen:
                    seen.add(folder)
                    yield folder

    def walk(self, prefix: str = "") -> Iterator[StoredObject]:
        for key, obj in self._children(prefix):
            yield StoredObject(key, len(obj.data), obj.modified)

    # -- versioned documents and pages -----------------------------------------------

    def read_doc(self, key: str) -> Doc | None:
        obj = self._get(key)
        return Doc(obj.data, obj.etag) if obj is not None else None

    def read_doc_unless(self, key: str, token: str | None) -> tuple[bool, Doc | None]:
        obj = self._get(key)
        if token is not None and obj is not None and obj.etag == token:
            return False, None
        return True, Doc(obj.data, obj.etag) if obj is not None else None

    def swap(self, key: str, data: bytes, generation: int, expected: Doc | None) -> Doc | None:
        self._check()
        check_key(key)
        with self._lock:
            current = self._objects.get(key)
            if (current.etag if current is not None else None) != (
                expected.token if expected is not None else None
            ):
                return None
            return Doc(data, self._store(key, data, generation).etag)

    def swap_doc(self, key: str, data: bytes, generation: int, expected: Doc | None) -> bool:
        return self.swap(key, data, generation, expected) is not None

    def put_page(self, key: str, data: bytes, generation: int) -> bool:
        self._check()
        check_key(key)
        self.checkpoint("page-checked", key)
        with self._lock:
            current = self._objects.get(key)
            if current is not None and (current.generation or 0) >= generation:
                return False
            self._store(key, data, generation)
            return True

    def generation_of(self, key: str) -> int | None:
        self._check()
        check_key(key)
        with self._lock:
            obj = self._objects.get(key)
        return obj.generation if obj is not None else None

    # -- serving -----------------------------------------------------------------------

    def read_page(self, key: str) -> Page | None:
        obj = self._get(key)
        return Page(obj.data, obj.etag) if obj is not None else None

    def presigned_url(self, key: str, expires: int = 300) -> str | None:
        self._check()
        if self.presign is None:
            return None
        return f"{self.presign}{quote(check_key(key))}?X-Amz-Expires={expires}&X-Amz-Signature=memory"

    def ping(self) -> None:
        self._check()
