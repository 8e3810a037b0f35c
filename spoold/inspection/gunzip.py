"""The gzip layer of a ``.tar.gz``: exactly one gzip member, counted as it inflates.

:class:`gzip.GzipFile` reads concatenated gzip members as one stream and skips zero
bytes after them, as ``gzip -d`` does; tar readers then see a second tar where others see
the end of the first. So a ``.tar.gz`` holding a second member could show one set of
files to a reviewer and install another. :class:`GzipMember` inflates a single member
with :mod:`zlib` (which checks the header, the CRC and the length), counts every
inflated byte against :class:`~spoold.inspection.archive.Limits` as it comes out, and,
when :meth:`GzipMember.finish` is called, refuses anything after the member.

It also remembers the last :data:`WINDOW` bytes it handed out: a tar reader reads ahead,
and the bytes after the tar's end-of-archive blocks may already sit in its buffer, so
:meth:`GzipMember.check_zeros_from` checks them from there.
"""

from __future__ import annotations

import io
import zlib
from collections import deque
from typing import BinaryIO

from spoold.inspection.archive import READ_CHUNK, ArchiveLimits, InvalidArchive, Limits

__all__ = ["WINDOW", "GzipMember"]

#: How many of the latest inflated bytes are kept; far more than a tar reader reads ahead.
WINDOW = 1 << 20
#: Compressed bytes read at a time (small: a huge header is refused before much is read).
_SOURCE_CHUNK = 1 << 16
_MAGIC = b"\x1f\x8b"
#: zlib's words for a bad trailer, in the words gzip users know.
_ZLIB_MESSAGES = {"incorrect data check": "CRC check failed", "incorrect length check": "length check failed"}


def invalid_tar_gz(detail: str) -> InvalidArchive:
    return InvalidArchive(
        f"The file is not a valid .tar.gz archive ({detail}); it is truncated, corrupt or "
        "not gzip-compressed tar. Upload the complete file again."
    )


class GzipMember(io.RawIOBase):
    """The inflated bytes of the one gzip member at the start of *source*."""

    def __init__(self, source: BinaryIO, archive_size: int, limits: Limits) -> None:
        self._source = source
        self._archive_size = max(archive_size, 1)
        self._limits = limits
        self._inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        self._pending = b""
        self._started = False
        #: Inflated bytes handed out so far.
        self.total = 0
        self._recent: deque[bytes] = deque()
        self._recent_size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        while len(view) and not self._inflate.eof:
            if not self._pending:
                self._pending = self._read_source()
            try:
                out = self._inflate.decompress(self._pending, len(view))
            except zlib.error as exc:
                text = str(exc).rpartition(": ")[2]
                raise invalid_tar_gz(f"{_ZLIB_MESSAGES.get(text, text)}: {exc}") from None
            self._pending = self._inflate.unconsumed_tail
            if out:
                view[: len(out)] = out
                self._count(out)
                return len(out)
        return 0

    def _read_source(self) -> bytes:
        data = self._source.read(_SOURCE_CHUNK)
        if not self._started:
            self._started = True
            if data[:2] != _MAGIC:
                raise invalid_tar_gz(f"Not a gzipped file ({data[:2]!r})")
        if not data:
            raise invalid_tar_gz("Compressed file ended before the end-of-stream marker was reached")
        return data

    def _count(self, out: bytes) -> None:
        self.total += len(out)
        limits = self._limits
        if self.total > limits.max_uncompressed:
            raise ArchiveLimits(
                f"The archive inflates to more than {limits.max_uncompressed} bytes, the most "
                "accepted (the max_uncompressed setting). Leave data out of the distribution."
            )
        if (limits.max_ratio and self.total > limits.ratio_min_size
                and self.total > limits.max_ratio * self._archive_size):
            raise ArchiveLimits(
                f"The archive inflates from {self._archive_size} to more than {self.total} "
                f"bytes, over {limits.max_ratio:g} times its size; this looks like a "
                "decompression bomb."
            )
        self._recent.append(out)
        self._recent_size += len(out)
        while self._recent_size - len(self._recent[0]) >= WINDOW:
            self._recent_size -= len(self._recent.popleft())

    def check_zeros_from(self, offset: int) -> bool:
        """Whether every byte from *offset* on, handed out or still to come, is zero.

        Reads the member to its end (so its CRC and length are checked too). *offset*
        must be within the last :data:`WINDOW` bytes handed out.
        """
        start = self.total - self._recent_size
        if offset < start:  # pragma: no cover - tar readers never read this far ahead
            raise AssertionError(f"cannot look back to {offset}; only {start} on is kept")
        zero = True
        for chunk in self._recent:
            if start + len(chunk) > offset:
                zero = zero and not chunk[max(offset - start, 0):].strip(b"\x00")
            start += len(chunk)
        buffer = bytearray(READ_CHUNK)
        while n := self.readinto(buffer):
            zero = zero and not buffer[:n].strip(b"\x00")
        return zero

    def finish(self) -> None:
        """Refuse the file unless the member was read to its end and nothing follows it."""
        if not self._inflate.eof:  # pragma: no cover - callers read to the end first
            raise AssertionError("the gzip member was not read to its end")
        after = self._inflate.unused_data + self._pending + self._source.read(2)
        if after[:2] == _MAGIC:
            raise InvalidArchive(
                "The .tar.gz holds a second gzip stream after the first; tools disagree on "
                "whether to read it. Build the sdist with `python -m build --sdist` and do "
                "not append to it."
            )
        if after:
            raise InvalidArchive(
                "The .tar.gz has bytes after the end of its gzip stream; tools disagree on "
                "what they are. Upload the file exactly as the build tool wrote it."
            )
