"""The Warehouse JSON API documents (``/pypi/<project>/json``, ``/pypi/<project>/<v>/json``).

Pure functions from a manifest and the release views (:mod:`spoold.explorer.release`) to
bytes, with Warehouse's fields (``warehouse/legacy/api/json.py``) under Warehouse's names
and types, so renovate, dependabot, pip-audit and friends read a private index as they
read PyPI: ``info`` (the release's core metadata, its ``description``, ``yanked``,
``yanked_reason``, ``project_urls``, ``requires_python``...), ``urls`` (the release's
files), ``releases`` (the project document only: every version, newest first),
``last_serial`` (the manifest generation, also sent as ``X-PyPI-Last-Serial``),
``vulnerabilities`` (always empty: spoold knows of none) and ``ownership``.

Where spoold differs, and why:

* yanks are per file (PEP 592), so each file says its own ``yanked`` and reason, and a
  release is yanked when all its files are;
* ``md5_digest`` is null and ``digests`` has sha256 and blake2b_256 only: spoold never
  computes md5 (uploads are verified against sha256);
* the URLs are relative to the document (``../../packages/...`` from ``pypi/<p>/json``)
  so a static server can serve the stored tree from any prefix; spoold itself makes them
  absolute for the host a request names (:func:`absolutize`), as most tools expect;
* ``last_serial`` comes first in the document, so a server reads it without parsing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC
from typing import Any
from urllib.parse import quote

from spoold.access.roles import Roles
from spoold.explorer.release import INFO_FIELDS, ReleaseView, version_states
from spoold.index.manifest import FileEntry, Manifest

__all__ = [
    "absolutize",
    "last_serial_of",
    "python_version_of",
    "render_project_doc",
    "render_release_doc",
]

_SERIAL = re.compile(rb'^\{"last_serial":(\d+),')


def python_version_of(filename: str) -> str:
    """Warehouse's ``python_version``: ``source`` for an sdist, the wheel's python tag."""
    if not filename.endswith(".whl"):
        return "source"
    parts = filename[:-4].split("-")
    return parts[-3] if len(parts) >= 5 else "any"


def _upload_times(entry: FileEntry) -> tuple[str, str]:
    moment = entry.upload_time.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%S"), moment.isoformat() + "Z"


def _file(project: str, entry: FileEntry, blake2: Mapping[str, str | None], up: str,
          requires_python: str | None) -> dict[str, Any]:
    upload_time, iso = _upload_times(entry)
    digests: dict[str, str] = {"sha256": entry.sha256}
    if blake2.get(entry.filename):
        digests["blake2b_256"] = str(blake2[entry.filename])
    return {
        "comment_text": "",
        "core-metadata": {"sha256": entry.metadata_sha256} if entry.metadata_sha256 else False,
        "digests": digests,
        "downloads": -1,
        "filename": entry.filename,
        "has_sig": False,
        "md5_digest": None,
        "packagetype": "bdist_wheel" if entry.filename.endswith(".whl") else "sdist",
        "python_version": python_version_of(entry.filename),
        "requires_python": entry.requires_python or requires_python or None,
        "size": entry.size,
        "upload_time": upload_time,
        "upload_time_iso_8601": iso,
        "url": f"{up}packages/{quote(project, safe='')}/{quote(entry.filename, safe='')}",
        "yanked": entry.yanked is not None,
        "yanked_reason": entry.yanked or None,
    }


def _by_version(manifest: Manifest) -> dict[str, list[FileEntry]]:
    """Files grouped by version, newest version first, files by name."""
    states = version_states((e.version, e.yanked is not None) for e in manifest.files)
    groups: dict[str, list[FileEntry]] = {v: [] for v in states}
    for entry in sorted(manifest.files, key=lambda e: e.filename):
        groups[entry.version].append(entry)
    return groups


def _ownership(roles: Roles | None) -> dict[str, Any]:
    listing = ([{"role": "Owner", "user": u} for u in sorted(roles.owners)]
               + [{"role": "Maintainer", "user": u} for u in sorted(roles.maintainers)]
               if roles is not None else [])
    return {"roles": listing, "organization": None}


def _info(manifest: Manifest, version: str, view: ReleaseView | None,
          files: list[FileEntry], up: str) -> dict[str, Any]:
    source = view.info if view is not None else {}
    info: dict[str, Any] = {key: source.get(key) for key in INFO_FIELDS}
    project = quote(manifest.project, safe="")
    page = f"{up}project/{project}/"
    yanked = bool(files) and all(e.yanked is not None for e in files)
    reasons = [e.yanked for e in files if e.yanked]
    info.update(
        name=manifest.name,
        version=version,
        classifiers=list(source.get("classifiers") or []),
        requires_python=source.get("requires_python")
        or next((e.requires_python for e in files if e.requires_python), None),
        downloads={"last_day": -1, "last_week": -1, "last_month": -1},
        package_url=page,
        project_url=page,
        release_url=f"{page}{quote(version, safe='')}/",
        docs_url=None,
        bugtrack_url=None,
        yanked=yanked,
        yanked_reason=(reasons[0] if yanked and reasons else None),
    )
    return info


def _dump(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, ensure_ascii=True, separators=(",", ":")) + "\n").encode()


def _document(manifest: Manifest, version: str, view: ReleaseView | None,
              blake2: Mapping[str, str | None], roles: Roles | None, *, project_doc: bool) -> bytes:
    up = "../../" if project_doc else "../../../"
    groups = _by_version(manifest)
    files = groups.get(version, [])
    requires = {v: next((e.requires_python for e in fs if e.requires_python), None)
                for v, fs in groups.items()}
    if view is not None and view.info.get("requires_python"):
        requires[version] = view.info["requires_python"]
    doc: dict[str, Any] = {
        "last_serial": manifest.generation,
        "info": _info(manifest, version, view, files, up),
        "urls": [_file(manifest.project, e, blake2, up, requires.get(version)) for e in files],
        "vulnerabilities": [],
        "ownership": _ownership(roles),
    }
    if project_doc:
        doc["releases"] = {v: [_file(manifest.project, e, blake2, up, requires.get(v)) for e in fs]
                           for v, fs in groups.items()}
    return _dump(doc)


def render_project_doc(manifest: Manifest, version: str, view: ReleaseView | None,
                       blake2: Mapping[str, str | None], roles: Roles | None = None) -> bytes:
    """``pypi/<project>/json``: ``info`` of ``version`` (the version shown) and every release."""
    return _document(manifest, version, view, blake2, roles, project_doc=True)


def render_release_doc(manifest: Manifest, version: str, view: ReleaseView | None,
                       blake2: Mapping[str, str | None], roles: Roles | None = None) -> bytes:
    """``pypi/<project>/<version>/json``: one release, without ``releases``."""
    return _document(manifest, version, view, blake2, roles, project_doc=False)


def last_serial_of(data: bytes) -> int | None:
    match = _SERIAL.match(data[:40])
    return int(match[1]) if match else None


def absolutize(data: bytes, base: str, *, project_doc: bool) -> bytes:
    """The stored document with its URLs made absolute under ``base`` (``https://host``,
    no trailing slash). Only values of the URL keys are touched: a ``"url":"`` inside a
    string (a description) is escaped in JSON as ``\\"url\\":\\"`` and never matches."""
    up = b"../../" if project_doc else b"../../../"
    prefix = base.rstrip("/").encode("ascii") + b"/"
    for key in (b"url", b"package_url", b"project_url", b"release_url"):
        data = data.replace(b'"' + key + b'":"' + up, b'"' + key + b'":"' + prefix)
    return data
