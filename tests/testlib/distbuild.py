"""Test helpers that make distributions: by hand (byte for byte, so tests can break them
on purpose) and with the real build backends.

Importable from any test module (``from distbuild import ...`` under pytest's default
import mode, or ``from tests.distbuild import ...`` with the repository root on
``sys.path``). Nothing here asserts; it only builds.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import os
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BACKENDS",
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


def metadata_text(
    name: str = "demo",
    version: str = "1.0",
    *,
    metadata_version: str = "2.1",
    summary: str | None = "A demo package",
    requires_python: str | None = None,
    extra: Iterable[tuple[str, str]] = (),
    body: str | None = None,
) -> str:
    """Core metadata in email form, as a build backend writes it."""
    lines = [f"Metadata-Version: {metadata_version}", f"Name: {name}", f"Version: {version}"]
    if summary is not None:
        lines.append(f"Summary: {summary}")
    if requires_python is not None:
        lines.append(f"Requires-Python: {requires_python}")
    lines.extend(f"{key}: {value}" for key, value in extra)
    text = "\n".join(lines) + "\n"
    if body is not None:
        text += "\n" + body
    return text


WHEEL_FILE = b"Wheel-Version: 1.0\nGenerator: spoold-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def record_for(members: Mapping[str, bytes], record_name: str) -> bytes:
    """A RECORD listing every member with its sha256 and size, and itself last."""
    out = io.StringIO()
    for name, data in members.items():
        if name == record_name or name.endswith("/"):
            continue
        out.write(f"{name},{_record_hash(data)},{len(data)}\n")
    out.write(f"{record_name},,\n")
    return out.getvalue().encode("utf-8")


def wheel_members(
    name: str = "demo",
    version: str = "1.0",
    *,
    files: Mapping[str, bytes] | None = None,
    metadata: bytes | str | None = None,
    wheel: bytes | None = WHEEL_FILE,
    dist_info: str | None = None,
    record: bool = True,
) -> dict[str, bytes]:
    """The members of a correct wheel (RECORD included), to be altered by a test."""
    dist_info = dist_info or f"{name.replace('-', '_')}-{version}.dist-info"
    members: dict[str, bytes] = dict(
        files if files is not None else {f"{name.replace('-', '_')}/__init__.py": b"x = 1\n"}
    )
    if metadata is None:
        metadata = metadata_text(name, version)
    if isinstance(metadata, str):
        metadata = metadata.encode("utf-8")
    members[f"{dist_info}/METADATA"] = metadata
    if wheel is not None:
        members[f"{dist_info}/WHEEL"] = wheel
    if record:
        record_name = f"{dist_info}/RECORD"
        members[record_name] = record_for(members, record_name)
    return members


def write_zip(
    path: Path,
    members: Mapping[str, bytes] | Iterable[tuple[str | zipfile.ZipInfo, bytes]],
    *,
    compression: int = zipfile.ZIP_DEFLATED,
    compresslevel: int | None = None,
) -> Path:
    items = members.items() if isinstance(members, Mapping) else members
    with zipfile.ZipFile(path, "w", compression=compression, compresslevel=compresslevel) as zf:
        for name, data in items:
            zf.writestr(name, data)
    return path


def write_wheel(
    directory: Path,
    name: str = "demo",
    version: str = "1.0",
    *,
    filename: str | None = None,
    members: Mapping[str, bytes] | None = None,
    **kwargs: object,
) -> Path:
    """A correct wheel (or *members* zipped under a wheel name); returns its path."""
    filename = filename or f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    if members is None:
        members = wheel_members(name, version, **kwargs)  # type: ignore[arg-type]
    return write_zip(directory / filename, members)


def write_tar_gz(
    path: Path,
    members: Iterable[tuple[tarfile.TarInfo, bytes | None]],
    *,
    compresslevel: int = 6,
) -> Path:
    """Write tar members exactly as given (names unchecked: tests make hostile ones)."""
    with open(path, "wb") as raw, tarfile.open(
        fileobj=raw, mode="w:gz", compresslevel=compresslevel, format=tarfile.PAX_FORMAT
    ) as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    return path


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    info.mtime = 1_700_000_000
    return info, data


def _dir(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info, None


def write_sdist(
    directory: Path,
    name: str = "demo",
    version: str = "1.0",
    *,
    pkg_info: bytes | str | None = None,
    top: str | None = None,
    files: Mapping[str, bytes] | None = None,
    extra: Iterable[tuple[tarfile.TarInfo, bytes | None]] = (),
    fmt: str = "tar.gz",
    filename: str | None = None,
    include_pkg_info: bool = True,
) -> Path:
    """A correct sdist ``{top}/PKG-INFO`` + files, plus raw *extra* tar members."""
    top = top or f"{name.replace('-', '_')}-{version}"
    if pkg_info is None:
        pkg_info = metadata_text(name, version)
    if isinstance(pkg_info, str):
        pkg_info = pkg_info.encode("utf-8")
    contents: dict[str, bytes] = {}
    if include_pkg_info:
        contents[f"{top}/PKG-INFO"] = pkg_info
    contents.update(
        files if files is not None else {f"{top}/setup.py": b"from setuptools import setup\nsetup()\n"}
    )
    filename = filename or f"{name.replace('-', '_')}-{version}.{fmt}"
    path = directory / filename
    if fmt == "zip":
        return write_zip(path, {f"{top}/": b"", **contents})
    entries: list[tuple[tarfile.TarInfo, bytes | None]] = [_dir(top)]
    entries += [_file(n, d) for n, d in contents.items()]
    entries += list(extra)
    return write_tar_gz(path, entries)


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
