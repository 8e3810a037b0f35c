"""From a file on disk to a :class:`~spoold.inspection.distribution.Distribution`, or a rejection.

This is steps 1-3 of "Processing an item": parse the filename, hash the file, open the
archive safely, check a wheel's RECORD against its members, and validate the core
metadata against the filename. It is pure, synchronous code (no reactor): the worker runs
it in a thread and turns :class:`~spoold.errors.Rejected` into ``failed/``.

Cost: each byte of the archive is read and decompressed once. For large files the
sha256/blake2b of the whole file are computed on a second thread while the members are
being read (hashlib and zlib release the GIL), so a multi-core worker pays for the file
hashes almost nothing on top of what RECORD checking costs anyway.

This module only orchestrates; each check lives with its subject: :mod:`.filenames`,
:mod:`.digests` (the hashing itself is :mod:`spoold.hashing`), the archive readers
(:mod:`.archive`, :mod:`.zipreader`, :mod:`.eocd`, :mod:`.ziplayout`, :mod:`.tarreader`,
:mod:`.gunzip`), :mod:`.wheel`, :mod:`.sdist`, :mod:`.metadata` (which states the
metadata policy) and :mod:`.pep658` (which metadata may be served).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping

from spoold.errors import Rejected, SpooldError, Transient
from spoold.hashing import BackgroundHash, Digests, hash_file
from spoold.inspection.archive import InvalidArchive, Limits, open_source
from spoold.inspection.digests import check_declared
from spoold.inspection.distribution import Distribution
from spoold.inspection.filenames import ParsedFilename, parse_filename
from spoold.inspection.metadata import (
    CoreMetadata,
    InvalidMetadata,
    MetadataMismatch,
    check_matches_filename,
    metadata_source,
    parse_core_metadata,
)
from spoold.inspection.sdist import InvalidSdist, inspect_sdist
from spoold.inspection.wheel import InvalidWheel, RecordMismatch, inspect_wheel

__all__ = [
    "BACKGROUND_HASH_MIN_SIZE",
    "inspect_file",
    # Defined in .metadata, .sdist and .wheel; still importable from here, where they
    # lived before the inspection stage was split.
    "CoreMetadata",
    "InvalidMetadata",
    "InvalidSdist",
    "InvalidWheel",
    "MetadataMismatch",
    "RecordMismatch",
    "parse_core_metadata",
]

log = logging.getLogger(__name__)

#: Files at least this large are hashed on a second thread; below it a thread costs
#: more than it saves.
BACKGROUND_HASH_MIN_SIZE = 8 << 20


def inspect_file(
    path: str | os.PathLike[str],
    filename: str,
    *,
    declared: Mapping[str, str] | None = None,
    limits: Limits = Limits(),
) -> Distribution:
    """Prove that the file at *path* is the distribution *filename* says it is.

    *declared* holds the upload's digest fields (``sha256_digest``, ``md5_digest``,
    ``blake2_256_digest``); all given must match. Raises a
    :class:`~spoold.errors.Rejected` subclass for anything wrong with the item; an
    ``OSError`` opening the file and :class:`~spoold.errors.Transient` for a failed read
    are the environment's fault and are left to the caller.
    """
    parsed = parse_filename(filename)
    md5 = bool(declared and (declared.get("md5_digest") or "").strip())
    size = os.stat(path).st_size
    background: BackgroundHash | None = None
    digests: Digests | None = None
    if size >= BACKGROUND_HASH_MIN_SIZE:
        background = BackgroundHash(path, md5=md5)
    else:
        digests = hash_file(path, md5=md5)
        check_declared(digests, declared)
    try:
        metadata_bytes = _inspect_archive(path, parsed, size, limits)
    except Rejected:
        if background is not None:
            # A transfer that corrupted the file explains any archive error better.
            check_declared(background.result(), declared)
        raise
    if background is not None:
        digests = background.result()
        check_declared(digests, declared)
    assert digests is not None and digests.blake2_256 is not None
    if digests.size != size:
        raise Transient(
            f"{os.fspath(path)!r} changed while it was being inspected; retry it once "
            "whatever writes it has finished."
        )
    metadata = parse_core_metadata(metadata_bytes, source=metadata_source(parsed))
    check_matches_filename(metadata, parsed)
    return Distribution(
        filename=parsed.filename,
        project=parsed.project,
        name=metadata.name,
        version=str(metadata.version),
        kind=parsed.kind,
        size=digests.size,
        sha256=digests.sha256,
        blake2_256=digests.blake2_256,
        metadata=metadata_bytes,
        metadata_sha256=hashlib.sha256(metadata_bytes).hexdigest(),
        requires_python=metadata.requires_python,
        summary=metadata.summary,
    )


def _inspect_archive(
    path: str | os.PathLike[str], parsed: ParsedFilename, size: int, limits: Limits
) -> bytes:
    """Check the archive and return the exact metadata bytes.

    The last ``except`` is a safety net: a hostile file must never crash a worker with
    an unexpected exception type, so anything the archive modules raise that was not
    foreseen becomes a rejection (and is logged with its traceback, to be foreseen next
    time).
    """
    if size == 0:
        raise InvalidArchive(
            f"{parsed.filename!r} is empty (0 bytes); the upload or copy was cut short. "
            "Send the file again."
        )
    with open_source(path) as stream:
        try:
            if parsed.kind == "wheel":
                return inspect_wheel(stream, parsed, size, limits)
            return inspect_sdist(stream, parsed, size, limits)
        except SpooldError:
            raise
        except Exception as exc:
            log.exception("unexpected error inspecting %r", parsed.filename)
            raise InvalidArchive(
                f"{parsed.filename!r} could not be read as a {parsed.kind} "
                f"({type(exc).__name__}: {str(exc)[:200]}). Rebuild it with a standard "
                "build tool."
            ) from None
