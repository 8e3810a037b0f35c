"""Test helpers that make distributions: by hand (re-exported from the one builder,
:mod:`spoold.testing.dists`) and with the real build backends (setuptools, hatchling,
flit_core, poetry-core), run in subprocesses.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from spoold.testing.dists import (
    WHEEL_FILE,
    metadata_text,
    record_for,
    wheel_members,
    write_sdist,
    write_tar_gz,
    write_wheel,
    write_zip,
)

__all__ = [
    "BACKENDS",
    "WHEEL_FILE",
    "Build",
    "metadata_text",
    "record_for",
    "setuptools_can_build_wheels",
    "start_backend_build",
    "wheel_members",
    "write_sdist",
    "write_tar_gz",
    "write_wheel",
    "write_zip",
]


# -- real build backends ---------------------------------------------------------------


def setuptools_can_build_wheels() -> bool:
    """setuptools < 70.1 needs the separate ``wheel`` package for bdist_wheel."""
    import setuptools

    major, minor = (int(x) for x in setuptools.__version__.split(".")[:2])
    return (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None


_PYPROJECT = """\
[build-system]
requires = [{requires!r}]
build-backend = {backend!r}

[project]
name = {name!r}
version = "1.2.3"
description = "Built by {label} for spoold's tests"
requires-python = ">=3.8"
dependencies = ["packaging>=20"]
{extra}
"""

#: label -> (requirement, build backend, project name, extra pyproject text)
BACKENDS: dict[str, tuple[str, str, str, str]] = {
    "setuptools": ("setuptools", "setuptools.build_meta", "demo-setuptools", ""),
    "hatchling": ("hatchling", "hatchling.build", "demo-hatchling", ""),
    "flit_core": ("flit_core", "flit_core.buildapi", "demo_flit", ""),
    "poetry-core": (
        "poetry-core",
        "poetry.core.masonry.api",
        "demo-poetry",
        '\n[tool.poetry]\npackages = [{include = "demo_poetry"}]\n',
    ),
}


@dataclass
class Build:
    """A backend build running in a subprocess; ``wait()`` returns the artifacts."""

    label: str
    outdir: Path
    process: subprocess.Popen[bytes]
    wants_wheel: bool

    def wait(self, timeout: float = 120) -> dict[str, Path]:
        output, _ = self.process.communicate(timeout=timeout)
        if self.process.returncode != 0:
            raise RuntimeError(
                f"{self.label} build failed:\n{output.decode('utf-8', 'replace')[-4000:]}"
            )
        found = {"sdist": next(self.outdir.glob("*.tar.gz"))}
        if self.wants_wheel:
            found["wheel"] = next(self.outdir.glob("*.whl"))
        return found


def start_backend_build(label: str, workdir: Path, *, wheel: bool = True) -> Build:
    """Write a tiny project for *label* and start ``python -m build --no-isolation``."""
    requires, backend, name, extra = BACKENDS[label]
    project = workdir / f"project-{label}"
    package = project / name.replace("-", "_")
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""A demo package."""\n\n__version__ = "1.2.3"\n')
    (project / "README.md").write_text("# demo\n")
    (project / "pyproject.toml").write_text(
        _PYPROJECT.format(requires=requires, backend=backend, name=name, label=label, extra=extra)
    )
    outdir = workdir / f"dist-{label}"
    command = [sys.executable, "-m", "build", "--no-isolation", "--skip-dependency-check",
               "--sdist", "--outdir", str(outdir), str(project)]
    if wheel:
        command.insert(-3, "--wheel")
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", SOURCE_DATE_EPOCH="1700000000")
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=workdir
    )
    return Build(label, outdir, process, wheel)


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")
