"""pip never installs a package without its dependencies because of a ``.metadata`` file.

The sdist ``hidden-1.0.tar.gz`` carries a Metadata-Version 2.1 PKG-INFO without
Requires-Dist, while its build (a tiny in-tree PEP 517 backend, so nothing is downloaded)
declares ``Requires-Dist: needed``, as setuptools-era sdists did. Had spoold served that
PKG-INFO as ``hidden-1.0.tar.gz.metadata``, pip would resolve from it, install ``hidden``
alone, and ``pip check`` would fail. It must instead build the sdist, see the dependency
and install ``needed`` from the index too. A Metadata-Version 2.2 sdist whose PKG-INFO
binds (PEP 643) keeps its ``.metadata``, and pip resolves from it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from spoold.index import publish
from spoold.inspection import inspect_file
from spoold.storage.local import LocalStorage
from spoold.testing.dists import make_distribution, metadata_text, write_sdist
from testlib.staticindex import run_pip, serve_tree

BACKEND = '''\
"""A PEP 517 backend whose wheel declares what its sdist's PKG-INFO does not."""
import base64, hashlib, os, zipfile

NAME, VERSION = {name!r}, "1.0"
DIST_INFO = NAME + "-" + VERSION + ".dist-info"
METADATA = {metadata!r}
WHEEL = "Wheel-Version: 1.0\\nGenerator: spoold-tests\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"


def _record_hash(data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    os.makedirs(os.path.join(metadata_directory, DIST_INFO))
    with open(os.path.join(metadata_directory, DIST_INFO, "METADATA"), "w") as f:
        f.write(METADATA)
    return DIST_INFO


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    files = {{
        NAME + ".py": b"import needed\\n",
        DIST_INFO + "/METADATA": METADATA.encode(),
        DIST_INFO + "/WHEEL": WHEEL.encode(),
    }}
    record = "".join(f"{{p}},{{_record_hash(d)}},{{len(d)}}\\n" for p, d in files.items())
    filename = NAME + "-" + VERSION + "-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
        zf.writestr(DIST_INFO + "/RECORD", record + DIST_INFO + "/RECORD,,\\n")
    return filename
'''

PYPROJECT = b'[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'


def hiding_sdist(directory: Path, name: str, pkg_info_version: str) -> Path:
    """An sdist whose build needs ``needed``; its PKG-INFO says so only from 2.2 on."""
    built = metadata_text(name, "1.0", metadata_version="2.1", extra=[("Requires-Dist", "needed")])
    declared = [("Requires-Dist", "needed")] if pkg_info_version != "2.1" else []
    pkg_info = metadata_text(name, "1.0", metadata_version=pkg_info_version, extra=declared)
    top = f"{name}-1.0"
    files = {
        f"{top}/pyproject.toml": PYPROJECT,
        f"{top}/backend.py": BACKEND.format(name=name, metadata=built).encode(),
    }
    return write_sdist(directory, name, "1.0", pkg_info=pkg_info, files=files)


@pytest.fixture
def index(tmp_path: Path) -> LocalStorage:
    storage = LocalStorage(tmp_path / "store")
    needed, needed_path = make_distribution("needed", "1.0", tmp_path)
    publish(storage, needed, needed_path)
    for name, version in [("hidden", "2.1"), ("declared", "2.2")]:
        (tmp_path / name).mkdir()
        path = hiding_sdist(tmp_path / name, name, version)
        dist = inspect_file(path, path.name)
        assert dist.metadata_servable is (version == "2.2")
        publish(storage, dist, path)
    return storage


def fresh_venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    return path / "bin" / "python"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("project", ["hidden", "declared"])
def test_pip_installs_sdist_dependencies(index: LocalStorage, tmp_path: Path, project: str) -> None:
    python = fresh_venv(tmp_path / "venv")
    with serve_tree(index.root) as served:
        install = run_pip("--python", str(python), "install", "--no-cache-dir",
                          "--index-url", served.index_url, project)
        assert install.returncode == 0, install.stdout + install.stderr
        metadata_requested = any(p.endswith(f"/{project}-1.0.tar.gz.metadata") for p in served.requests)
    check = run_pip("--python", str(python), "check")
    assert check.returncode == 0, check.stdout + check.stderr
    installed = run_pip("--python", str(python), "list", "--format=freeze")
    assert {f"{project}==1.0", "needed==1.0"} <= set(installed.stdout.split()), installed.stdout
    # The binding PKG-INFO is served and used; the other one is not even offered.
    assert metadata_requested is (project == "declared")
    imported = subprocess.run([str(python), "-c", f"import {project}"], capture_output=True, text=True,
                              timeout=60, check=False)
    assert imported.returncode == 0, imported.stderr
