"""Source distributions: one pass over the archive, then the shape an sdist must have.

An sdist is a ``.tar.gz`` (PEP 625) or, from older tools, a ``.zip``; either way it holds
exactly one top directory, ``{name}-{version}/``, with the core metadata in
``{name}-{version}/PKG-INFO``. :func:`scan_sdist` reads every member once whatever the
format (so a corrupt member is found even when only PKG-INFO is wanted), and
:func:`inspect_sdist` checks the shape and returns PKG-INFO's bytes.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import BinaryIO

from spoold.errors import Rejected
from spoold.inspection.archive import Limits, SdistScan
from spoold.inspection.filenames import ParsedFilename
from spoold.inspection.tarreader import scan_tar_gz
from spoold.inspection.zipreader import ZipReader

__all__ = ["InvalidSdist", "SdistScan", "inspect_sdist", "scan_sdist"]


class InvalidSdist(Rejected):
    """The archive is sound but is not an sdist: no single top directory or no PKG-INFO."""

    code = "invalid-sdist"


def scan_sdist(
    stream: BinaryIO,
    extension: str,
    *,
    archive_size: int,
    limits: Limits,
    capture: Callable[[tuple[str, ...]], bool],
) -> SdistScan:
    """Check every member of a ``.tar.gz`` or ``.zip`` sdist, reading it once.

    Members for which ``capture(parts)`` is true are returned whole (at most
    ``limits.max_metadata_size`` bytes each). The whole archive is decompressed, so a
    truncated or corrupt file is caught even if the interesting members came first.
    Symlinks are allowed only if they resolve inside the archive.
    """
    if extension == ".zip":
        return _scan_zip_sdist(stream, archive_size, limits, capture)
    if extension == ".tar.gz":
        return scan_tar_gz(stream, archive_size, limits, capture)
    raise ValueError(f"not an sdist extension: {extension!r}")


def _scan_zip_sdist(
    stream: BinaryIO,
    archive_size: int,
    limits: Limits,
    capture: Callable[[tuple[str, ...]], bool],
) -> SdistScan:
    captured: dict[str, bytes] = {}
    with ZipReader(stream, archive_size=archive_size, limits=limits, links="contained") as zf:
        for member in zf.members:
            if member.is_dir or member.is_link:
                continue
            if capture(member.parts):
                captured["/".join(member.parts)] = zf.read(
                    member, limits.max_metadata_size, what="metadata file"
                )
            else:
                for _chunk in zf.chunks(member):
                    pass  # verifies the CRC
        return SdistScan(zf.members, captured)


def inspect_sdist(stream: io.BufferedIOBase, parsed: ParsedFilename, size: int, limits: Limits) -> bytes:
    scan = scan_sdist(
        stream,  # type: ignore[arg-type]
        parsed.extension,
        archive_size=size,
        limits=limits,
        capture=lambda parts: len(parts) == 2 and parts[1] == "PKG-INFO",
    )
    tops = sorted({m.parts[0] for m in scan.members})
    if not tops:
        raise InvalidSdist(f"{parsed.filename!r} is an empty archive.")
    if len(tops) > 1:
        raise InvalidSdist(
            f"The sdist has {len(tops)} top-level entries ({', '.join(tops[:5])}); an "
            "sdist holds exactly one directory, {name}-{version}/. Build it with "
            "`python -m build --sdist`."
        )
    top = tops[0]
    if not any(len(m.parts) > 1 or m.is_dir for m in scan.members):
        raise InvalidSdist(
            f"The sdist has no top-level directory, only the file {top!r}; build it with "
            "`python -m build --sdist`."
        )
    data = scan.captured.get(f"{top}/PKG-INFO")
    if data is None:
        raise InvalidSdist(
            f"The sdist has no {top}/PKG-INFO; every sdist must carry its core metadata "
            "there. Build it with `python -m build --sdist`."
        )
    return data
