"""Access decisions: pure functions over a principal, a project and its roles.

Every answer of the contract ("Access" in ``docs/architecture.md``) is decided here, so a
test can list them all without a server:

* no or bad credentials where some are needed: 401 (the challenge is the caller's);
* a principal without the right: 403 naming what it may do;
* a project the principal may not read: 404, exactly as for a project that does not exist
  (and absent from the root index, search and the JSON API: :func:`may_see`).
"""

from __future__ import annotations

from dataclasses import dataclass

from spoold.access.principal import Kind, Principal, Scope
from spoold.access.roles import Roles
from spoold.errors import Rejected

__all__ = ["ALLOWED", "Decision", "Forbidden", "may_manage", "may_read", "may_see", "may_upload",
           "reads_everything"]


class Forbidden(Rejected):
    """The sender may not do this to the project (its token's projects, the roles)."""

    code = "forbidden"
    http_status = 403


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    #: The HTTP status of a refusal (401, 403 or 404).
    status: int = 200
    message: str = ""

    def __bool__(self) -> bool:
        return self.allowed


ALLOWED = Decision(True)
_AUTHENTICATE = Decision(False, 401, "Authentication required: use a user name and password, "
                                     "or a token (as the password of the user __token__)")
_ABSENT = Decision(False, 404, "Not found")


def _token_limits(principal: Principal) -> str:
    scopes = "upload and read" if Scope.UPLOAD in principal.scopes else "read"
    where = ", ".join(sorted(principal.projects)) if principal.projects else "every project of its user"
    return f"token {principal.token_id} allows {scopes} on {where}"


def may_see(principal: Principal, project: str, *, public: bool) -> bool:
    """Whether ``project`` exists for this principal (root index, search, JSON API)."""
    if public or principal.kind in (Kind.USER, Kind.TRUSTED):
        return True
    if principal.kind is Kind.TOKEN:
        return principal.reaches(project)
    return False


def reads_everything(principal: Principal, *, public: bool) -> bool:
    """Whether every read is allowed to this principal, whatever the project: then one
    answer holds for all of its requests (what a reverse proxy may cache by credentials
    alone). False for a token limited to some projects, and for anonymous on a private
    index."""
    if public:
        return True
    if principal.kind in (Kind.USER, Kind.TRUSTED):
        return True
    return principal.kind is Kind.TOKEN and not principal.projects


def may_read(principal: Principal, project: str | None, *, public: bool) -> Decision:
    """Reading the index (``project`` None: the root), a file or a page about a project."""
    if public:
        return ALLOWED
    if not principal.authenticated:
        return _AUTHENTICATE
    if project is not None and not may_see(principal, project, public=False):
        return _ABSENT
    return ALLOWED


def may_upload(principal: Principal, project: str, roles: Roles | None, *, exists: bool) -> Decision:
    """Uploading a file of ``project``; ``roles`` None: the project has no roles record,
    ``exists``: the index has the project (files published by the trusted spool, or before
    roles existed)."""
    if principal.kind is Kind.TRUSTED:
        return ALLOWED
    if not principal.authenticated:
        return _AUTHENTICATE
    if principal.kind is Kind.TOKEN:
        if Scope.UPLOAD not in principal.scopes:
            return Decision(False, 403, f"{_token_limits(principal)}: uploading needs a token "
                                        "with the upload scope")
        if not principal.reaches(project):
            return Decision(False, 403, f"{_token_limits(principal)}, not {project}")
    user = str(principal.user)
    if principal.admin:
        return ALLOWED
    if roles is None:
        if not exists:
            return ALLOWED  # a new project: this upload makes the user its owner
        return Decision(False, 403, f"{user} may not upload to project {project}: it has no "
                                    "owner yet; ask an admin for a role "
                                    f"(`spoold role set {project} {user} maintainer`)")
    if roles.may_upload(user):
        return ALLOWED
    owners = ", ".join(sorted(roles.owners)) or "none; ask an admin"
    return Decision(False, 403, f"{user} may not upload to project {project}: ask an owner "
                                f"({owners}) for the maintainer role")


def may_manage(principal: Principal, project: str, roles: Roles | None) -> Decision:
    """Yank, unyank, remove and change roles of ``project`` (owners and admins)."""
    if principal.kind is Kind.TRUSTED or (principal.kind is Kind.USER and principal.admin):
        return ALLOWED
    if not principal.authenticated:
        return _AUTHENTICATE
    if principal.kind is Kind.TOKEN:
        return Decision(False, 403, f"{_token_limits(principal)}; managing a project needs "
                                    "you logged in as an owner")
    user = str(principal.user)
    if roles is not None and roles.may_manage(user):
        return ALLOWED
    owners = ", ".join(sorted(roles.owners)) if roles is not None and roles.owners else "an admin"
    return Decision(False, 403, f"{user} may not manage project {project}: only its owners "
                                f"({owners}) may yank, remove and change roles")
