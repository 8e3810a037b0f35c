"""``--listen`` endpoints: parsed and bound before the reactor runs, or a one-line error.

A server that cannot listen must not run on half-started (a worker and no HTTP port),
and must not exit 0 with a traceback. So every endpoint string is parsed first, every
port is bound while the process can still say why it cannot be and exit with the
configuration status, and only then does the reactor start.

``systemd:`` endpoints are resolved here from ``LISTEN_FDS`` / ``LISTEN_PID`` /
``LISTEN_FDNAMES`` with Twisted's public :class:`~twisted.python.systemd.ListenFDs` and
:class:`~twisted.internet.endpoints.AdoptedStreamServerEndpoint`, rather than by Twisted's
``systemd:`` string parser, for two reasons: the parser reads the environment once, when
Twisted's endpoints module is first imported, and it refuses every descriptor when
``LISTEN_FDNAMES`` is absent (systemd before 227, ``systemd-socket-activate`` without
``--fdname``), although ``index=N`` needs no names.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from twisted.internet import error as internet_error
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import AdoptedStreamServerEndpoint, serverFromString
from twisted.internet.interfaces import IListeningPort, IStreamServerEndpoint
from twisted.python.failure import Failure
from twisted.python.systemd import ListenFDs

from spoold.errors import ConfigError

__all__ = ["Endpoint", "listen_all", "parse_endpoint", "parse_endpoints"]

_EXAMPLE = "for example tcp:5555:interface=127.0.0.1 or systemd:domain=INET:name=http"


@dataclass(frozen=True)
class Endpoint:
    """A parsed ``--listen`` value: the text (for messages) and the Twisted endpoint."""

    description: str
    endpoint: IStreamServerEndpoint


def _systemd_fds(environ: Mapping[str, str]) -> ListenFDs:
    """The descriptors systemd passed this process; names default when there are none."""
    env = dict(environ)
    if "LISTEN_FDS" in env and "LISTEN_FDNAMES" not in env:
        try:
            count = int(env["LISTEN_FDS"])
        except ValueError:
            count = 0
        env["LISTEN_FDNAMES"] = ":".join(["unknown"] * count)  # as sd_listen_fds_with_names
    return ListenFDs.fromEnvironment(environ=env)


def _parse_systemd(reactor: Any, description: str, environ: Mapping[str, str]) -> IStreamServerEndpoint:
    fields: dict[str, str] = {}
    for part in description.split(":")[1:]:
        key, sep, value = part.partition("=")
        if not sep or key not in ("domain", "index", "name") or key in fields:
            raise ConfigError(
                f"--listen {description!r}: systemd endpoints take domain= and one of index= "
                f"or name= ({_EXAMPLE})"
            )
        fields[key] = value
    family = getattr(socket, "AF_" + fields.get("domain", ""), None)
    if family not in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX):
        raise ConfigError(f"--listen {description!r}: domain= must be INET, INET6 or UNIX")
    if ("index" in fields) == ("name" in fields):
        raise ConfigError(f"--listen {description!r}: give exactly one of index= and name=")
    fds = _systemd_fds(environ)
    descriptors = fds.inheritedDescriptors()
    if not descriptors:
        raise ConfigError(
            f"--listen {description!r}: systemd passed no sockets to this process (LISTEN_FDS "
            "is not set for it); start spoold through spoold.socket, or listen with "
            "tcp:PORT:interface=ADDRESS"
        )
    if "index" in fields:
        try:
            fileno = descriptors[int(fields["index"])]
        except (ValueError, IndexError):
            raise ConfigError(
                f"--listen {description!r}: there is no socket {fields['index']!r}; systemd "
                f"passed {len(descriptors)} (index=0 to {len(descriptors) - 1})"
            ) from None
    else:
        named = fds.inheritedNamedDescriptors()
        if fields["name"] not in named:
            names = ", ".join(sorted(n for n in named if n != "unknown")) or "none"
            raise ConfigError(
                f"--listen {description!r}: systemd passed no socket named {fields['name']!r} "
                f"(names: {names}); set FileDescriptorName= in the .socket unit or use index="
            )
        fileno = named[fields["name"]]
    return AdoptedStreamServerEndpoint(reactor, fileno, family)


def parse_endpoint(reactor: Any, description: str,
                   environ: Mapping[str, str] | None = None) -> Endpoint:
    """Parse one ``--listen`` value; :class:`ConfigError` names what is wrong."""
    text = description.strip()
    if text.split(":", 1)[0] == "systemd":
        return Endpoint(text, _parse_systemd(reactor, text, os.environ if environ is None else environ))
    try:
        return Endpoint(text, serverFromString(reactor, text))
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise ConfigError(
            f"--listen {text!r} is not a server endpoint Twisted understands ({exc}); {_EXAMPLE}"
        ) from None


def parse_endpoints(reactor: Any, descriptions: tuple[str, ...],
                    environ: Mapping[str, str] | None = None) -> list[Endpoint]:
    if not descriptions:
        raise ConfigError(f"nothing to listen on: pass --listen ENDPOINT ({_EXAMPLE})")
    return [parse_endpoint(reactor, d, environ) for d in descriptions]


def _why(description: str, failure: Failure) -> str:
    exc = failure.value
    cause = getattr(exc, "socketError", None) or exc
    code = getattr(cause, "errno", None)
    if code == errno.EADDRINUSE:
        fix = "another process uses that port: stop it, or choose another port"
    elif code == errno.EADDRNOTAVAIL:
        fix = "the interface is not an address of this host: use one it has (ip address)"
    elif code == errno.EACCES:
        fix = "ports below 1024 need privileges: use socket activation (spoold.socket) or a higher port"
    elif isinstance(exc, (internet_error.CannotListenError, OSError)):
        fix = "check the address and port"
    else:
        fix = _EXAMPLE
    reason = getattr(cause, "strerror", None) or str(cause) or type(cause).__name__
    return f"cannot listen on {description!r}: {reason}; {fix}"


def listen_all(endpoints: list[Endpoint], factory: Any) -> list[IListeningPort]:
    """Bind every endpoint now (before the reactor runs); :class:`ConfigError` if any
    fails, after closing those already bound. Endpoints that cannot answer at once are
    refused: a server whose ports are not known to be open is not started."""
    ports: list[IListeningPort] = []
    for item in endpoints:
        result: list[Any] = []
        deferred: Deferred[IListeningPort] = item.endpoint.listen(factory)
        deferred.addBoth(result.append)
        if not result:
            deferred.cancel()
            problem = f"cannot listen on {item.description!r}: the endpoint does not bind at start-up"
        elif isinstance(result[0], Failure):
            problem = _why(item.description, result[0])
        else:
            ports.append(result[0])
            continue
        for port in ports:
            port.stopListening()
        raise ConfigError(problem)
    return ports
