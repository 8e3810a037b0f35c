"""Failed-login throttling: more than ``limit`` failures a minute from one address or for
one user, and that address or user gets 429 until the minute is over.

Counted in fixed windows that start at the first failure, in memory, per process, with a
bounded number of keys (the oldest windows are forgotten first), so a flood of addresses
cannot grow it without bound. While a key is blocked every attempt is refused, correct
password included: otherwise the answer would still tell a guesser when it is right.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["LoginThrottle"]


class LoginThrottle:
    def __init__(self, *, limit: int = 10, window: float = 60.0,
                 clock: Callable[[], float], max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.max_keys = max_keys
        self._windows: OrderedDict[tuple[str, str], tuple[float, int]] = OrderedDict()
        self._lock = threading.Lock()

    def _keys(self, address: str | None, user: str | None) -> list[tuple[str, str]]:
        keys = []
        if address:
            keys.append(("address", address))
        if user:
            keys.append(("user", user))
        return keys

    @property
    def quiet(self) -> bool:
        """No failure counted lately: nothing can be blocked (read without the lock; a
        failure racing with this read is counted for the next request)."""
        return not self._windows

    def retry_after(self, address: str | None, user: str | None) -> int | None:
        """Seconds until this address or user may try again, or None if not blocked."""
        now = self.clock()
        wait = 0.0
        with self._lock:
            for key in self._keys(address, user):
                entry = self._windows.get(key)
                if entry is None:
                    continue
                start, count = entry
                if now - start >= self.window:
                    del self._windows[key]
                elif count > self.limit:
                    wait = max(wait, start + self.window - now)
        return max(1, int(wait + 0.999)) if wait > 0 else None

    def failed(self, address: str | None, user: str | None) -> None:
        now = self.clock()
        with self._lock:
            for key in self._keys(address, user):
                start, count = self._windows.pop(key, (now, 0))
                if now - start >= self.window:
                    start, count = now, 0
                self._windows[key] = (start, count + 1)
            while len(self._windows) > self.max_keys:
                self._windows.popitem(last=False)
