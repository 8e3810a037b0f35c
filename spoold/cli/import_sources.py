"""What ``spoold import`` finds in a source: the files to import and when each was uploaded.

Three kinds of source, told apart by what they hold:

* a **devpi export** (``devpi-export DIR``, or ``devpi-server --export``): a directory with
  ``dataindex.json`` naming, per index (``user/index``), each release file by its path in
  the export, its project, and its upload history. The upload time is the first
  ``upload`` in the file's ``log`` (``when``: ``[year, month, day, hour, minute,
  second]`` in UTC), else the ``last_modified`` of its ``entrymapping``;
* a **pypiserver package directory** -- flat, or one folder per project -- and any other
  **tree of wheels and sdists**: every file under it whose name is not hidden. pypiserver
  keeps no upload record, so the upload time is the file's modification time (which
  ``pypi-server`` leaves as the upload made it, and ``cp -p`` / ``rsync -t`` keep);
* a **single file**.

Names are not judged here beyond "hidden or not": a file whose name is no distribution's
is reported by the import as rejected, with the reason, like everything inspection
refuses. Never "now": an imported file keeps the time it was first published, because
``uv --exclude-newer`` and pip's ``--min-release-age`` trust upload-time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from spoold.errors import SpooldError

__all__ = ["Candidate", "SourceError", "candidates"]

DEVPI_INDEX = "dataindex.json"
#: Largest dataindex.json read (an export of a big devpi holds megabytes of it).
MAX_DEVPI_INDEX = 1 << 30


class SourceError(SpooldError):
    """A source that cannot be read: no such path, or a devpi export that is not one."""

    code = "bad-source"


@dataclass(frozen=True, slots=True)
class Candidate:
    """One file a source offers for import."""

    path: Path
    filename: str
    #: When it was first uploaded (UTC): the source's record, else the file's mtime.
    upload_time: datetime
    #: Where it came from, for the summary (``devpi alice/dev``, ``directory``).
    origin: str


def candidates(source: Path) -> Iterator[Candidate]:
    """Every file ``source`` offers, in a stable order (sorted by path)."""
    if not source.exists():
        raise SourceError(f"{source}: no such file or directory")
    if source.is_file():
        yield _from_file(source, "file")
    elif (source / DEVPI_INDEX).is_file():
        yield from _devpi(source)
    else:
        yield from _tree(source)


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def _from_file(path: Path, origin: str, when: datetime | None = None) -> Candidate:
    return Candidate(path, path.name, when or _mtime(path), origin)


def _tree(root: Path) -> Iterator[Candidate]:
    """A pypiserver directory (flat or per project) or any tree: hidden names skipped,
    symbolic links not followed (a link is no file of the source)."""
    found: list[Path] = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in names:
            path = Path(folder) / name
            if not name.startswith(".") and path.is_file() and not path.is_symlink():
                found.append(path)
    for path in sorted(found):
        yield _from_file(path, "directory")


def _devpi(root: Path) -> Iterator[Candidate]:
    try:
        with open(root / DEVPI_INDEX, "rb") as f:
            data = json.loads(f.read(MAX_DEVPI_INDEX))
        indexes = data["indexes"]
        if not isinstance(indexes, dict):
            raise TypeError("indexes is not an object")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SourceError(f"{root / DEVPI_INDEX} is not a devpi export's index ({exc})") from None
    for index_name in sorted(indexes):
        index = indexes[index_name]
        files = index.get("files", []) if isinstance(index, dict) else []
        for desc in sorted((d for d in files if isinstance(d, dict)), key=lambda d: str(d.get("relpath"))):
            if desc.get("type", "releasefile") != "releasefile" or not isinstance(desc.get("relpath"), str):
                continue  # doczips and tox results are not distributions
            path = (root / desc["relpath"]).resolve()
            if not path.is_relative_to(root.resolve()) or not path.is_file():
                continue  # a relpath that climbs out of the export, or a missing file
            yield _from_file(path, f"devpi {index_name}", _devpi_time(desc))


def _devpi_time(desc: dict[str, Any]) -> datetime | None:
    """The first upload in the file's log, else its ``last_modified``; None if neither."""
    for entry in desc.get("log") or []:
        if isinstance(entry, dict) and entry.get("what") == "upload":
            when = entry.get("when")
            try:
                if isinstance(when, list) and len(when) >= 6:
                    return datetime(*(int(x) for x in when[:6]), tzinfo=UTC)
            except (TypeError, ValueError):
                pass
    modified = (desc.get("entrymapping") or {}).get("last_modified")
    if isinstance(modified, str):
        try:
            moment = parsedate_to_datetime(modified)
            return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        except (TypeError, ValueError):
            pass
    return None
