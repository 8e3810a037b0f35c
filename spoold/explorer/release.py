"""One release as the explorer and the JSON API show it: its core metadata, read once.

A :class:`ReleaseView` is made at publish time from the core metadata of the release's
first file (the oldest upload of the version, as Warehouse keeps the metadata of a
release's first upload) and stored privately (``spoold.storage.keys.release_view_key``),
with the description already rendered and sanitized (:mod:`spoold.explorer.readme`):
serving a page never parses metadata or renders a README.

:attr:`ReleaseView.info` holds the fields of Warehouse's JSON ``info`` that come from
metadata, under Warehouse's names (``home_page``, ``project_urls``, ``requires_dist``...),
so the JSON API document (:mod:`spoold.index.jsonapi`) is these plus what the index knows.
The metadata is parsed leniently (``packaging.metadata.parse_email``): it was validated
at upload, and an old file's quirks must not hide a release.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from packaging.metadata import parse_email
from packaging.version import Version

from spoold.explorer.readme import render_description

__all__ = ["INFO_FIELDS", "ReleaseView", "is_prerelease", "release_view", "safe_url",
           "shown_version", "version_states"]

#: The metadata-derived keys of Warehouse's ``info``, in Warehouse's order.
INFO_FIELDS = (
    "name", "version", "summary", "description_content_type", "description", "keywords",
    "license", "license_expression", "license_files", "classifiers", "author",
    "author_email", "maintainer", "maintainer_email", "requires_python", "platform",
    "home_page", "download_url", "project_urls", "requires_dist", "provides_extra", "dynamic",
)

_TEXT = {
    "name": "name", "summary": "summary", "description_content_type": "description_content_type",
    "description": "description", "license": "license", "license_expression": "license_expression",
    "author": "author", "author_email": "author_email", "maintainer": "maintainer",
    "maintainer_email": "maintainer_email", "requires_python": "requires_python",
    "home_page": "home_page", "download_url": "download_url",
}
_LISTS = {"license_files": "license_files", "requires_dist": "requires_dist",
          "provides_extra": "provides_extra", "dynamic": "dynamic"}


def safe_url(url: object) -> str | None:
    """The URL if a page may make it a link (http or https), else None: shown as text."""
    if not isinstance(url, str):
        return None
    text = url.strip()
    return text if text.lower().startswith(("http://", "https://")) and len(text) < 2048 else None


def _project_urls(raw: Mapping[str, Any]) -> dict[str, str] | None:
    """Warehouse's ``Release.urls``: Homepage and Download first, then Project-URL."""
    urls: dict[str, str] = {}
    if raw.get("home_page"):
        urls["Homepage"] = str(raw["home_page"])
    if raw.get("download_url"):
        urls["Download"] = str(raw["download_url"])
    for label, url in (raw.get("project_urls") or {}).items():
        if not url:
            continue
        squashed = "".join(c for c in label.lower() if c.isalnum())
        if squashed == "homepage" and url == urls.get("Homepage"):
            continue
        if squashed == "downloadurl" and url == urls.get("Download"):
            continue
        urls[str(label)] = str(url)
    return urls or None


def _info(metadata: bytes, version: str) -> dict[str, Any]:
    raw, _ = parse_email(metadata)
    info: dict[str, Any] = {key: None for key in INFO_FIELDS}
    for key, source in _TEXT.items():
        value = raw.get(source)  # type: ignore[misc]
        info[key] = str(value) if value is not None else None
    for key, source in _LISTS.items():
        values = raw.get(source)  # type: ignore[misc]
        info[key] = [str(v) for v in values] if values else None
    info["version"] = version
    keywords = raw.get("keywords")
    info["keywords"] = ",".join(keywords) if keywords else None
    info["classifiers"] = [str(c) for c in raw.get("classifiers") or []]
    platforms = raw.get("platforms")
    info["platform"] = ",".join(platforms) if platforms else None
    info["project_urls"] = _project_urls(raw)
    return info


@dataclass(frozen=True, slots=True)
class ReleaseView:
    """What is shown of one release; ``source`` is the file its metadata came from."""

    project: str
    version: str
    source: str
    info: dict[str, Any] = field(default_factory=dict)
    description_html: str = ""

    @property
    def summary(self) -> str | None:
        value = self.info.get("summary")
        return value if isinstance(value, str) and value else None

    def to_json(self) -> bytes:
        doc = {"project": self.project, "version": self.version, "source": self.source,
               "info": self.info, "description_html": self.description_html}
        return (json.dumps(doc, ensure_ascii=True, separators=(",", ":")) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> ReleaseView:
        doc = json.loads(data)
        if not isinstance(doc, dict) or not isinstance(doc.get("info"), dict):
            raise ValueError("a release view is a JSON object with info")
        return cls(str(doc["project"]), str(doc["version"]), str(doc["source"]), doc["info"],
                   str(doc.get("description_html") or ""))


def release_view(project: str, version: str, source: str, metadata: bytes | None) -> ReleaseView:
    """The view of a release from its core metadata (None: unknown, an empty view)."""
    if metadata is None:
        info = {key: None for key in INFO_FIELDS}
        info.update(version=version, classifiers=[])
        return ReleaseView(project, version, source, info, "")
    info = _info(metadata, version)
    html = render_description(info.get("description"), info.get("description_content_type"))
    return ReleaseView(project, version, source, info, html)


def is_prerelease(version: str) -> bool:
    try:
        return Version(version).is_prerelease
    except ValueError:  # InvalidVersion, or more digits than int() takes
        return False


def _order(version: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(version))
    except ValueError:  # InvalidVersion, or more digits than int() takes
        return (0, version)


def version_states(files: Iterable[tuple[str, bool]]) -> dict[str, bool]:
    """``{version: every file yanked}`` from (version, yanked) of each file, newest first."""
    states: dict[str, bool] = {}
    for version, yanked in files:
        states[version] = states.get(version, True) and yanked
    return {v: states[v] for v in sorted(states, key=_order, reverse=True)}


def shown_version(files: Iterable[tuple[str, bool]]) -> str | None:
    """The version a project page shows: the newest that is not yanked and not a
    pre-release; else the newest not yanked; else the newest (Warehouse's order)."""
    states = version_states(files)
    for wanted in (lambda v: not states[v] and not is_prerelease(v), lambda v: not states[v],
                   lambda v: True):
        for version in states:
            if wanted(version):
                return version
    return None
