"""Settings: built-in defaults, overridden by a TOML file, overridden by flags.

spoold runs with no configuration at all: the spool and the storage live under the user's
data directory (``$XDG_DATA_HOME/spoold``, normally ``~/.local/share/spoold``). A TOML file
(``--config FILE`` or ``$SPOOLD_CONFIG``) can set any key of :class:`Settings`::

    spool = "/var/spool/spoold"
    storage = "s3://my-bucket/pypi"
    listen = ["tcp:5555:interface=127.0.0.1"]
    htpasswd = "/etc/spoold/htpasswd"
    max_uncompressed = 34359738368  # 32 GiB, for an index of very large CUDA wheels
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spoold.errors import ConfigError


def data_dir() -> Path:
    """Where a zero-config spoold keeps its spool and storage."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "spoold"


@dataclass(frozen=True)
class Settings:
    #: Where a zero-config spoold keeps everything: the spool, the local storage, the
    #: htpasswd file and the generated admin password (each can be set on its own).
    data_dir: str = field(default_factory=lambda: str(data_dir()))
    spool: str = field(default_factory=lambda: str(data_dir() / "spool"))
    storage: str = field(default_factory=lambda: str(data_dir() / "storage"))
    listen: tuple[str, ...] = ("tcp:5555:interface=127.0.0.1",)
    #: The accounts; None: ``htpasswd`` in ``data_dir`` (see :attr:`htpasswd_path`).
    htpasswd: str | None = None
    #: ``private``: every read needs a user or a token; ``public``: reads need nothing.
    read: str = "private"
    #: Users who may do everything (upload anywhere, manage every project). By default
    #: the user ``admin``, whom a first start creates (see ``access/first_start.py``).
    admins: tuple[str, ...] = ("admin",)
    #: Worker threads inspecting and publishing in one process.
    threads: int = 4
    #: Largest upload accepted, in bytes (413 above it).
    max_upload: int = 1 << 30
    #: Seconds a file in incoming/ must be quiet before it is taken.
    settle: float = 30.0
    #: Seconds between periodic scans (watcher events only make scans come sooner).
    scan_interval: float = 2.0
    #: Seconds between housekeeping rounds (reaping, deferred promotion, incoming/).
    housekeeping_interval: float = 5.0
    #: First retry delay after a storage fault; doubles per retry up to ``retry_max``.
    retry_base: float = 5.0
    retry_max: float = 3600.0
    #: One log line per HTTP request (turn off behind a proxy that logs).
    access_log: bool = True
    #: Seconds an index page read from storage may be served from memory. Publishes through
    #: this spool show at once; changes no spool event announces (other hosts writing the
    #: same bucket, yank/remove/reindex) within this time. 0 turns the cache off.
    page_cache: float = 10.0
    #: Seconds a stopping worker waits for in-flight items before it exits anyway.
    drain_timeout: float = 30.0
    #: Seconds published items stay in done/ (audit, idempotency) and rejected items in
    #: failed/ (with their reasons) before housekeeping forgets them.
    done_retention: float = 7 * 86400.0
    failed_retention: float = 30 * 86400.0
    #: Upload bodies one client address may send at once (429 above it); 0: no limit.
    #: Behind a reverse proxy every upload comes from the proxy's address: raise it there.
    max_uploads_per_client: int = 4
    #: Upload bodies the server receives at once (503 above it); 0: no limit.
    max_uploads: int = 32
    #: Bytes per second a request body must keep up, measured over every ``body_grace``
    #: seconds from its start (a slower body is cut with 408); 0: no minimum.
    body_min_rate: int = 8192
    body_grace: float = 30.0
    #: Bytes kept free on the spool's filesystem: an upload that would leave less is
    #: answered 507 before its body is read. Unset: 5% of the filesystem, at most 1 GiB.
    spool_reserve: int | None = None
    #: Largest total uncompressed size of a distribution's members, in bytes: what
    #: inspecting it may cost. 16 GiB, three times the largest real wheels (PyTorch's
    #: CUDA builds inflate to 4-5 GB). Equal to ``spoold.inspection.archive.Limits``.
    max_uncompressed: int = 16 << 30
    #: Largest uncompressed/compressed ratio of a whole distribution, judged once it
    #: inflates past 64 MiB (real ones stay under 5; Warehouse refuses over 50). 0: no limit.
    max_ratio: float = 100.0
    #: Seconds a browser session (the explorer's login) lasts.
    session_lifetime: float = 12 * 3600.0
    #: Peers whose X-Forwarded-Proto / X-Forwarded-Host the explorer believes (a reverse
    #: proxy on this host); from others the Host header and the connection decide.
    forwarded_allow: tuple[str, ...] = ("127.0.0.1", "::1")

    @property
    def htpasswd_path(self) -> str:
        """The htpasswd file in use: the setting, else ``htpasswd`` in the data directory."""
        return self.htpasswd or str(Path(self.data_dir) / "htpasswd")

    @property
    def public_reads(self) -> bool:
        return self.read == "public"

def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_type(key: str, value: Any, hint: Any) -> Any:
    """``value`` as the type ``hint`` names, or :class:`ConfigError` naming the key."""
    shown = f"setting {key} = {_describe(value)}"
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{shown}: expected true or false")
        return value
    if hint in (int, float):
        accepted = int if hint is int else (int, float)
        if isinstance(value, bool) or not isinstance(value, accepted):
            raise ConfigError(f"{shown}: expected {'a whole number' if hint is int else 'a number'}")
        if value < 0:
            raise ConfigError(f"{shown}: expected a number of 0 or more")
        return hint(value)
    if hint == (int | None):
        return None if value is None else _check_type(key, value, int)
    if hint == str or hint == (str | None):
        if value is None and hint != str:
            return None
        if not isinstance(value, str):
            raise ConfigError(f"{shown}: expected a string")
        return value
    if hint == tuple[str, ...]:
        if isinstance(value, str):
            value = (value,)
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{shown}: expected a string or a list of strings")
        return tuple(value)
    raise AssertionError(f"no type check for setting {key} ({hint})")  # pragma: no cover


def load(path: str | os.PathLike[str] | None = None, overrides: Mapping[str, Any] | None = None) -> Settings:
    """Read the TOML file (if any) and apply ``overrides`` (flags that were given).

    Every value is checked against the type of its :class:`Settings` field; an unknown
    key or a value of the wrong type is a :class:`ConfigError` naming the key.
    """
    values: dict[str, Any] = {}
    path = path or os.environ.get("SPOOLD_CONFIG") or None
    if path is not None:
        try:
            with open(path, "rb") as f:
                values.update(tomllib.load(f))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
        except OSError as e:
            raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    known = {f.name: f for f in dataclasses.fields(Settings)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    hints = typing.get_type_hints(Settings)
    values = {key: _check_type(key, value, hints[key]) for key, value in values.items()}
    for key in ("spool", "storage", "htpasswd"):
        if isinstance(values.get(key), str) and not values[key].startswith("s3://"):
            values[key] = os.path.expanduser(values[key])
    if values.get("read", "private") not in ("private", "public"):
        raise ConfigError(f"setting read = {_describe(values['read'])}: expected \"private\" or \"public\"")
    if "data_dir" in values:
        values["data_dir"] = os.path.expanduser(values["data_dir"])
        for key in ("spool", "storage"):
            values.setdefault(key, str(Path(values["data_dir"]) / key))
    return Settings(**values)
