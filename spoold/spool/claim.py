"""A claim: an item this process owns, because its rename into ``cur/`` succeeded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from spoold.spool.names import ItemName
from spoold.spool.records import ItemMeta

__all__ = ["Claim"]


@dataclass(frozen=True, slots=True)
class Claim:
    """An item this process owns: the rename into ``cur/`` succeeded."""

    name: ItemName
    path: Path
    #: The distribution's bytes: the item itself, or ``data`` inside a directory item.
    payload: Path
    #: What the deliverer recorded; empty for plain files.
    meta: ItemMeta = ItemMeta()

    @property
    def filename(self) -> str:
        return self.name.filename
