"""Which core metadata may be served as ``<file>.metadata``: the PEP 643 rule, on bytes
and on inspected sdists and wheels. Publishing and reindex under the rule are in the
publishing contract (tests/testlib/publish_contract.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from spoold.inspection import inspect_file
from spoold.inspection.pep658 import RESOLVER_FIELDS, metadata_servable
from spoold.testing.dists import metadata_text, write_sdist, write_wheel


def pkg_info(metadata_version: str, *dynamic: str) -> bytes:
    extra = [("Requires-Dist", "attrs>=20")] + [("Dynamic", d) for d in dynamic]
    return metadata_text(metadata_version=metadata_version, extra=extra).encode()


@pytest.mark.parametrize("metadata_version", ["1.0", "1.1", "1.2", "2.0", "2.1"])
def test_sdist_metadata_before_pep_643_is_never_served(metadata_version: str) -> None:
    """Before 2.2 nothing says PKG-INFO lists the dependencies the build will declare."""
    assert not metadata_servable("sdist", pkg_info(metadata_version))


@pytest.mark.parametrize("metadata_version", ["2.2", "2.3", "2.4", "2.5"])
def test_static_sdist_metadata_is_served(metadata_version: str) -> None:
    assert metadata_servable("sdist", pkg_info(metadata_version))


@pytest.mark.parametrize(
    "dynamic",
    ["Requires-Dist", "requires-dist", "REQUIRES-DIST", "Requires-Python", "Provides-Extra",
     " requires-python "],
)
def test_dynamic_resolver_field_is_not_served(dynamic: str) -> None:
    assert not metadata_servable("sdist", pkg_info("2.2", "license", dynamic))


def test_resolver_fields_cover_what_pip_reads() -> None:
    assert {"requires-dist", "requires-python", "provides-extra"} <= RESOLVER_FIELDS


@pytest.mark.parametrize("dynamic", ["License-File", "license", "Description", "Classifier"])
def test_other_dynamic_fields_keep_metadata_served(dynamic: str) -> None:
    """setuptools writes ``Dynamic: license-file``; it changes nothing pip installs."""
    assert metadata_servable("sdist", pkg_info("2.4", dynamic))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe garbage",
        b"Name: demo\nVersion: 1.0\n",
        b"Metadata-Version: 2.2\nMetadata-Version: 2.2\nName: demo\nVersion: 1.0\n",
        b"Metadata-Version: 3.0\nName: demo\nVersion: 1.0\n",
        b"Metadata-Version: two\nName: demo\nVersion: 1.0\n",
        b"Metadata-Version: 2.\xd9\xa2\nName: demo\nVersion: 1.0\n",
    ],
    ids=["empty", "binary", "no-version", "two-versions", "future-major", "words", "non-ascii-digit"],
)
def test_unreadable_sdist_metadata_is_not_served(data: bytes) -> None:
    """reindex applies the rule to stored bytes, which may be anything."""
    assert not metadata_servable("sdist", data)


@pytest.mark.parametrize("metadata_version", ["2.0", "2.1", "2.4"])
def test_wheel_metadata_is_always_served(metadata_version: str) -> None:
    """A wheel's METADATA is what gets installed, Dynamic or not."""
    assert metadata_servable("wheel", pkg_info(metadata_version, "Requires-Dist"))


@pytest.mark.parametrize(
    ("metadata_version", "dynamic", "served"),
    [("1.0", (), False), ("2.1", (), False), ("2.2", (), True), ("2.2", ("Requires-Dist",), False),
     ("2.4", ("License-File",), True)],
)
def test_inspected_sdist_says_whether_its_metadata_is_served(
    tmp_path: Path, metadata_version: str, dynamic: tuple[str, ...], served: bool
) -> None:
    path = write_sdist(tmp_path, pkg_info=pkg_info(metadata_version, *dynamic))
    dist = inspect_file(path, path.name)
    assert dist.metadata_servable is served
    assert dist.metadata == pkg_info(metadata_version, *dynamic)  # still read, for the index


def test_inspected_wheel_metadata_is_served(tmp_path: Path) -> None:
    path = write_wheel(tmp_path, metadata=pkg_info("2.1"))
    assert inspect_file(path, path.name).metadata_servable
