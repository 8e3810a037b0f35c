"""Project roles: owners and maintainers, one small record per project.

The user whose upload first creates a project becomes its owner; maintainers may upload;
owners may also yank, unyank, remove and change roles. The record is created by
compare-and-swap when the project is created, so of two users creating one project at
the same moment exactly one becomes its owner (:mod:`spoold.index.publish`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace

__all__ = ["Role", "Roles"]


class Role(enum.Enum):
    OWNER = "owner"
    MAINTAINER = "maintainer"


@dataclass(frozen=True, slots=True)
class Roles:
    owners: frozenset[str] = frozenset()
    maintainers: frozenset[str] = frozenset()
    #: Bumped by every change (the storage's compare-and-swap orders writers by it).
    generation: int = 0

    def role_of(self, user: str) -> Role | None:
        if user in self.owners:
            return Role.OWNER
        if user in self.maintainers:
            return Role.MAINTAINER
        return None

    def may_upload(self, user: str) -> bool:
        return user in self.owners or user in self.maintainers

    def may_manage(self, user: str) -> bool:
        return user in self.owners

    def with_role(self, user: str, role: Role) -> Roles:
        """``user`` in exactly this role (an owner made maintainer stops being owner)."""
        owners = self.owners - {user}
        maintainers = self.maintainers - {user}
        if role is Role.OWNER:
            owners |= {user}
        else:
            maintainers |= {user}
        if (owners, maintainers) == (self.owners, self.maintainers):
            return self
        return replace(self, owners=owners, maintainers=maintainers)

    def without(self, user: str) -> Roles:
        if self.role_of(user) is None:
            return self
        return replace(self, owners=self.owners - {user}, maintainers=self.maintainers - {user})

    def with_generation(self, generation: int) -> Roles:
        return replace(self, generation=generation)

    def listing(self) -> list[dict[str, str]]:
        """``role list --json``: one object per user, owners first."""
        return ([{"user": u, "role": Role.OWNER.value} for u in sorted(self.owners)]
                + [{"user": u, "role": Role.MAINTAINER.value} for u in sorted(self.maintainers)])

    def to_json(self) -> dict[str, object]:
        return {"owners": sorted(self.owners), "maintainers": sorted(self.maintainers),
                "generation": self.generation}

    @classmethod
    def from_json(cls, doc: object) -> Roles:
        if not isinstance(doc, Mapping):
            raise ValueError("a roles record is a JSON object")
        owners, maintainers = doc.get("owners", []), doc.get("maintainers", [])
        if not isinstance(owners, list) or not isinstance(maintainers, list):
            raise ValueError("owners and maintainers are lists of user names")
        generation = doc.get("generation", 0)
        return cls(frozenset(map(str, owners)), frozenset(map(str, maintainers)),
                   generation if isinstance(generation, int) else 0)
