"""Manifests built by hand for the index tests."""

from __future__ import annotations

from datetime import UTC, datetime

from spoold.index.manifest import FileEntry, Manifest

SHA = "a" * 64
META = "b" * 64


def entry(filename: str, version: str, **kwargs: object) -> FileEntry:
    values: dict[str, object] = {
        "filename": filename,
        "version": version,
        "size": 123,
        "sha256": SHA,
        "upload_time": datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        "metadata_sha256": META,
    }
    values.update(kwargs)
    return FileEntry(**values)  # type: ignore[arg-type]


def sample() -> Manifest:
    manifest = Manifest.empty("Sample", "Sample").with_generation(7)
    for e in (
        entry("sample-1.0.tar.gz", "1.0", requires_python=">=3.8,<4", metadata_sha256=None),
        entry("sample-1.0-py3-none-any.whl", "1.0", yanked="broken"),
        entry("sample-2.0+local-py3-none-any.whl", "2.0+local", yanked=""),
    ):
        manifest = manifest.with_file(e)
    return manifest
