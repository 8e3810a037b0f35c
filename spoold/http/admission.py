"""Whether an upload's body may be read: the rules, as plain code over plain values.

An upload's body is read only once its headers have passed every check that does not need
the body (:mod:`spoold.web.admission` wires these to the request):

* **how many bodies are in flight**, from this client address (429) and in all (503), so
  one client cannot hold every connection or queue a thousand bcrypt checks;
* **the credentials** (401), checked before a byte of the body is stored;
* **the free space** of the spool's filesystem (507 Insufficient Storage): an upload needs
  about twice its size there for a moment (the body, then the spool delivery copied from
  it), and a reserve is kept free for the spool's own renames and records. A measurement
  is trusted for a moment (:class:`SpaceGauge`), less everything admitted since, so that a
  release of many files costs one ``statvfs``, not one each.

Every refusal says what to do, and a ``Retry-After`` where waiting helps.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DEFAULT_RESERVE_CAP",
    "DEFAULT_RESERVE_SHARE",
    "AdmissionPolicy",
    "Refusal",
    "Slot",
    "Slots",
    "Space",
    "SpaceGauge",
    "reserve_for",
    "space_refusal",
    "upload_needs",
]

#: The default reserve: 5% of the spool's filesystem, at most 1 GiB.
DEFAULT_RESERVE_SHARE = 0.05
DEFAULT_RESERVE_CAP = 1 << 30


@dataclass(frozen=True, slots=True)
class Refusal:
    """An answer given without looking at the body."""

    status: int
    #: For metrics (``spoold_rejections_total{code=...}``).
    code: str
    message: str
    reason: str
    headers: tuple[tuple[bytes, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class AdmissionPolicy:
    """How many upload bodies at once, and how much space stays free."""

    #: Bodies one client address may send at once; 0: no limit.
    max_per_client: int = 4
    #: Bodies in flight in all; 0: no limit.
    max_total: int = 32
    #: Bytes kept free on the spool's filesystem; None: :func:`reserve_for`'s default.
    reserve: int | None = None
    #: Seconds a client is told to wait (``Retry-After``) when it may try again.
    retry_after: int = 30
    #: Seconds a measurement of the free space is trusted for (see :class:`SpaceGauge`).
    space_max_age: float = 1.0


@dataclass(frozen=True, slots=True)
class Space:
    """What ``statvfs`` says of a filesystem: bytes free to this user, and its size."""

    free: int
    size: int


def reserve_for(reserve: int | None, size: int) -> int:
    """The bytes to keep free: ``reserve`` if set, else 5% of ``size`` capped at 1 GiB."""
    if reserve is not None:
        return reserve
    return min(DEFAULT_RESERVE_CAP, int(size * DEFAULT_RESERVE_SHARE))


def upload_needs(length: int | None) -> int:
    """Bytes an upload of a declared ``length`` needs in the spool at its peak (the body
    and the delivery copied from it); 0 when undeclared (chunked)."""
    return 2 * length if length else 0


def _retry(policy: AdmissionPolicy) -> tuple[tuple[bytes, bytes], ...]:
    return ((b"retry-after", str(policy.retry_after).encode("ascii")),)


def space_refusal(space: Space, policy: AdmissionPolicy, needs: int, promised: int) -> Refusal | None:
    """507 if taking ``needs`` more bytes, besides the ``promised`` ones of bodies already
    admitted, would leave less than the reserve free; None if there is room."""
    reserve = reserve_for(policy.reserve, space.size)
    left = space.free - promised - needs
    if left >= reserve:
        return None
    if needs:
        what = f"an upload of this size needs about {needs} bytes in the spool and "
    else:
        what = ""
    message = (
        f"The server's spool is short of space: {what}{max(space.free - promised, 0)} bytes "
        f"are free, of which {reserve} are kept in reserve. Try again later; the operator "
        "can free space on the spool's filesystem (or lower spool_reserve)"
    )
    return Refusal(507, "insufficient-storage", message, "Insufficient Storage: the spool is short of space",
                   _retry(policy))


class SpaceGauge:
    """The spool's free space as last measured, less what may have been written since.

    Lets an upload be admitted without measuring again (a ``statvfs``, which may block on
    a network filesystem, so a thread trip) when a measurement younger than ``max_age``
    seconds leaves clear room. The estimate only errs low: a measurement counts as taken
    when it was asked for, and every body that was in flight then or admitted after counts
    against it in full (twice its declared length, see :func:`upload_needs`) from then on,
    even once it is in; the bodies still in flight count again as ``promised``. When the
    estimate does not leave room the caller measures, and only a measurement refuses
    (507). Not thread-safe: one thread (the reactor's) asks, records and estimates.
    """

    def __init__(self, max_age: float) -> None:
        self.max_age = max_age
        #: Bytes admitted so far, in all (only grows).
        self.admitted_bytes = 0
        self._measured: Space | None = None
        self._at = 0.0
        self._base = 0

    def ask(self, now: float, in_flight: int) -> tuple[float, int]:
        """Note a measurement about to be taken while bodies of ``in_flight`` bytes (from
        ``promised``) are coming: neither those nor later ones are in it. Pass the
        result to :meth:`record` with the measurement."""
        return now, self.admitted_bytes - in_flight

    def record(self, space: Space, asked: tuple[float, int]) -> None:
        self._measured, (self._at, self._base) = space, asked

    def admitted(self, needs: int) -> None:
        self.admitted_bytes += needs

    def estimate(self, now: float) -> Space | None:
        """The free space as far as it is known without measuring; None: measure."""
        measured = self._measured
        if measured is None or not 0 <= now - self._at <= self.max_age:
            return None
        since = self.admitted_bytes - self._base
        return Space(free=max(measured.free - since, 0), size=measured.size)


class Slot:
    """One body admitted by :class:`Slots`; :meth:`release` (idempotent) when it is in,
    refused, or its client left."""

    __slots__ = ("_slots", "client", "needs", "_held")

    def __init__(self, slots: Slots, client: str, needs: int) -> None:
        self._slots = slots
        self.client = client
        self.needs = needs
        self._held = True

    @property
    def held(self) -> bool:
        return self._held

    def release(self) -> None:
        if self._held:
            self._held = False
            self._slots._release(self)


class Slots:
    """Bodies in flight, per client address and in all. Not thread-safe: one thread (the
    reactor's) takes and releases slots."""

    def __init__(self, policy: AdmissionPolicy) -> None:
        self.policy = policy
        self._per_client: dict[str, int] = {}
        self.total = 0
        #: Bytes the admitted bodies may still take (see :func:`upload_needs`).
        self.promised = 0

    def in_flight(self, client: str) -> int:
        return self._per_client.get(client, 0)

    def take(self, client: str, needs: int = 0) -> Slot | Refusal:
        """A slot for one more body from ``client``, or the refusal (429 or 503)."""
        policy = self.policy
        if policy.max_per_client and self.in_flight(client) >= policy.max_per_client:
            message = (
                f"Too many uploads at once from this address ({policy.max_per_client} are allowed); "
                "wait for one to finish, or upload one file at a time"
            )
            return Refusal(429, "too-many-uploads", message, message, _retry(policy))
        if policy.max_total and self.total >= policy.max_total:
            message = (
                f"The server is receiving as many uploads as it takes at once ({policy.max_total}); "
                "try again shortly"
            )
            return Refusal(503, "server-busy", message, message, _retry(policy))
        self._per_client[client] = self.in_flight(client) + 1
        self.total += 1
        self.promised += needs
        return Slot(self, client, needs)

    def _release(self, slot: Slot) -> None:
        left = self._per_client.get(slot.client, 0) - 1
        if left > 0:
            self._per_client[slot.client] = left
        else:
            self._per_client.pop(slot.client, None)
        self.total -= 1
        self.promised -= slot.needs
