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
