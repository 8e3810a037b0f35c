"""Immutable files stored together, made durable together (a part of
:class:`~spoold.storage.local.LocalStorage`).

Inside a batch (:mod:`spoold.storage.barrier`), :meth:`StagedFiles.stage_file` writes a
file's bytes to a temporary name without fsync; :meth:`StagedFiles.settle_files` runs
one shared barrier, then links every staged file into place. A file therefore never has
its name before its bytes are durable -- a crash cannot leave a torn file under a
published name, which a later upload of the same bytes would take for other bytes --
while a group of files costs one ``syncfs`` instead of an fsync each.
"""

from __future__ import annotations

import os
from pathlib import Path

from spoold.errors import FileExists

from .barrier import Batching
from .base import Staged, Storage, StorageUnavailable

__all__ = ["StagedFiles"]


class StagedFiles:
    """Staging of immutable files for local storage (needs its paths and batching)."""

    _batching: Batching

    def _path(self, key: str) -> Path:
        raise NotImplementedError

    def _write_tmp(self, path: Path, source: bytes | Path, *, derived: bool = False) -> Path:
        raise NotImplementedError

    def _same_or_raise(self, final: Path, key: str, sha256: str) -> bool:
        raise NotImplementedError

    def _wrap(self, exc: OSError, what: str) -> StorageUnavailable:
        raise NotImplementedError

    def stage_file(self, key: str, source: bytes | Path, sha256: str) -> Staged:
        """In a batch: the bytes aside, unsynced; :meth:`settle_files` syncs, then links."""
        if not self._batching.deferring():
            return Storage.stage_file(self, key, source, sha256)  # type: ignore[arg-type]
        final = self._path(key)
        try:
            if final.exists():
                return Staged(key, sha256, created=self._same_or_raise(final, key, sha256))
            return Staged(key, sha256, tmp=self._write_tmp(final, source, derived=True))
        except OSError as exc:
            raise self._wrap(exc, f"store {key}") from exc

    def settle_files(self, staged: list[Staged], *, synced: bool = False) -> list[bool | FileExists]:
        try:
            if not synced and any(s.tmp is not None for s in staged):
                self._batching.sync()  # every staged byte durable before any gets its name
            return [self._settle(s) for s in staged]
        except OSError as exc:
            raise self._wrap(exc, "store files") from exc
        finally:
            self.discard_staged(staged)

    def discard_staged(self, staged: list[Staged]) -> None:
        for s in staged:
            if s.tmp is not None:
                s.tmp.unlink(missing_ok=True)

    def _settle(self, staged: Staged) -> bool | FileExists:
        if staged.tmp is None:
            return staged.created
        final = self._path(staged.key)
        try:
            os.link(staged.tmp, final)
            return True
        except FileExistsError:
            try:
                return self._same_or_raise(final, staged.key, staged.sha256)
            except FileExists as exc:
                return exc
