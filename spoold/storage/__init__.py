"""Where published files and index pages live: a local directory or an S3 bucket.

:func:`open_storage` turns the ``--storage`` URL into a :class:`Storage`; the layout of
the tree is the same on every backend (see ``docs/architecture.md``, "Storage").
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from spoold.errors import ConfigError

from .base import Doc, InvalidKey, Page, Storage, StorageUnavailable, StoredObject

__all__ = [
    "Doc",
    "InvalidKey",
    "Page",
    "Storage",
    "StorageUnavailable",
    "StoredObject",
    "open_storage",
]


def open_storage(url: str | Path) -> Storage:
    """Open ``/path``, ``file:///path`` or ``s3://bucket/prefix``.

    Raises :class:`~spoold.errors.ConfigError` for a URL spoold cannot use. Nothing is
    contacted here (S3 credentials are resolved lazily by boto3); call ``ping()`` to check.
    """
    if isinstance(url, Path):
        from .local import LocalStorage

        return LocalStorage(url)
    text = url.strip()
    if not text:
        raise ConfigError("no storage configured: pass --storage PATH or s3://bucket/prefix")
    parts = urlsplit(text)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ConfigError(f"storage URL {url!r} has no bucket: use s3://bucket/prefix")
        if parts.query or parts.fragment:
            raise ConfigError(f"storage URL {url!r}: query and fragment are not supported")
        from .s3 import S3Storage

        return S3Storage(parts.netloc, unquote(parts.path))
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(
                f"storage URL {url!r} names a remote host; use file:///absolute/path"
            )
        from .local import LocalStorage

        return LocalStorage(Path(unquote(parts.path)))
    if parts.scheme and len(parts.scheme) > 1:  # a one-letter scheme is a Windows drive
        raise ConfigError(
            f"storage URL {url!r}: unsupported scheme {parts.scheme!r} "
            "(use a path, file:///path or s3://bucket/prefix)"
        )
    from .local import LocalStorage

    return LocalStorage(Path(text).expanduser())
