"""Distributions as real tools make them must be accepted, with the right fields.

The four build backends are run once per module (in parallel, ``--no-isolation``), and
sdists with every Metadata-Version from 1.0 to 2.4 are written the way the tools of each
era wrote them, warts included (Classifier under 1.0, License-File under 2.1).
"""

from __future__ import annotations

import hashlib
import tarfile
import zipfile
from pathlib import Path

import pytest

from testlib.distbuild import (
    BACKENDS,
    metadata_text,
    setuptools_can_build_wheels,
    start_backend_build,
    wheel_members,
    write_sdist,
    write_zip,
)
from spoold.inspection.distribution import Distribution
from spoold.inspection.inspect import inspect_file

PROJECTS = {
    "setuptools": ("demo-setuptools", "demo-setuptools"),
    "hatchling": ("demo-hatchling", "demo-hatchling"),
    "flit_core": ("demo-flit", "demo_flit"),
    "poetry-core": ("demo-poetry", "demo-poetry"),
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    workdir = tmp_path_factory.mktemp("backends")
    builds = [
        start_backend_build(
            label, workdir, wheel=label != "setuptools" or setuptools_can_build_wheels()
        )
        for label in BACKENDS
    ]
    return {build.label: build.wait() for build in builds}


def check(dist: Distribution, path: Path, project: str, kind: str) -> None:
    data = path.read_bytes()
    assert dist.filename == path.name
    assert dist.project == project
    assert dist.version == "1.2.3"
    assert dist.kind == kind
    assert dist.size == len(data)
    assert dist.sha256 == hashlib.sha256(data).hexdigest()
    assert dist.blake2_256 == hashlib.blake2b(data, digest_size=32).hexdigest()
    assert dist.metadata_sha256 == hashlib.sha256(dist.metadata).hexdigest()
    assert dist.requires_python == ">=3.8"
    assert dist.summary is not None and "for spoold's tests" in dist.summary


@pytest.mark.timeout(180)
@pytest.mark.parametrize("label", sorted(BACKENDS))
@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_backend_output_is_accepted(built: dict[str, dict[str, Path]], label: str, kind: str) -> None:
    if kind not in built[label]:
        pytest.skip("setuptools < 70.1 without the 'wheel' package cannot build wheels")
    path = built[label][kind]
    project, name = PROJECTS[label]
    data = path.read_bytes()
    declared = {
        "sha256_digest": hashlib.sha256(data).hexdigest(),
        "md5_digest": hashlib.md5(data).hexdigest(),
        "blake2_256_digest": hashlib.blake2b(data, digest_size=32).hexdigest(),
    }
    dist = inspect_file(path, path.name, declared=declared)
    check(dist, path, project, kind)
    assert dist.name == name
    # The stored metadata is byte for byte the file inside the archive.
    assert dist.metadata == _metadata_member(path)


def _metadata_member(path: Path) -> bytes:
    if path.name.endswith(".whl"):
        with zipfile.ZipFile(path) as zf:
            (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
            return zf.read(name)
    with tarfile.open(path) as tf:
        (member,) = [m for m in tf.getmembers() if m.name.count("/") == 1 and m.name.endswith("/PKG-INFO")]
        extracted = tf.extractfile(member)
        assert extracted is not None
        return extracted.read()


# -- every Metadata-Version, as the tools of the time wrote it -------------------------

LEGACY_DESCRIPTION = "Description: A long description\n        with continuation lines\n        and   indentation.\n"

ERAS: dict[str, str] = {
    # distutils, 2000s: Classifier (a 1.1 field) under 1.0, Platform UNKNOWN.
    "1.0": (
        "Metadata-Version: 1.0\nName: Old.Package\nVersion: 0.9b1\nSummary: An old package\n"
        "Home-page: http://example.invalid/\nAuthor: Someone\nAuthor-email: someone@example.invalid\n"
        "License: UNKNOWN\n" + LEGACY_DESCRIPTION + "Platform: UNKNOWN\n"
        "Classifier: Programming Language :: Python :: 2\n"
    ),
    "1.1": (
        "Metadata-Version: 1.1\nName: Old.Package\nVersion: 0.9b1\nSummary: An old package\n"
        "Home-page: UNKNOWN\nAuthor: UNKNOWN\nAuthor-email: UNKNOWN\nLicense: UNKNOWN\n"
        "Download-URL: http://example.invalid/old.tar.gz\n" + LEGACY_DESCRIPTION
        + "Platform: UNKNOWN\nClassifier: Programming Language :: Python\nRequires: os\nProvides: old\n"
    ),
    "1.2": (
        "Metadata-Version: 1.2\nName: Old.Package\nVersion: 0.9b1\nSummary: An old package\n"
        "Author: Someone\nMaintainer: Else\nLicense: MIT\nRequires-Python: >=2.7, !=3.0.*\n"
        "Requires-Dist: six (>=1.0)\nProject-URL: Source, https://example.invalid/src\n"
        "Classifier: Programming Language :: Python\n"
    ),
    # setuptools 56-69: License-File (a 2.4 field) under 2.1; description as the body.
    "2.1": (
        "Metadata-Version: 2.1\nName: old.package\nVersion: 0.9b1\nSummary: An old package\n"
        "Home-page: https://example.invalid/\nLicense: MIT\nRequires-Python: >=3.7\n"
        "Description-Content-Type: text/markdown\nLicense-File: LICENSE\nProvides-Extra: test\n"
        "Requires-Dist: pytest ; extra == 'test'\n\n# Old package\n\nThe long description.\n"
    ),
    "2.2": (
        "Metadata-Version: 2.2\nName: old.package\nVersion: 0.9b1\nSummary: An old package\n"
        "Requires-Python: >=3.8\nDynamic: license\nLicense-File: LICENSE\n\nBody.\n"
    ),
    "2.3": (
        "Metadata-Version: 2.3\nName: old.package\nVersion: 0.9b1\nSummary: An old package\n"
        "Requires-Python: >=3.8\nRequires-Dist: attrs>=20\nDescription-Content-Type: text/x-rst\n\nBody.\n"
    ),
    "2.4": (
        "Metadata-Version: 2.4\nName: old.package\nVersion: 0.9b1\nSummary: An old package\n"
        "Requires-Python: >=3.8\nLicense-Expression: MIT OR Apache-2.0\nLicense-File: LICENSE\n"
        "License-File: NOTICE\nRequires-Dist: attrs>=20\n\nBody.\n"
    ),
}


@pytest.mark.parametrize("metadata_version", sorted(ERAS))
@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
def test_sdist_of_every_metadata_version(tmp_path: Path, metadata_version: str, fmt: str) -> None:
    pkg_info = ERAS[metadata_version]
    path = write_sdist(tmp_path, "Old.Package", "0.9b1", pkg_info=pkg_info, fmt=fmt,
                       filename=f"Old.Package-0.9b1.{fmt}")
    dist = inspect_file(path, path.name)
    assert dist.project == "old-package"
    assert dist.version == "0.9b1"
    assert dist.kind == "sdist"
    assert dist.summary == "An old package"
    assert dist.metadata == pkg_info.encode()
    expected_python = {"1.2": ">=2.7, !=3.0.*", "2.1": ">=3.7"}.get(
        metadata_version, None if metadata_version in ("1.0", "1.1") else ">=3.8"
    )
    assert dist.requires_python == expected_python


def test_wheel_with_metadata_2_0_from_old_bdist_wheel(tmp_path: Path) -> None:
    metadata = metadata_text("demo", "1.0", metadata_version="2.0", extra=[("Requires-Dist", "six")])
    path = write_zip(tmp_path / "demo-1.0-py2.py3-none-any.whl", wheel_members(metadata=metadata))
    assert inspect_file(path, path.name).version == "1.0"


def test_pep625_normalized_sdist_name(tmp_path: Path) -> None:
    path = write_sdist(tmp_path, "My.Project", "1.0", pkg_info=metadata_text("My.Project", "1.0"),
                       top="my_project-1.0", filename="my_project-1.0.tar.gz")
    dist = inspect_file(path, path.name)
    assert (dist.project, dist.name) == ("my-project", "My.Project")


def test_wheel_with_build_tag_and_platform_tags(tmp_path: Path) -> None:
    name = "demo-1.0-1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    path = write_zip(tmp_path / name, wheel_members())
    assert inspect_file(path, name).kind == "wheel"


def test_tar_written_with_dot_prefix(tmp_path: Path) -> None:
    """``tar czf demo-1.0.tar.gz ./demo-1.0`` stores ./demo-1.0/...; still one top dir."""
    entries = []
    for name, data in [("./demo-1.0/PKG-INFO", metadata_text().encode()), ("./demo-1.0/setup.py", b"")]:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        entries.append((info, data))
    from testlib.distbuild import write_tar_gz

    path = write_tar_gz(tmp_path / "demo-1.0.tar.gz", entries)
    assert inspect_file(path, path.name).project == "demo"


def test_sdist_with_contained_symlinks(tmp_path: Path) -> None:
    links = []
    for name, target in [("demo-1.0/docs/LICENSE", "../LICENSE"), ("demo-1.0/alias", "setup.py")]:
        info = tarfile.TarInfo(name)
        info.type = tarfile.SYMTYPE
        info.linkname = target
        links.append((info, None))
    hard = tarfile.TarInfo("demo-1.0/setup2.py")
    hard.type = tarfile.LNKTYPE
    hard.linkname = "demo-1.0/setup.py"
    path = write_sdist(tmp_path, extra=[*links, (hard, None)])
    assert inspect_file(path, path.name).kind == "sdist"
