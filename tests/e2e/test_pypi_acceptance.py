"""Real distributions from PyPI, of every era and build backend, are accepted and install.

Each file is downloaded once with ``pip download`` into a cache that survives between runs
(:mod:`testlib.pypicache`; about 68 MB in all), then must pass
:func:`~spoold.inspection.inspect.inspect_file` with its ``.metadata`` byte for byte the
archive's own METADATA / PKG-INFO, and be served as PEP 658 metadata exactly when it may
be. All are then published into a local storage, served on 127.0.0.1, and a
representative few installed from it with ``pip install --no-deps --target``.

If PyPI cannot be reached (and the cache is empty) the tests fail, saying so: they are the
proof that spoold refuses no real package, and a skip would hide a regression.
"""

from __future__ import annotations

import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from spoold.index import publish
from spoold.inspection import Distribution, inspect_file
from spoold.storage.local import LocalStorage
from testlib.pypicache import CPYTHON_311_MANYLINUX, PyPIUnreachable, Wanted, fetch_all
from testlib.staticindex import Served, run_pip, serve_tree

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def wheel(requirement: str, platform: bool = False) -> Wanted:
    return Wanted(requirement, "wheel", platform)


def sdist(requirement: str) -> Wanted:
    return Wanted(requirement, "sdist")


#: Each distribution, and why it is here. For sdists: whether their PKG-INFO binds
#: (PEP 643), hence is served as ``.metadata``.
REAL: dict[Wanted, tuple[str, bool]] = {
    # manylinux wheels with bundled, auditwheel-padded libraries
    wheel("pillow==13.0.0", True): ("libXau padded to 224:1; once refused as a zip bomb", True),
    wheel("numpy==2.3.5", True): ("meson-python; OpenBLAS bundled in numpy.libs", True),
    wheel("scipy==1.15.3", True): ("38 MB, 120 MB inflated; bundled gfortran/OpenBLAS", True),
    wheel("psycopg2-binary==2.9.10", True): ("auditwheel-bundled libpq and OpenSSL", True),
    wheel("pyzmq==26.2.0", True): ("scikit-build-core; bundled libzmq", True),
    wheel("rpds-py==0.22.3", True): ("maturin; Metadata-Version 2.4", True),
    # pure wheels from each backend and era
    wheel("tomli==2.0.1"): ("flit_core", True),
    wheel("iniconfig==2.0.0"): ("hatchling", True),
    wheel("tomlkit==0.12.5"): ("poetry-core", True),
    wheel("pdm-backend==2.4.3"): ("pdm-backend", True),
    wheel("six==1.10.0"): ("bdist_wheel of 2015: Metadata-Version 2.0", True),
    wheel("requests==2.10.0"): ("bdist_wheel of 2016: Metadata-Version 2.0", True),
    wheel("wheel==0.31.0"): ("2018: Metadata-Version 2.1", True),
    # sdists of every Metadata-Version, .zip and .tar.gz
    sdist("PyYAML==3.10"): (".zip sdist, distutils: Metadata-Version 1.0", False),
    sdist("wincertstore==0.2"): (".zip sdist: Metadata-Version 1.1", False),
    sdist("six==1.4.1"): ("2013 setuptools: Metadata-Version 1.1", False),
    sdist("py==1.5.2"): ("Metadata-Version 1.2 with Description-Content-Type: UNKNOWN", False),
    sdist("pluggy==0.6.0"): ("Metadata-Version 1.2 with Description-Content-Type: UNKNOWN", False),
    sdist("six==1.17.0"): ("setuptools: Metadata-Version 2.1", False),
    sdist("psutil==7.0.0"): ("Metadata-Version 2.2, Provides-Extra and more Dynamic", False),
    sdist("packaging==24.2"): ("flit_core: Metadata-Version 2.3, nothing Dynamic", True),
    sdist("charset-normalizer==3.4.2"): ("Metadata-Version 2.4, only License-File Dynamic", True),
}

#: Installed from the served index: (wanted, a name the install puts in --target).
INSTALLED = [
    (wheel("pillow==13.0.0", True), "PIL"),
    (wheel("six==1.10.0"), "six.py"),
    (wheel("tomli==2.0.1"), "tomli"),
    (sdist("wincertstore==0.2"), "wincertstore.py"),
    (sdist("six==1.4.1"), "six.py"),
    (sdist("pluggy==0.6.0"), "pluggy"),
    (sdist("packaging==24.2"), "packaging"),
]


@pytest.fixture(scope="module")
def files() -> dict[Wanted, Path]:
    try:
        return fetch_all(REAL)
    except PyPIUnreachable as exc:
        pytest.fail(f"PyPI was unreachable: {exc}", pytrace=False)


@pytest.fixture(scope="module")
def inspected(files: dict[Wanted, Path]) -> dict[Wanted, Distribution]:
    return {wanted: inspect_file(path, path.name) for wanted, path in files.items()}


def core_metadata_member(path: Path) -> bytes:
    """METADATA / PKG-INFO read with the standard library, as any tool would."""
    if path.name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if n.count("/") == 1 and (
                n.endswith(".dist-info/METADATA") if path.name.endswith(".whl") else n.endswith("/PKG-INFO"))]
            (name,) = names
            return zf.read(name)
    with tarfile.open(path) as tf:
        (member,) = [m for m in tf.getmembers() if m.name.count("/") == 1 and m.name.endswith("/PKG-INFO")]
        extracted = tf.extractfile(member)
        assert extracted is not None
        return extracted.read()


@pytest.mark.parametrize("wanted", list(REAL), ids=lambda w: w.key)
def test_real_distribution_is_accepted(files: dict[Wanted, Path], inspected: dict[Wanted, Distribution],
                                       wanted: Wanted) -> None:
    path, dist = files[wanted], inspected[wanted]
    assert dist.filename == path.name and dist.size == path.stat().st_size
    assert dist.kind == wanted.kind
    assert dist.metadata == core_metadata_member(path)
    assert dist.metadata_servable is REAL[wanted][1]
    if wanted.kind == "sdist" and ".zip" in REAL[wanted][0]:
        assert path.name.endswith(".zip")


@pytest.fixture(scope="module")
def served(files: dict[Wanted, Path], inspected: dict[Wanted, Distribution],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    storage = LocalStorage(tmp_path_factory.mktemp("pypi-index") / "store")
    for wanted, dist in inspected.items():
        publish(storage, dist, files[wanted])
    for wanted, dist in inspected.items():  # what was served is the archive's own file
        stored = storage.read_bytes(f"packages/{dist.project}/{dist.filename}.metadata")
        assert stored == (dist.metadata if dist.metadata_servable else None), wanted
    with serve_tree(storage.root) as running:
        yield running


@pytest.mark.parametrize(("wanted", "installs"), INSTALLED, ids=[w.key for w, _ in INSTALLED])
def test_real_distribution_installs_from_the_index(
    served: Served, inspected: dict[Wanted, Distribution], tmp_path: Path, wanted: Wanted, installs: str
) -> None:
    dist = inspected[wanted]
    selection = (list(CPYTHON_311_MANYLINUX) if wanted.platform
                 else ["--only-binary", ":all:"] if wanted.kind == "wheel"
                 else ["--no-binary", wanted.project, "--no-build-isolation"])
    del served.requests[:]
    result = run_pip("install", "--no-deps", "--no-cache-dir", "--index-url", served.index_url,
                     "--target", str(tmp_path / "target"), *selection, wanted.requirement, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "target" / installs).exists(), sorted(p.name for p in (tmp_path / "target").iterdir())
    assert any(p.endswith(f"/{dist.filename}") for p in served.requests)
    fetched_metadata = any(p.endswith(f"/{dist.filename}.metadata") for p in served.requests)
    assert fetched_metadata is dist.metadata_servable
