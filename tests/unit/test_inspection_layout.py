"""The import paths from before the inspection stage was split still name the same objects."""

from __future__ import annotations

import importlib

import pytest

OLD_PATHS = {
    "spoold.inspection.archives": {
        "ArchiveLimits": "spoold.inspection.archive",
        "InvalidArchive": "spoold.inspection.archive",
        "Limits": "spoold.inspection.archive",
        "Member": "spoold.inspection.archive",
        "SdistScan": "spoold.inspection.archive",
        "UnsafeArchive": "spoold.inspection.archive",
        "check_member_path": "spoold.inspection.archive",
        "open_source": "spoold.inspection.archive",
        "ZipReader": "spoold.inspection.zipreader",
        "scan_sdist": "spoold.inspection.sdist",
    },
    "spoold.inspection.inspect": {
        "CoreMetadata": "spoold.inspection.metadata",
        "InvalidMetadata": "spoold.inspection.metadata",
        "MetadataMismatch": "spoold.inspection.metadata",
        "parse_core_metadata": "spoold.inspection.metadata",
        "InvalidSdist": "spoold.inspection.sdist",
        "InvalidWheel": "spoold.inspection.wheel",
        "RecordMismatch": "spoold.inspection.wheel",
    },
    "spoold.inspection": {
        "Distribution": "spoold.inspection.distribution",
        "inspect_file": "spoold.inspection.inspect",
    },
}


@pytest.mark.parametrize("old", sorted(OLD_PATHS))
def test_old_import_paths(old: str) -> None:
    module = importlib.import_module(old)
    for name, home in OLD_PATHS[old].items():
        assert getattr(module, name) is getattr(importlib.import_module(home), name), name
        assert name in module.__all__, name
