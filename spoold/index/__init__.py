"""The index: manifests, rendered pages, and the changes that publish them to storage.

* :mod:`~spoold.index.manifest` -- the values (a project's files, the root list);
* :mod:`~spoold.index.pages` -- rendering them as PEP 503/691 pages, and reading back;
* :mod:`~spoold.index.documents` -- compare-and-swap of manifests, pages and the root;
* :mod:`~spoold.index.publish`, :mod:`~spoold.index.changes` (yank, unyank, remove) and
  :mod:`~spoold.index.reindex` -- the operations, as library functions over a Storage.
"""

from spoold.index.changes import ChangeResult, remove, unyank, yank
from spoold.index.documents import NotFound, TooMuchContention
from spoold.index.publish import PublishResult, publish
from spoold.index.reindex import ReindexProgress, ReindexReport, extract_metadata, reindex

__all__ = [
    "ChangeResult",
    "NotFound",
    "PublishResult",
    "ReindexProgress",
    "ReindexReport",
    "TooMuchContention",
    "extract_metadata",
    "publish",
    "reindex",
    "remove",
    "unyank",
    "yank",
]
