"""What the web tests add to :mod:`spoold.testing`: a site with test settings, and upload
bodies exactly as twine builds them (requests-toolbelt, a test-only dependency).

The client, the Runs, the waiter and the in-memory storage are public
(:mod:`spoold.testing`); only the bits no user of spoold would want stay here.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

from requests_toolbelt import MultipartEncoder
from twisted.internet.testing import MemoryReactorClock

from spoold.config import Settings
from spoold.storage.memory import MemoryStorage
from spoold.testing.dists import build_wheel
from spoold.testing.run import run_now
from spoold.testing.waiter import FakeWaiter
from spoold.web.site import SpooldSite, WebPolicy, build_site


def make_site(
    tmp_path: Path,
    spool: Any,
    *,
    storage: Any = None,
    waiter: Any = None,
    auth: Any = None,
    max_upload: int = 1 << 30,
    policy: WebPolicy | None = None,
    reactor: MemoryReactorClock | None = None,
    run: Any = run_now,
    read: str = "public",
    admins: tuple[str, ...] = (),
) -> SpooldSite:
    """The whole site over ``spool``: empty in-memory storage, a waiter nobody answers,
    a fresh clock and synchronous blocking calls unless given. Reads are public unless
    ``read="private"`` (the tests of reads predate private reads; the access tests ask)."""
    return build_site(
        storage_reader=storage if storage is not None else MemoryStorage(),
        spool=spool,
        waiter=waiter if waiter is not None else FakeWaiter(),
        auth=auth,
        settings=Settings(spool=str(spool.root), storage=str(tmp_path / "storage"), max_upload=max_upload,
                          read=read, admins=admins),
        reactor=reactor if reactor is not None else MemoryReactorClock(),
        threadpool=None,
        policy=policy,
        run=run,
    )


def upload_form(
    filename: str,
    data: bytes,
    *,
    name: str | None = None,
    version: str | None = None,
    filetype: str | None = None,
    extra: list[tuple[str, Any]] | None = None,
    drop: tuple[str, ...] = (),
) -> tuple[bytes, str]:
    """A body and Content-Type exactly as twine 7 builds them (requests-toolbelt)."""
    guessed_name, guessed_version = filename.split("-")[:2]
    base: list[tuple[str, Any]] = [
        ("metadata_version", "2.1"),
        ("name", name if name is not None else guessed_name),
        ("version", version if version is not None else guessed_version.removesuffix(".tar.gz")),
        ("classifiers", "Programming Language :: Python :: 3"),
        ("classifiers", "License :: OSI Approved :: MIT License"),
        ("description", "# A readme\n\n" + "long text " * 12_000),
        ("pyversion", "py3" if filename.endswith(".whl") else "source"),
        ("filetype", filetype if filetype is not None else
         ("bdist_wheel" if filename.endswith(".whl") else "sdist")),
        ("sha256_digest", hashlib.sha256(data).hexdigest()),
        ("blake2_256_digest", hashlib.blake2b(data, digest_size=32).hexdigest()),
        (":action", "file_upload"),
        ("protocol_version", "1"),
    ]
    fields = [(k, v) for k, v in base if k not in drop] + list(extra or [])
    if "content" not in drop:  # last, as twine sends it
        fields.append(("content", (filename, io.BytesIO(data), "application/octet-stream")))
    encoder = MultipartEncoder(fields)
    return encoder.to_string(), encoder.content_type


def wheel(name: str = "demo", version: str = "1.0") -> tuple[str, bytes]:
    filename, data, _ = build_wheel(name, version)
    return filename, data
