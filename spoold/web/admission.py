"""The gate an upload passes, with only its headers in, before its body is read.

:meth:`UploadGate.admit` runs on the reactor thread when the headers of an upload are in
(:class:`~spoold.web.request.SpooldRequest` calls it through the site). The cheap checks
answer at once: uploads disabled (403), no credentials (401), too many bodies in flight
from the client or in all (429, 503; see :mod:`spoold.http.admission`). So does an upload
whose credentials are known from memory (a password checked moments ago, a cached token
record: :meth:`~spoold.access.authenticate.Authenticator.quick`) while a recent
measurement of the spool's free space clearly leaves room for it
(:class:`~spoold.http.admission.SpaceGauge`): the second and later files of a release
cost no thread trip before their body is read. Otherwise the request holds its body (the
transport is paused) while :meth:`UploadGate.check` runs on the password-check thread
pool: the password (bcrypt, or the remembered success), then the spool's free space (one
``statvfs``), which the reactor weighs against the bodies in flight. Its answer is the
credentials, which the upload resource then trusts without checking them again, or the
refusal (401, 503 while the htpasswd file is broken, 507).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from spoold.access.credentials import Credentials, parse_authorization
from spoold.access.principal import Principal
from spoold.http.admission import (
    AdmissionPolicy,
    Refusal,
    Slot,
    Slots,
    Space,
    SpaceGauge,
    space_refusal,
    upload_needs,
)
from spoold.threads import Run

if TYPE_CHECKING:
    from spoold.web.upload import UploadResource

__all__ = ["Admitting", "Checked", "UploadGate", "measure_space"]

log = Logger()


@dataclass(frozen=True, slots=True)
class Admitting:
    """An upload whose checks are running: ``result`` fires with the credentials (read
    the body) or a :class:`Refusal`; ``slot`` is its place among the bodies in flight."""

    slot: Slot
    result: Deferred[Principal | Refusal]


@dataclass(frozen=True, slots=True)
class Checked:
    """What :meth:`UploadGate.check` found on its thread: who sends, and the free space."""

    principal: Principal
    space: Space


def measure_space(folder: Path) -> Space:
    """Bytes free to an unprivileged user on ``folder``'s filesystem, and its size (blocking)."""
    st = os.statvfs(folder)
    return Space(free=st.f_bavail * st.f_frsize, size=st.f_blocks * st.f_frsize)


class UploadGate:
    """Admits upload bodies: see the module docstring."""

    def __init__(self, upload: UploadResource, policy: AdmissionPolicy, folder: Path, auth_run: Run,
                 clock: Callable[[], float] | None = None) -> None:
        self.upload = upload
        self.policy = policy
        #: Where bodies are buffered (the spool's tmp/): the filesystem whose space counts.
        self.folder = folder
        self.auth_run = auth_run
        self.clock = clock or upload.reactor.seconds
        self.slots = Slots(policy)
        self.space = SpaceGauge(policy.space_max_age)

    def admit(self, authorization: bytes | None, client: str, length: int | None) -> Refusal | Admitting:
        refusal = self.upload.precheck(authorization)
        if refusal is not None:
            return refusal
        credentials = parse_authorization(authorization)
        assert credentials is not None  # precheck refuses requests without
        needs = upload_needs(length)
        slot = self.slots.take(client, needs)
        if isinstance(slot, Refusal):
            return slot
        known = self.upload.verify_quick(credentials, client)
        if isinstance(known, Refusal):
            slot.release()
            return known
        if known is not None:
            estimate = self.space.estimate(self.clock())
            if estimate is not None and space_refusal(estimate, self.policy, needs, self.slots.promised - needs) is None:
                self.space.admitted(needs)
                return Admitting(slot, succeed(known))
        asked = self.space.ask(self.clock(), self.slots.promised - needs)
        d: Deferred[Any] = self.auth_run(self.check, credentials, client)
        d.addCallback(self._weigh, slot, asked)
        d.addErrback(self._failed)
        return Admitting(slot, d)

    def check(self, credentials: Credentials, client: str) -> Checked | Refusal:
        """The credentials, then the free space (blocking: run in a thread)."""
        checked = self.upload.verify(credentials, client)
        if isinstance(checked, Refusal):
            return checked
        try:
            space = measure_space(self.folder)
        except OSError as e:
            log.error("cannot measure the free space of {folder}: {error}", folder=str(self.folder),
                      error=e.strerror)
            return _unavailable(f"The server cannot check its spool's free space ({e.strerror}); "
                                "try again later", self.policy)
        return Checked(checked, space)

    def _weigh(self, checked: Checked | Refusal, slot: Slot, asked: tuple[float, int]) -> Principal | Refusal:
        """On the reactor: the measured space against this body and the others in flight."""
        if isinstance(checked, Refusal):
            return checked
        self.space.record(checked.space, asked)
        others = self.slots.promised - (slot.needs if slot.held else 0)
        refusal = space_refusal(checked.space, self.policy, slot.needs, others)
        if refusal is not None:
            log.warn("refusing an upload: the spool has {free} bytes free ({needs} needed)",
                     free=checked.space.free, needs=slot.needs)
            return refusal
        self.space.admitted(slot.needs)
        return checked.principal

    def _failed(self, failure: Failure) -> Refusal:
        log.failure("checking an upload's credentials failed", failure)
        return _unavailable("The server could not check the credentials; try again later", self.policy)


def _unavailable(message: str, policy: AdmissionPolicy) -> Refusal:
    return Refusal(503, "unavailable", message, message,
                   ((b"retry-after", str(policy.retry_after).encode("ascii")),))
