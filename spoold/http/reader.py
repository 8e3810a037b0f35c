"""A buffered reader that finds delimiters across chunk edges in bounded memory.

The form parser's only view of the body: it never holds more than one read chunk plus one
delimiter, however large a part is, so a gigabyte upload costs a chunk of memory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO

from spoold.http.errors import FormTooLarge, InvalidForm

__all__ = ["BufferedReader"]


class BufferedReader:
    """A buffered reader that finds delimiters across chunk edges in bounded memory."""

    def __init__(self, stream: IO[bytes], chunk_size: int) -> None:
        self._stream = stream
        self._chunk = max(chunk_size, 1024)
        self._buf = bytearray()
        self._pos = 0  # start of unread data in _buf
        self._eof = False

    def prepend(self, data: bytes) -> None:
        self._buf[self._pos:self._pos] = data

    def _fill(self) -> bool:
        if self._eof:
            return False
        data = self._stream.read(self._chunk)
        if not data:
            self._eof = True
            return False
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data
        return True

    def peek(self, size: int) -> bytes:
        """Up to ``size`` bytes of what comes next, without consuming them."""
        while len(self._buf) - self._pos < size and self._fill():
            pass
        return bytes(self._buf[self._pos:self._pos + size])

    def read_line(self, limit: int) -> bytes | None:
        """The next CRLF-terminated line without its CRLF; None at end of input."""
        limit = max(limit, 0)
        scanned = 0  # bytes after _pos already searched (minus one, for a split CRLF)
        while True:
            end = self._buf.find(b"\r\n", self._pos + scanned)
            if end >= 0:
                if end - self._pos > limit:
                    break
                line = bytes(self._buf[self._pos:end])
                self._pos = end + 2
                return line
            scanned = max(0, len(self._buf) - self._pos - 1)
            if scanned > limit:
                break
            if not self._fill():
                return None
        raise FormTooLarge(f"a header line of the upload form is longer than {limit} bytes")

    def skip_until(self, delimiter: bytes) -> bool:
        """Discard input up to and including ``delimiter``; False if it never comes."""
        try:
            self.copy_until(delimiter, None, "")
        except InvalidForm:
            return False
        return True

    def copy_until(
        self, delimiter: bytes, write: Callable[[bytearray], object] | None, unterminated: str
    ) -> int:
        """Pass the input up to ``delimiter`` to ``write`` (None: discard); consume the
        delimiter. Returns the number of bytes before it. Only ``len(delimiter) - 1`` bytes
        are ever held back, so memory stays at one chunk whatever the part's size."""
        keep = len(delimiter) - 1
        total = 0
        while True:
            index = self._buf.find(delimiter, self._pos)
            if index >= 0:
                if index > self._pos and write is not None:
                    write(self._buf[self._pos:index])
                total += index - self._pos
                self._pos = index + len(delimiter)
                return total
            safe = len(self._buf) - keep
            if safe > self._pos:
                if write is not None:
                    write(self._buf[self._pos:safe])
                total += safe - self._pos
                self._pos = safe
            if not self._fill():
                raise InvalidForm(unterminated)
