"""The old home of the archive readers, kept so that existing imports keep working.

The readers were split by job (:mod:`.archive`, :mod:`.zipreader`, :mod:`.eocd`,
:mod:`.tarreader`, :mod:`.sdist`); import from those. Nothing in spoold imports this
module any more.
"""

from spoold.inspection.archive import (
    ArchiveLimits,
    InvalidArchive,
    Limits,
    Member,
    SdistScan,
    UnsafeArchive,
    check_member_path,
    open_source,
)
from spoold.inspection.sdist import scan_sdist
from spoold.inspection.zipreader import ZipReader

__all__ = [
    "ArchiveLimits",
    "InvalidArchive",
    "Limits",
    "Member",
    "SdistScan",
    "UnsafeArchive",
    "ZipReader",
    "check_member_path",
    "open_source",
    "scan_sdist",
]
