"""Local-disk storage, safe for several processes and hosts (NFS) without any lock.

POSIX has no conditional replace, so compare-and-swap is built on the one exclusive
primitive it does have: ``link(2)`` fails with EEXIST if the target exists. Every
versioned document and page keeps a short history of generations beside the tree::

    .spoold/generations/<key>/<generation>     (e.g. .../simple/foo/index.v1.json/000...7)

* Swapping a document to generation ``n`` is ``link(tmp, history/n)``: exactly one writer
  can create ``n``; the loser re-reads and merges. Old generations are pruned once
  KEEP_GENERATIONS newer ones exist, so a winner also checks that it is not that far
  behind (a very slow writer could otherwise re-create a pruned slot).
* The file a web server sees (``simple/foo/index.v1.json``) is a hard link to the newest
  generation, put in place by ``rename(2)``. Every writer that touches a key converges it
  ("is the visible file the newest generation? if not, replace and check again") before
  returning, so the visible file always ends on the newest generation. A writer that is
  descheduled between its check and its rename can show an older page for that moment,
  and repairs it itself before it returns (tested with a checkpoint exactly there); a
  writer killed in that window leaves it for the next publish or ``spoold reindex``.

Immutable files are written to a temporary name in the same directory, fsynced, then
``link``\\ ed (not renamed, which would replace) into place, and the directory fsynced.
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from spoold.durable import fsync_dir, temp_beside, write_atomic, write_temp
from spoold.hashing import hash_file

from . import local_tree
from .barrier import Batching
from .base import Doc, Page, Storage, StorageUnavailable, StoredObject, check_key, file_exists
from .local_staging import StagedFiles

HISTORY = ".spoold/generations"
#: Generations kept per key; older ones are pruned once there are twice as many.
KEEP_GENERATIONS = 16


def _gen_name(generation: int) -> str:
    return f"{generation:020d}"


class LocalStorage(StagedFiles, Storage):
    """A directory tree that any static web server can serve as the index."""

    def __init__(self, root: Path | str, *, fsync: bool = True) -> None:
        super().__init__()
        self.root = Path(root).absolute()
        self.url = str(self.root)
        self._fsync = fsync
        self._batching = Batching(self.root, enabled=fsync)

    # -- paths and small helpers -------------------------------------------------------

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _history(self, key: str) -> Path:
        return self.root / HISTORY / check_key(key)

    def batch(self) -> AbstractContextManager[None]:
        """Derived writes without fsync, folder fsyncs skipped, one shared ``syncfs`` at
        the end (:mod:`spoold.storage.barrier`, which says what stays guaranteed)."""
        return self._batching.scope()

    def _sync_dir(self, path: Path) -> None:
        if self._fsync and not self._batching.deferring():
            fsync_dir(path)

    def _write_tmp(self, path: Path, source: bytes | Path, *, derived: bool = False) -> Path:
        """Write the bytes to a fresh temporary name beside ``path`` and fsync them (not
        ``derived`` ones inside a batch: the barrier does)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_temp(path, source, fsync=self._fsync and not (derived and self._batching.deferring()))

    def _wrap(self, exc: OSError, what: str) -> StorageUnavailable:
        return StorageUnavailable(
            f"local storage {self.url}: cannot {what}: {exc.strerror or exc} "
            "(check that the directory exists, is writable and the disk is not full)"
        )

    # -- immutable files -------------------------------------------------------------

    def put_file(self, key: str, source: bytes | Path, sha256: str) -> bool:
        final = self._path(key)
        try:
            if final.exists():
                return self._same_or_raise(final, key, sha256)
            tmp = self._write_tmp(final, source)
            try:
                os.link(tmp, final)
            except FileExistsError:
                return self._same_or_raise(final, key, sha256)
            finally:
                tmp.unlink(missing_ok=True)
            self._sync_dir(final.parent)
            return True
        except OSError as exc:
            raise self._wrap(exc, f"store {key}") from exc

    def _same_or_raise(self, final: Path, key: str, sha256: str) -> bool:
        stored = hash_file(final, blake2=False).sha256
        if stored == sha256:
            return False
        raise file_exists(str(final), stored, sha256)

    def replace_file(self, key: str, data: bytes) -> None:
        final = self._path(key)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(final, data, fsync=self._fsync and not self._batching.deferring())
        except OSError as exc:
            raise self._wrap(exc, f"replace {key}") from exc

    def read_bytes(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._wrap(exc, f"read {key}") from exc

    def open_read(self, key: str) -> AbstractContextManager[BinaryIO]:
        return open(self._path(key), "rb")

    def stat(self, key: str) -> StoredObject | None:
        try:
            st = self._path(key).stat()
        except FileNotFoundError:
            return None
        return StoredObject(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
            self._sync_dir(path.parent)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise self._wrap(exc, f"delete {key}") from exc

    def _scan(self, prefix: str) -> list[os.DirEntry[str]]:
        """The visible entries of a folder, sorted; none if it does not exist."""
        folder = self.root / prefix.rstrip("/") if prefix else self.root
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            return []
        return sorted((e for e in entries if not e.name.startswith(".")), key=lambda e: e.name)

    def list_files(self, prefix: str) -> Iterator[StoredObject]:
        for entry in self._scan(prefix):
            if entry.is_file(follow_symlinks=False):
                st = entry.stat(follow_symlinks=False)
                yield StoredObject(
                    prefix + entry.name, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC)
                )

    def list_dirs(self, prefix: str) -> Iterator[str]:
        for entry in self._scan(prefix):
            if entry.is_dir(follow_symlinks=False):
                yield entry.name

    def walk(self, prefix: str = "") -> Iterator[StoredObject]:
        stack = [prefix]
        while stack:
            folder = stack.pop()
            try:
                with os.scandir(self.root / folder if folder else self.root) as entries:
                    for entry in entries:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(f"{folder}{entry.name}/")
                        elif entry.is_file(follow_symlinks=False):
                            st = entry.stat(follow_symlinks=False)
                            yield StoredObject(
                                folder + entry.name, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC)
                            )
            except FileNotFoundError:
                continue  # removed while we walked (or no such folder)
            except OSError as exc:
                raise self._wrap(exc, f"list {folder or 'the storage directory'}") from exc

    # -- generations -------------------------------------------------------------------

    def _generations(self, key: str) -> list[int]:
        try:
            names = os.listdir(self._history(key))
        except FileNotFoundError:
            return []
        return sorted(int(n) for n in names if n.isdigit())

    def generation_of(self, key: str) -> int | None:
        gens = self._generations(key)
        return gens[-1] if gens else None

    def read_doc(self, key: str) -> Doc | None:
        history = self._history(key)
        try:
            for _ in range(100):
                gens = self._generations(key)
                if not gens:
                    break
                try:
                    data = (history / _gen_name(gens[-1])).read_bytes()
                except FileNotFoundError:
                    continue  # pruned under us: list again
                return Doc(data, str(gens[-1]))
            # No history (a tree written by hand or copied without .spoold/): the visible
            # file is the document; its embedded generation is the caller's base.
            data = self._path(key).read_bytes()
            return Doc(data, None)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._wrap(exc, f"read {key}") from exc

    def read_doc_unless(self, key: str, token: str | None) -> tuple[bool, Doc | None]:
        if token is not None:
            try:
                gens = self._generations(key)
            except OSError as exc:
                raise self._wrap(exc, f"read {key}") from exc
            if gens and str(gens[-1]) == token:
                return False, None  # one listing of a short folder; the bytes are not read
        return True, self.read_doc(key)

    def swap(self, key: str, data: bytes, generation: int, expected: Doc | None) -> Doc | None:
        return Doc(data, str(generation)) if self.swap_doc(key, data, generation, expected) else None

    def _link_generation(self, key: str, data: bytes, generation: int, *, page: bool = False) -> bool:
        """Create history/<generation> exclusively; False if it already exists.

        A ``page`` slot that exists with other bytes is replaced: rendering is
        deterministic, so it is a write a crash tore (see :mod:`spoold.storage.barrier`).
        """
        slot = self._history(key) / _gen_name(generation)
        if slot.exists():  # cheap early answer; the link below is the real arbiter
            if page:
                self._repair_slot(slot, data)
            return False
        tmp = self._write_tmp(slot, data, derived=page)
        try:
            os.link(tmp, slot)
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)
        self._sync_dir(slot.parent)
        return True

    def _repair_slot(self, slot: Path, data: bytes) -> None:
        try:
            if slot.read_bytes() == data:
                return
        except FileNotFoundError:
            return  # pruned meanwhile: a newer generation exists
        os.replace(self._write_tmp(slot, data, derived=True), slot)
        self._sync_dir(slot.parent)

    def swap_doc(self, key: str, data: bytes, generation: int, expected: Doc | None) -> bool:
        try:
            if not self._link_generation(key, data, generation):
                return False
            if self._generations(key)[-1] >= generation + KEEP_GENERATIONS:
                # Pruning removes a slot only once KEEP_GENERATIONS newer ones exist, so
                # this slot may have been pruned and re-created by us, a writer so slow
                # that its base is long gone: the swap is lost (the stray is pruned
                # later). A few newer generations, on the other hand, are writers that
                # already built on ours: we won. (Were KEEP_GENERATIONS writers to win
                # between our link and this check, we would retry, find our change in
                # place and report it unchanged -- never lose it.)
                return False
            self.checkpoint("doc-swapped", key)
            self._converge(key)
            self._prune(key)
            return True
        except OSError as exc:
            raise self._wrap(exc, f"update {key}") from exc

    def put_page(self, key: str, data: bytes, generation: int) -> bool:
        try:
            created = self._link_generation(key, data, generation, page=True)
            wrote = self._converge(key)
            if created:
                self._prune(key)
            return created and wrote
        except OSError as exc:
            raise self._wrap(exc, f"write {key}") from exc

    def _converge(self, key: str) -> bool:
        """Make the visible file the newest generation; True if this call replaced it."""
        visible = self._path(key)
        history = self._history(key)
        replaced = False
        for _ in range(1000):
            gens = self._generations(key)
            if not gens:
                return replaced
            newest = history / _gen_name(gens[-1])
            try:
                want = newest.stat()
            except FileNotFoundError:
                continue
            try:
                have = visible.stat()
                if (have.st_ino, have.st_dev) == (want.st_ino, want.st_dev):
                    return replaced
            except FileNotFoundError:
                pass
            tmp = temp_beside(visible)
            visible.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(newest, tmp)
            except FileNotFoundError:
                continue
            self.checkpoint("page-checked", key)
            try:
                os.replace(tmp, visible)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            self._sync_dir(visible.parent)
            replaced = True
        return replaced

    def _prune(self, key: str) -> None:
        gens = self._generations(key)
        if len(gens) <= 2 * KEEP_GENERATIONS:
            return
        history = self._history(key)
        for g in gens[:-KEEP_GENERATIONS]:
            try:
                (history / _gen_name(g)).unlink()
            except FileNotFoundError:
                pass

    # -- serving -----------------------------------------------------------------------

    def read_page(self, key: str) -> Page | None:
        """Every index read comes here: plain system calls, no path objects."""
        try:
            fd = os.open(f"{self.url}/{check_key(key)}", os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._wrap(exc, f"read {key}") from exc
        try:
            chunks = []
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
        except OSError as exc:
            raise self._wrap(exc, f"read {key}") from exc
        finally:
            os.close(fd)
        data = b"".join(chunks)
        return Page(data, '"' + hashlib.sha256(data).hexdigest()[:32] + '"')

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None

    def ping(self) -> None:
        try:
            if not self.root.is_dir():
                raise OSError(errno.ENOENT, "no such directory")
            if not os.access(self.root, os.W_OK | os.X_OK):
                raise OSError(errno.EACCES, "not writable")
        except OSError as exc:
            raise self._wrap(exc, "use the storage directory") from exc

    def sweep_temporary(self, max_age: float = 3600.0) -> int:
        """Remove ``.NAME.<hex>.tmp`` files older than ``max_age``: writes that died
        between creating one and linking it into place (disk full, SIGKILL)."""
        return local_tree.sweep_temporary(self.root, max_age)

    def probe(self, *, create: bool = False) -> None:
        local_tree.probe(self.root, create=create)
