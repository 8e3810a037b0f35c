"""Who is asking: anonymous, a user (htpasswd), a token of a user, or the trusted spool.

A :class:`Principal` is what authentication produces and what every access decision
(:mod:`spoold.access.policy`) takes. It carries everything a decision needs, so deciding
never does I/O: the user, whether the user is an admin, and for a token its scopes and
projects.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["ANONYMOUS", "TRUSTED", "Kind", "Principal", "Scope"]


class Kind(enum.Enum):
    ANONYMOUS = "anonymous"
    USER = "user"
    TOKEN = "token"
    #: Whoever can write the spool's folders (scp, rsync, ``spoold drop``, ``import``).
    TRUSTED = "trusted"


class Scope(enum.Enum):
    READ = "read"
    UPLOAD = "upload"  # includes read


@dataclass(frozen=True, slots=True)
class Principal:
    kind: Kind
    #: The user (a token's owner); None for anonymous and the trusted spool.
    user: str | None = None
    admin: bool = False
    #: For tokens: the token's id and what it allows.
    token_id: str | None = None
    scopes: frozenset[Scope] = frozenset()
    #: Normalized project names a token is limited to; empty: all the user may reach.
    projects: frozenset[str] = frozenset()
    #: For the trusted spool: how the file came (``drop``, ``incoming``, ``import``).
    via: str | None = None

    @classmethod
    def for_user(cls, user: str, *, admin: bool = False) -> Principal:
        return cls(Kind.USER, user=user, admin=admin)

    @property
    def authenticated(self) -> bool:
        return self.kind is not Kind.ANONYMOUS

    def can(self, scope: Scope) -> bool:
        """Whether this principal has a scope at all (users have every scope)."""
        if self.kind is Kind.USER or self.kind is Kind.TRUSTED:
            return True
        if self.kind is Kind.TOKEN:
            return scope in self.scopes or (scope is Scope.READ and Scope.UPLOAD in self.scopes)
        return False

    def reaches(self, project: str) -> bool:
        """Whether a token's project list includes ``project`` (no list: every project)."""
        return not self.projects or project in self.projects

    def describe(self) -> str:
        """How the audit trail names this principal."""
        if self.kind is Kind.TOKEN:
            return f"token {self.token_id} of {self.user}"
        if self.kind is Kind.USER:
            return str(self.user)
        if self.kind is Kind.TRUSTED:
            return f"spool ({self.via or 'drop'})"
        return "anonymous"


ANONYMOUS = Principal(Kind.ANONYMOUS)
TRUSTED = Principal(Kind.TRUSTED, via="drop")
