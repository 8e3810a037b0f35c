"""Every storage key spoold reads or writes, built in one place.

The tree is the contract a static web server relies on (``docs/architecture.md``, "Storage"),
so the paths are spelled once, here. ``<project>`` is always a PEP 503 normalized name
and ``<filename>`` a name that passed :func:`spoold.inspection.filenames.check_filename`;
:func:`spoold.storage.base.check_key` refuses anything else at the backend as well.
"""

from __future__ import annotations

__all__ = [
    "PACKAGES",
    "ROOT_HTML",
    "ROOT_JSON",
    "SIMPLE",
    "file_key",
    "metadata_key",
    "project_files_prefix",
    "project_html_key",
    "project_json_key",
    "project_page_keys",
    "root_page_keys",
    "ACCESS",
    "EVENTS",
    "event_key",
    "roles_key",
    "token_key",
    "token_used_key",
    "EXPLORER",
    "CATALOG",
    "SESSION_SECRET",
    "catalog_key",
    "file_record_key",
    "first_login_key",
    "pypi_project_key",
    "pypi_release_key",
    "release_view_key",
]

SIMPLE = "simple/"
PACKAGES = "packages/"
ROOT_HTML = "simple/index.html"
ROOT_JSON = "simple/index.v1.json"


def project_json_key(project: str) -> str:
    """The PEP 691 page, which is also the project's manifest."""
    return f"simple/{project}/index.v1.json"


def project_html_key(project: str) -> str:
    return f"simple/{project}/index.html"


def project_page_keys(project: str) -> tuple[str, str]:
    """Both index pages of a project: (HTML, JSON)."""
    return project_html_key(project), project_json_key(project)


def root_page_keys() -> tuple[str, str]:
    return ROOT_HTML, ROOT_JSON


def project_files_prefix(project: str) -> str:
    """The folder holding a project's distributions and their ``.metadata``."""
    return f"packages/{project}/"


def file_key(project: str, filename: str) -> str:
    return f"packages/{project}/{filename}"


def metadata_key(project: str, filename: str) -> str:
    """The PEP 658 core metadata file served beside the distribution."""
    return f"packages/{project}/{filename}.metadata"


def pypi_project_key(project: str) -> str:
    """The Warehouse JSON API document of a project (``/pypi/<project>/json``)."""
    return f"pypi/{project}/json"


def pypi_release_key(project: str, version: str) -> str:
    """... of one release (``/pypi/<project>/<version>/json``); ``version`` normalized."""
    return f"pypi/{project}/{version}/json"


# -- private records: never served (not under simple/ or packages/; nginx denies .spoold/) --

ACCESS = ".spoold/access/"
EVENTS = ".spoold/events/"


def token_key(token_id: str) -> str:
    return f".spoold/access/tokens/{token_id}.json"


def token_used_key(token_id: str) -> str:
    """When the token was last used (rewritten at most once a minute)."""
    return f".spoold/access/token-used/{token_id}"


def roles_key(project: str) -> str:
    return f".spoold/access/roles/{project}.json"


def event_key(day: str, stamp: str, nonce: str) -> str:
    """One event, in a folder per UTC day so that ``--since`` lists only the days after."""
    return f".spoold/events/{day}/{stamp}-{nonce}.json"


# -- the explorer's private documents (spoold.index.explorer_docs, spoold.explorer) --

EXPLORER = ".spoold/explorer/"
CATALOG = ".spoold/explorer/catalog/"
#: The key that signs session cookies: created once, shared by every host on the storage.
SESSION_SECRET = ".spoold/explorer/session-secret"


def file_record_key(project: str, filename: str) -> str:
    """A private copy of a file's core metadata and its blake2b-256 (every file, served
    ``.metadata`` or not)."""
    return f".spoold/explorer/files/{project}/{filename}.json"


def release_view_key(project: str, version: str) -> str:
    """What the explorer shows of one release: its metadata fields and rendered description."""
    return f".spoold/explorer/releases/{project}/{version}.json"


def catalog_key(shard: int) -> str:
    """One shard of the catalog (name, summary, version, last upload of every project)."""
    return f".spoold/explorer/catalog/{shard:02x}.json"


def first_login_key(user: str) -> str:
    """Created on a user's first web login (the first-run page checks it for ``admin``)."""
    return f".spoold/explorer/first-login/{user}"
