"""Upload accounts in an Apache htpasswd file, checked through libpass (``passlib``).

An htpasswd file because every operator already has the tools for it (``htpasswd -B``,
config management modules) and because it needs no database. Accepted schemes are the
salted, slow ones: bcrypt (``$2y$``, what ``spoold user add`` writes), sha256-crypt /
sha512-crypt (``$5$`` / ``$6$``) and Apache's apr1 MD5 (``$apr1$``, older files).
Unsalted ``{SHA}``, DES crypt and plain text entries never match: their owners are told
(in the log) to re-add the user.

Checking a bcrypt password costs a few hundred milliseconds of CPU, which is why
:meth:`Htpasswd.verify` is blocking code for a thread pool, and why a success is
remembered for a short while (keyed by the user, a keyed hash of the password and the
entry it matched): twine uploads each file of a release with the same credentials, and
only the first should pay for bcrypt. A changed entry, a changed file or :meth:`reload`
forgets what was remembered.

The file is re-read when its size, mtime or inode change (checked on every verification;
one ``stat``), and on :meth:`reload` (SIGHUP). A file that is removed or no longer parses
lets nobody in until it is fixed (:attr:`Htpasswd.problem`; an error line at most once a
minute while requests keep coming): failing closed is what the operator who deleted it,
or edited a user out of it, meant.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from passlib.apache import HtpasswdFile
from passlib.context import CryptContext
from passlib.exc import UnknownHashError
from twisted.logger import Logger

from spoold.access.credentials import MAX_CREDENTIAL
from spoold.errors import ConfigError, SpooldError

__all__ = [
    "CRYPT",
    "SCHEMES",
    "BadCredentials",
    "Htpasswd",
    "parse_file",
]

log = Logger()

#: The schemes a password entry may use (``passlib`` names).
SCHEMES = ("bcrypt", "sha256_crypt", "sha512_crypt", "apr_md5_crypt")
CRYPT = CryptContext(schemes=list(SCHEMES), default="bcrypt")
#: bcrypt looks at 72 bytes of a password; Apache truncates longer ones silently.
BCRYPT_MAX_BYTES = 72
#: Longest user name or password looked at (longer ones never match).
_MAX_CREDENTIAL = MAX_CREDENTIAL
#: Seconds between two error lines about a missing or broken file.
PROBLEM_LOG_INTERVAL = 60.0


class BadCredentials(SpooldError):
    """A user name or password that ``spoold user add`` will not write."""

    code = "bad-credentials"


@dataclass(frozen=True, slots=True)
class _Signature:
    """What identifies one version of the file on disk."""

    inode: int
    size: int
    mtime_ns: int


@dataclass(slots=True)
class _Remembered:
    entry: str
    password_mac: bytes
    until: float


class Htpasswd:
    """One htpasswd file, re-read when it changes; safe to call from many threads.

    ``clock`` (monotonic seconds) is injectable so tests can expire the cache by hand.
    Opening a missing or unreadable file is a :class:`~spoold.errors.ConfigError`: a
    server that was told to use a file and cannot is misconfigured, not open to everyone.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        cache_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        max_cached: int = 1024,
        freshness: float = 1.0,
    ) -> None:
        self.path = Path(path)
        self.cache_seconds = cache_seconds
        #: How old the last look at the file may be for :meth:`remembered` to answer.
        self.freshness = freshness
        self._looked_at = float("-inf")
        self.clock = clock
        self.max_cached = max_cached
        self._lock = threading.Lock()
        self._entries: dict[str, str] = {}
        self._signature: _Signature | None = None
        self._remembered: dict[str, _Remembered] = {}
        self._mac_key = secrets.token_bytes(32)
        self._warned: set[tuple[str, str]] = set()
        #: Why nobody can upload (the file is missing or broken); see :attr:`problem`.
        self._problem: str | None = None
        self._logged_problem: float | None = None
        #: How many times the slow hash ran, on a real entry or as the stand-in every
        #: failure pays (for tests and metrics).
        self.slow_checks = 0
        self.reload()

    # -- loading ---------------------------------------------------------------------------

    def reload(self) -> None:
        """Re-read the file now and forget remembered successes (SIGHUP).

        If the file cannot be read, no user can upload until it can (see
        :attr:`problem`), and :class:`ConfigError` says why.
        """
        with self._lock:
            try:
                self._load()
            except ConfigError as e:
                self._break(str(e), None)
                raise

    def _load(self) -> None:
        try:
            with open(self.path, "rb") as f:
                st = os.fstat(f.fileno())
                if not stat.S_ISREG(st.st_mode):
                    raise ConfigError(f"htpasswd {self.path} is not a regular file")
                data = f.read(16 * 1024 * 1024 + 1)
        except FileNotFoundError:
            raise ConfigError(
                f"htpasswd file {self.path} does not exist; create it with "
                f"`spoold user add NAME --htpasswd {self.path}`"
            ) from None
        except OSError as e:
            raise ConfigError(f"cannot read htpasswd file {self.path}: {e.strerror}") from None
        if len(data) > 16 * 1024 * 1024:
            raise ConfigError(f"htpasswd file {self.path} is larger than 16 MiB")
        parsed = parse_file(data, self.path)
        entries: dict[str, str] = {}
        for user in parsed.users():
            entry = parsed.get_hash(user)
            entries[user] = entry.decode("ascii", "replace") if isinstance(entry, bytes) else str(entry)
        self._entries = entries
        self._signature = _Signature(st.st_ino, st.st_size, st.st_mtime_ns)
        self._remembered.clear()
        if self._problem is not None:
            log.info("htpasswd file {path} is readable again: {count} user(s)",
                     path=str(self.path), count=len(entries))
        self._problem = None

    def _break(self, problem: str, signature: _Signature | None) -> None:
        """The file cannot be read: nobody is let in until it can (fail closed).

        A deleted file is how an operator takes everyone's access away, and a file that
        does not parse cannot say whom the last edit meant to remove; keeping the old
        users would keep exactly the account someone was locking out. ``signature`` is the
        broken version's, so it is not re-parsed on every request (None: look again).
        """
        self._entries = {}
        self._remembered.clear()
        self._signature = signature
        if problem != self._problem:
            self._problem = problem
            self._logged_problem = None  # a new problem is said at once
        self._say_problem()

    def _say_problem(self) -> None:
        """Say at error level that uploads are refused, at most once a minute."""
        now = self.clock()
        if self._problem is None:
            return
        if self._logged_problem is not None and now - self._logged_problem < PROBLEM_LOG_INTERVAL:
            return
        self._logged_problem = now
        log.error("every upload is refused until the htpasswd file is fixed: {problem}",
                  problem=self._problem)

    def _reload_if_changed(self) -> None:
        """One stat; re-read on any change (mtime alone misses same-second edits)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._break(
                f"htpasswd file {self.path} was removed; restore it or create it with "
                f"`spoold user add NAME --htpasswd {self.path}`", None)
            return
        except OSError as e:
            self._break(f"cannot read htpasswd file {self.path}: {e.strerror}", None)
            return
        current = _Signature(st.st_ino, st.st_size, st.st_mtime_ns)
        if current != self._signature:
            try:
                self._load()
            except ConfigError as e:
                self._break(str(e), current)
        else:
            self._say_problem()

    @property
    def users(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._entries)

    def has_user(self, user: str) -> bool:
        """Whether the file (as last read) has this user: O(1), memory only."""
        with self._lock:
            return user in self._entries

    @property
    def problem(self) -> str | None:
        """Why no user can upload right now (the file is missing or broken), or None."""
        with self._lock:
            return self._problem

    # -- checking --------------------------------------------------------------------------

    def remembered(self, user: str, password: str) -> bool:
        """True if a recent success of exactly this password is remembered and the file
        was looked at less than ``freshness`` seconds ago. Memory only -- no stat, no hash
        -- so it is safe on the reactor thread; False means "ask :meth:`verify`"."""
        if len(user) > _MAX_CREDENTIAL or len(password) > _MAX_CREDENTIAL:
            return False
        with self._lock:
            if self.clock() - self._looked_at > self.freshness:
                return False
            entry = self._entries.get(user)
            remembered = self._remembered.get(user)
            return (entry is not None and remembered is not None and remembered.entry == entry
                    and remembered.until > self.clock()
                    and hmac.compare_digest(remembered.password_mac, self._mac(user, password)))

    def verify(self, user: str, password: str) -> bool:
        """True if the file has ``user`` with this password. Blocking (stat and, unless
        a recent success is remembered, bcrypt): call it in a thread.

        Every failure costs one slow hash, whatever its cause (no such user, a password
        too long or with a NUL, an entry in a scheme that never matches), so the time an
        answer takes does not tell which users exist or how their entries are stored.
        """
        if len(user) > _MAX_CREDENTIAL or len(password) > _MAX_CREDENTIAL or "\x00" in password:
            return self._refuse()
        with self._lock:
            self._reload_if_changed()
            self._looked_at = self.clock()
            entry = self._entries.get(user)
            mac = self._mac(user, password)
            remembered = self._remembered.get(user)
            now = self.clock()
            if (
                entry is not None
                and remembered is not None
                and remembered.entry == entry
                and remembered.until > now
                and hmac.compare_digest(remembered.password_mac, mac)
            ):
                return True
        if entry is None:
            return self._refuse()
        ok = self._slow_verify(user, password, entry)
        if ok:
            with self._lock:
                if len(self._remembered) >= self.max_cached:
                    self._remembered.pop(next(iter(self._remembered)))
                if self._entries.get(user) == entry:
                    self._remembered[user] = _Remembered(entry, mac, self.clock() + self.cache_seconds)
        return ok

    def _refuse(self) -> bool:
        """False, after as much work as checking a real bcrypt entry."""
        self.slow_checks += 1
        CRYPT.dummy_verify()
        return False

    def _slow_verify(self, user: str, password: str, entry: str) -> bool:
        secret = password.encode("utf-8", "surrogatepass")
        if entry.startswith(("$2a$", "$2b$", "$2y$", "$2x$")):
            secret = secret[:BCRYPT_MAX_BYTES]  # as Apache does for htpasswd -B entries
        try:
            ok = bool(CRYPT.verify(secret, entry))
        except (UnknownHashError, ValueError, TypeError):
            # An unsupported or malformed entry is refused in no time by passlib: pay for
            # a hash anyway, or the speed of the answer tells the entry's scheme.
            scheme = entry.split("$")[1] if entry.startswith("$") else entry[:6]
            if (user, scheme) not in self._warned:
                self._warned.add((user, scheme))
                log.warn(
                    "the htpasswd entry of {user!r} uses an unsupported or malformed scheme; "
                    "re-add the user with `spoold user add`", user=user,
                )
            return self._refuse()
        self.slow_checks += 1
        return ok

    def _mac(self, user: str, password: str) -> bytes:
        message = user.encode("utf-8", "surrogatepass") + b"\x00" + password.encode("utf-8", "surrogatepass")
        return hmac.new(self._mac_key, message, hashlib.sha256).digest()


def parse_file(data: bytes, path: Path) -> HtpasswdFile:
    try:
        data.decode("utf-8")
        return HtpasswdFile.from_string(data, encoding="utf-8", default_scheme="bcrypt")
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfigError(f"htpasswd file {path} is malformed ({e}); fix or recreate it") from None


# -- writing (spoold user add) -------------------------------------------------------------
