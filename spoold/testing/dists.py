"""Helpers for testing code that publishes: distributions built by hand and a checkpoint
that pauses a writer where another one could interleave.

Shipped in the package (like ``treq.testing``) because the worker's and the web layer's
tests need the same things.
"""

from __future__ import annotations

import base64
import hashlib
import io
import threading
import zipfile
from pathlib import Path

from packaging.utils import canonicalize_name

from spoold.inspection.distribution import Distribution

__all__ = ["Pause", "build_wheel", "make_distribution", "publish_worker"]


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def build_wheel(
    name: str,
    version: str,
    *,
    requires_python: str | None = None,
    payload: bytes = b"",
) -> tuple[str, bytes, bytes]:
    """A minimal valid pure-Python wheel: ``(filename, wheel bytes, METADATA bytes)``.

    Deterministic (fixed timestamps), so equal arguments give equal bytes.
    """
    dist = canonicalize_name(name).replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    if requires_python:
        metadata += f"Requires-Python: {requires_python}\n"
    members = {
        f"{dist}/__init__.py": b"# generated for tests\n" + payload,
        f"{info}/METADATA": metadata.encode(),
        f"{info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: spoold-tests\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        ),
    }
    record = "".join(f"{n},{_record_hash(d)},{len(d)}\n" for n, d in members.items())
    record += f"{info}/RECORD,,\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in [*members.items(), (f"{info}/RECORD", record.encode())]:
            archive.writestr(zipfile.ZipInfo(member, date_time=(2020, 1, 1, 0, 0, 0)), data)
    return f"{dist}-{version}-py3-none-any.whl", buffer.getvalue(), metadata.encode()


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


def publish_worker(storage_url: str, jobs: list[tuple[str, str]], start: object) -> None:
    """Child-process entry point for concurrency tests: publish ``(name, version)`` jobs.

    ``start`` is a multiprocessing Event every child waits on, so all begin together.
    """
    import tempfile

    from spoold.index import publish
    from spoold.storage import open_storage

    storage = open_storage(storage_url)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = [make_distribution(n, v, Path(tmp)) for n, v in jobs]
        start.wait(60)  # type: ignore[attr-defined]
        for dist, path in prepared:
            publish(storage, dist, path)
