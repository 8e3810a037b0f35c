"""What became of a spool item: the value a worker reports and an upload waits for."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from spoold.spool.names import ItemName
from spoold.spool.records import Reason

__all__ = ["Outcome", "Result"]


class Result(enum.Enum):
    PUBLISHED = "published"  # stored and in the index
    UNCHANGED = "unchanged"  # identical bytes were already published: success, no change
    REJECTED = "rejected"  # the item's own fault; see code and message
    ERROR = "error"  # a bug in spoold; the item is kept (in cur/) and retried after a restart


@dataclass(frozen=True, slots=True)
class Outcome:
    item: str
    filename: str
    result: Result
    project: str | None = None
    version: str | None = None
    #: For rejections: the machine-readable code and the message for the uploader.
    code: str = ""
    message: str = ""
    #: The HTTP status an upload of this item is answered with.
    http_status: int = 200

    @property
    def ok(self) -> bool:
        return self.result in (Result.PUBLISHED, Result.UNCHANGED)

    @classmethod
    def rejected(cls, name: ItemName, reason: Reason) -> Outcome:
        """The outcome another process recorded in ``failed/``."""
        return cls(str(name), name.filename, Result.REJECTED, code=reason.code,
                   message=reason.error, http_status=reason.http_status)
