"""Distributions built by hand, byte for byte, for tests (spoold's own and its users').

The one builder of test distributions: correct wheels and sdists by default, every part
overridable so a test can break one on purpose (a RECORD that lies, a PKG-INFO of another
Metadata-Version, hostile tar members). Plus :class:`Pause`, a storage checkpoint that
stops a writer where another one could interleave.

Nothing here asserts; it only builds.
"""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import threading
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from packaging.utils import canonicalize_name

from spoold.inspection.distribution import Distribution

__all__ = [
    "WHEEL_FILE",
    "Pause",
    "build_wheel",
    "make_distribution",
    "metadata_text",
    "record_for",
    "wheel_members",
    "write_sdist",
    "write_tar_gz",
    "write_wheel",
    "write_zip",
    "zip_bytes",
]

#: Fixed timestamps make equal arguments give equal bytes.
FIXED_TIME = (2020, 1, 1, 0, 0, 0)


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


def zip_bytes(
    members: Mapping[str, bytes] | Iterable[tuple[str | zipfile.ZipInfo, bytes]],
    *,
    compression: int = zipfile.ZIP_DEFLATED,
    compresslevel: int | None = None,
    deterministic: bool = False,
) -> bytes:
    """The members zipped, in order (``deterministic``: fixed timestamps)."""
    items = members.items() if isinstance(members, Mapping) else members
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression, compresslevel=compresslevel) as zf:
        for name, data in items:
            if deterministic and isinstance(name, str):
                name = zipfile.ZipInfo(name, date_time=FIXED_TIME)
                name.compress_type = compression
            zf.writestr(name, data)
    return buffer.getvalue()


def write_zip(
    path: Path,
    members: Mapping[str, bytes] | Iterable[tuple[str | zipfile.ZipInfo, bytes]],
    *,
    compression: int = zipfile.ZIP_DEFLATED,
    compresslevel: int | None = None,
) -> Path:
    path.write_bytes(zip_bytes(members, compression=compression, compresslevel=compresslevel))
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


def build_wheel(
    name: str,
    version: str,
    *,
    requires_python: str | None = None,
    payload: bytes = b"",
) -> tuple[str, bytes, bytes]:
    """A minimal valid pure-Python wheel: ``(filename, wheel bytes, METADATA bytes)``.

    Deterministic (fixed timestamps), so equal arguments give equal bytes; ``payload``
    changes the bytes (a second wheel of the same name with other contents).
    """
    dist = canonicalize_name(name).replace("-", "_")
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    if requires_python:
        metadata += f"Requires-Python: {requires_python}\n"
    members = wheel_members(
        dist, version, metadata=metadata,
        files={f"{dist}/__init__.py": b"# generated for tests\n" + payload},
    )
    return f"{dist}-{version}-py3-none-any.whl", zip_bytes(members, deterministic=True), metadata.encode()


def make_distribution(
    name: str,
    version: str,
    directory: Path,
    *,
    requires_python: str | None = None,
    payload: bytes = b"",
) -> tuple[Distribution, Path]:
    """Write a wheel into ``directory`` and describe it as inspection would."""
    filename, data, metadata = build_wheel(
        name, version, requires_python=requires_python, payload=payload
    )
    path = Path(directory) / filename
    path.write_bytes(data)
    dist = Distribution(
        filename=filename,
        project=canonicalize_name(name),
        name=name,
        version=version,
        kind="wheel",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        blake2_256=hashlib.blake2b(data, digest_size=32).hexdigest(),
        metadata=metadata,
        metadata_sha256=hashlib.sha256(metadata).hexdigest(),
        requires_python=requires_python,
    )
    return dist, path


class Pause:
    """A checkpoint (``storage.checkpoint = Pause(...)``) that stops the first thread to
    reach ``event`` (for ``key``, if given) until :meth:`release` is called.

    ``reached`` is set when the thread is parked, so a test can run another writer to
    completion in between: a deterministic interleaving, no sleeps.
    """

    def __init__(self, event: str, key: str | None = None, *, timeout: float = 30) -> None:
        self.event = event
        self.key = key
        self.timeout = timeout
        self.reached = threading.Event()
        self._release = threading.Event()
        self._armed = True
        self._lock = threading.Lock()
        self.seen: list[tuple[str, str]] = []

    def __call__(self, event: str, key: str) -> None:
        self.seen.append((event, key))
        with self._lock:
            hit = self._armed and event == self.event and self.key in (None, key)
            if hit:
                self._armed = False
        if hit:
            self.reached.set()
            if not self._release.wait(self.timeout):
                raise TimeoutError(f"Pause at {event} {key} was never released")

    def release(self) -> None:
        self._release.set()
