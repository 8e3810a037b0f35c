"""Index pages: pure functions from a manifest to bytes, and back from the stored JSON.

The PEP 691 JSON page is the canonical form (it is also the stored manifest, so
:func:`render_project_json` and :func:`parse_project_json` are inverses); the PEP 503
HTML page is derived from the same manifest so the two always agree. Links are relative
(``../../packages/<project>/<file>``) so the tree can be served from any URL prefix.
Rendering is deterministic: two writers rendering one generation produce equal bytes.

Everything that came from an upload (names, filenames, requires-python, yank reasons) is
escaped for HTML (``html.escape`` with quotes) and percent-encoded in URLs.
"""

from __future__ import annotations

import functools
import json
import re
from html import escape
from typing import Any
from urllib.parse import quote

from packaging.utils import canonicalize_name

from spoold.index.manifest import (
    CorruptManifest,
    FileEntry,
    Manifest,
    RootEntry,
    RootIndex,
    canonical_name,
    format_time,
    parse_time,
    version_from_filename,
)

__all__ = [
    "API_VERSION",
    "assemble_root_html",
    "assemble_root_json",
    "file_url",
    "parse_project_json",
    "parse_root_json",
    "render_project_html",
    "render_project_json",
    "render_root_html",
    "render_root_json",
    "root_html_part",
    "root_json_part",
]

#: PEP 700 fields (versions, size, upload-time) need api-version 1.1 (PEP 629 / 691).
API_VERSION = "1.1"


@functools.lru_cache(maxsize=65536)
def file_url(project: str, filename: str) -> str:
    """The relative URL from ``simple/<project>/`` to the file."""
    return f"../../packages/{quote(project, safe='')}/{quote(filename, safe='')}"


def _dump(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, ensure_ascii=True, separators=(",", ":")) + "\n").encode()


def _file_json(project: str, entry: FileEntry) -> dict[str, Any]:
    item: dict[str, Any] = {
        "filename": entry.filename,
        "url": file_url(project, entry.filename),
        "hashes": {"sha256": entry.sha256},
    }
    if entry.requires_python:
        item["requires-python"] = entry.requires_python
    metadata: dict[str, str] | bool = (
        {"sha256": entry.metadata_sha256} if entry.metadata_sha256 else False
    )
    item["core-metadata"] = metadata  # PEP 714
    item["dist-info-metadata"] = metadata  # PEP 658, for older clients
    item["yanked"] = False if entry.yanked is None else (entry.yanked or True)
    item["size"] = entry.size
    item["upload-time"] = format_time(entry.upload_time)
    private = {k: v for k, v in (("uploader", entry.uploader), ("client", entry.client)) if v}
    if private:
        item["_spoold"] = private  # PEP 691: keys with a leading underscore are the server's
    return item


def render_project_json(manifest: Manifest) -> bytes:
    """The PEP 691 + PEP 700 project page; also the stored manifest (``_spoold``)."""
    return _dump(
        {
            "meta": {"api-version": API_VERSION},
            "name": manifest.project,
            "versions": list(manifest.versions),
            "files": [_file_json(manifest.project, e) for e in manifest.files],
            "_spoold": {
                "generation": manifest.generation,
                "name": manifest.name,
                "listed": manifest.listed,
            },
        }
    )


def _page(title: str, links: list[str]) -> bytes:
    body = "\n".join(f"    {link}<br />" for link in links)
    text = (
        "<!DOCTYPE html>\n"
        "<html>\n"
        "  <head>\n"
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">\n'
        f"    <title>{escape(title)}</title>\n"
        "  </head>\n"
        "  <body>\n"
        f"    <h1>{escape(title)}</h1>\n"
        f"{body}{chr(10) if body else ''}"
        "  </body>\n"
        "</html>\n"
    )
    return text.encode("utf-8")


def _file_link(project: str, entry: FileEntry) -> str:
    href = f"{file_url(project, entry.filename)}#sha256={entry.sha256}"
    attrs = [f'href="{escape(href)}"']
    if entry.requires_python:
        attrs.append(f'data-requires-python="{escape(entry.requires_python)}"')
    if entry.metadata_sha256:
        value = escape(f"sha256={entry.metadata_sha256}")
        attrs.append(f'data-dist-info-metadata="{value}"')
        attrs.append(f'data-core-metadata="{value}"')
    if entry.yanked is not None:
        attrs.append(f'data-yanked="{escape(entry.yanked)}"')
    return f"<a {' '.join(attrs)}>{escape(entry.filename)}</a>"


def render_project_html(manifest: Manifest) -> bytes:
    """The PEP 503 project page (PEP 592 yanks, PEP 629 version, PEP 658/714 metadata)."""
    links = [_file_link(manifest.project, e) for e in manifest.files]
    return _page(f"Links for {manifest.name}", links)


# -- the root index, assembled from one part per project ---------------------------------
#
# A root index of 50,000 projects is megabytes; the root writer
# (:mod:`spoold.index.rootwriter`) keeps one rendered part per project and joins them,
# so adding a project costs a list insert and a join, not a rendering of every name.
# ``render_root_*`` build the very same bytes from a :class:`RootIndex`.

_ROOT_JSON_HEAD = b'{"meta":{"api-version":"%s"},"projects":[' % API_VERSION.encode()
_ROOT_HTML_HEAD, _ROOT_HTML_TAIL = _page("Simple index", ["\0"]).split(b"    \0<br />")
#: Names that need neither JSON nor HTML escaping nor percent-encoding (every name
#: packaging accepts is one): their parts are built without the general machinery.
_PLAIN = re.compile(r"^[A-Za-z0-9._-]+$")


def root_json_part(name: str) -> bytes:
    """One project of the PEP 691 root page: ``{"name":"..."}``."""
    if _PLAIN.match(name):
        return b'{"name":"%s"}' % name.encode("ascii")
    return json.dumps({"name": name}, ensure_ascii=True, separators=(",", ":")).encode()


def root_html_part(project: str, name: str) -> bytes:
    """One line of the PEP 503 root page (without its line end)."""
    if _PLAIN.match(project) and _PLAIN.match(name):
        return b'    <a href="%s/">%s</a><br />' % (project.encode("ascii"), name.encode("ascii"))
    return f"    {_root_link(project, name)}<br />".encode()


def assemble_root_json(parts: list[bytes], generation: int) -> bytes:
    """The stored root index from its parts (:func:`root_json_part`, in project order)."""
    return b"".join((_ROOT_JSON_HEAD, b",".join(parts),
                     b'],"_spoold":{"generation":%d}}\n' % generation))


def assemble_root_html(parts: list[bytes]) -> bytes:
    """The PEP 503 root page from its parts (:func:`root_html_part`, in project order)."""
    if not parts:
        return _ROOT_HTML_HEAD + _ROOT_HTML_TAIL.lstrip(b"\n")
    return b"".join((_ROOT_HTML_HEAD, b"\n".join(parts), _ROOT_HTML_TAIL))


def render_root_json(root: RootIndex) -> bytes:
    return assemble_root_json([root_json_part(p.name) for p in root.projects], root.generation)


def render_root_html(root: RootIndex) -> bytes:
    return assemble_root_html([root_html_part(p.project, p.name) for p in root.projects])


@functools.lru_cache(maxsize=1 << 16)
def _root_link(project: str, name: str) -> str:
    """One link of the root page, for names that need escaping (none that packaging
    accepts; a hand-made root index may hold others)."""
    return f'<a href="{escape(quote(project, safe=""))}/">{escape(name)}</a>'


# -- the stored form, read back ---------------------------------------------------------


def parse_project_json(data: bytes, *, where: str = "manifest") -> Manifest:
    """Parse a stored PEP 691 project page back into a manifest (the inverse of
    :func:`render_project_json`); :class:`CorruptManifest` if it cannot be."""
    try:
        doc = json.loads(data)
        private = doc.get("_spoold", {})
        project = canonicalize_name(doc["name"])
        files = []
        for item in doc["files"]:
            filename = item["filename"]
            yanked = item.get("yanked", False)
            metadata = item.get("core-metadata") or item.get("dist-info-metadata")
            files.append(
                FileEntry(
                    filename=filename,
                    version=version_from_filename(filename) or "0",
                    size=int(item["size"]),
                    sha256=item["hashes"]["sha256"],
                    upload_time=parse_time(item["upload-time"]),
                    metadata_sha256=metadata.get("sha256") if isinstance(metadata, dict) else None,
                    requires_python=item.get("requires-python") or None,
                    yanked=None if yanked is False else ("" if yanked is True else str(yanked)),
                    uploader=_private(item, "uploader"),
                    client=_private(item, "client"),
                )
            )
        return Manifest(
            project=project,
            name=str(private.get("name") or project),
            generation=int(private.get("generation", 0)),
            files=tuple(files),
            listed=bool(private.get("listed", False)),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CorruptManifest(
            f"{where} cannot be read ({exc!r}); rebuild it with `spoold reindex`"
        ) from exc


def _private(item: dict[str, Any], key: str) -> str | None:
    value = item.get("_spoold", {}).get(key)
    return str(value) if value else None


def parse_root_json(data: bytes) -> RootIndex:
    """Parse the stored root index (the inverse of :func:`render_root_json`)."""
    try:
        doc = json.loads(data)
        entries = tuple(
            RootEntry(canonical_name(p["name"]), str(p["name"])) for p in doc["projects"]
        )
        return RootIndex(int(doc.get("_spoold", {}).get("generation", 0)), entries)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CorruptManifest(
            f"the root index cannot be read ({exc!r}); rebuild it with `spoold reindex`"
        ) from exc
