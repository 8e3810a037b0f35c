"""The explorer's pages: Jinja2 templates in, bytes out (autoescaped, no inline script).

Every page is a *main* part rendered from its template (``templates/<name>.html``) inside
the *shell* (``templates/shell.html``: head, navigation, search box, login state). The
main part of a project or release page is the same for every reader, so the web layer
keeps it in memory and renders only the small shell per request.

Autoescaping is on for everything; the one value marked safe is a description's HTML,
which :mod:`spoold.explorer.readme` sanitized. Links from metadata become links only for
``http``/``https`` URLs (:func:`~spoold.explorer.release.safe_url`); anything else is text.
The pages use one stylesheet and one script (``/static/``), both optional: every page works
without JavaScript (the script only adds "copy" buttons).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from spoold.explorer.release import ReleaseView, is_prerelease, safe_url, version_states

if TYPE_CHECKING:
    from spoold.index.manifest import FileEntry, Manifest

__all__ = ["Nav", "fragment", "page", "project_main", "shell", "static_file"]

_ENV = Environment(
    loader=PackageLoader("spoold.explorer", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _size(value: int) -> str:
    amount = float(value)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{int(amount)} {unit}" if unit == "bytes" else f"{amount:.1f} {unit}"
        amount /= 1024
    return str(value)  # pragma: no cover


def _when(value: datetime | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    return value.strftime("%Y-%m-%d %H:%M UTC")


_ENV.filters["size"] = _size
_ENV.filters["when"] = _when
_ENV.filters["day"] = lambda v: _when(v)[:10]
_ENV.filters["path"] = lambda v: quote(str(v), safe="")
_ENV.globals["safe_url"] = safe_url


@dataclass(frozen=True, slots=True)
class Nav:
    """What the shell shows of the reader: logged in as ``user`` (with the logout form's
    CSRF token), or not; the search box's text."""

    user: str | None = None
    csrf: str | None = None
    query: str = ""


def fragment(template: str, **context: Any) -> str:
    return _ENV.get_template(f"{template}.html").render(**context)


def shell(title: str, main: str, nav: Nav, *, status: int = 200) -> bytes:
    return _ENV.get_template("shell.html").render(
        title=title, main=Markup(main), nav=nav, status=status).encode("utf-8")


def page(template: str, title: str, nav: Nav, **context: Any) -> bytes:
    return shell(title, fragment(template, **context), nav)


def _release_rows(manifest: Manifest, current: str) -> list[dict[str, Any]]:
    states = version_states((e.version, e.yanked is not None) for e in manifest.files)
    first: dict[str, datetime] = {}
    reasons: dict[str, str] = {}
    for entry in manifest.files:
        if entry.version not in first or entry.upload_time < first[entry.version]:
            first[entry.version] = entry.upload_time
        if entry.yanked:
            reasons.setdefault(entry.version, entry.yanked)
    return [{"version": v, "date": first[v], "yanked": yanked, "reason": reasons.get(v, ""),
             "prerelease": is_prerelease(v), "current": v == current} for v, yanked in states.items()]


def _file_rows(files: list[FileEntry]) -> list[dict[str, Any]]:
    return [{"entry": e, "kind": "wheel" if e.filename.endswith(".whl") else "sdist"}
            for e in sorted(files, key=lambda e: (not e.filename.endswith(".tar.gz"), e.filename))]


def _people(name: Any, email: Any) -> list[str]:
    return [str(x) for x in (name, email) if x]


def project_main(manifest: Manifest, view: ReleaseView | None, version: str, *, base: str,
                 latest: bool, manage: bool = False) -> str:
    """The main part of a project page (``latest``) or a release page."""
    info = view.info if view is not None else {}
    files = [e for e in manifest.files if e.version == version]
    requirement = manifest.name if latest else f"{manifest.name}=={version}"
    index = f"{base}/simple/"
    yanked = bool(files) and all(e.yanked is not None for e in files)
    return fragment(
        "project",
        project=manifest.project, name=manifest.name, version=version, latest=latest,
        info=info, description=Markup(view.description_html if view is not None else ""),
        summary=info.get("summary"), releases=_release_rows(manifest, version),
        files=_file_rows(files), yanked=yanked,
        yank_reason=next((e.yanked for e in files if e.yanked), ""),
        prerelease=is_prerelease(version),
        installs=[("pip", f"pip install --index-url {index} {requirement}"),
                  ("uv", f"uv pip install --index-url {index} {requirement}")],
        authors=_people(info.get("author"), info.get("author_email")),
        maintainers=_people(info.get("maintainer"), info.get("maintainer_email")),
        license=info.get("license_expression") or info.get("license"),
        urls=list((info.get("project_urls") or {}).items()),
        manage=manage,
    )


def static_file(name: str) -> tuple[bytes, str] | None:
    """One of the explorer's static files and its content type, or None."""
    from importlib.resources import files

    types = {"style.css": "text/css; charset=utf-8", "copy.js": "text/javascript; charset=utf-8",
             "favicon.svg": "image/svg+xml"}
    if name not in types:
        return None
    return (files("spoold.explorer").joinpath("static", name).read_bytes(), types[name])
