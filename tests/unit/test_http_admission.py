"""The admission rules: bodies in flight, the free-space reserve, what an upload needs."""

from __future__ import annotations

import pytest

from spoold.http.admission import (
    AdmissionPolicy,
    Refusal,
    Slots,
    Space,
    SpaceGauge,
    reserve_for,
    space_refusal,
    upload_needs,
)

GIB = 1 << 30


@pytest.mark.parametrize(("reserve", "size", "expected"),
                         [(None, 20 << 20, 1 << 20), (None, 100 * GIB, GIB), (None, 0, 0), (0, 100, 0),
                          (5, 100 * GIB, 5)])
def test_the_reserve_is_5_percent_capped_at_1_gib_unless_set(reserve: int | None, size: int, expected: int) -> None:
    assert reserve_for(reserve, size) == expected


def test_an_upload_needs_twice_its_declared_size() -> None:
    assert upload_needs(1000) == 2000
    assert upload_needs(None) == 0 and upload_needs(0) == 0


def test_space_refusal_keeps_the_reserve() -> None:
    policy = AdmissionPolicy(reserve=100, retry_after=9)
    space = Space(free=1000, size=10_000)
    assert space_refusal(space, policy, needs=900, promised=0) is None  # exactly the reserve left
    refusal = space_refusal(space, policy, needs=901, promised=0)
    assert isinstance(refusal, Refusal) and refusal.status == 507 and refusal.code == "insufficient-storage"
    assert refusal.headers == ((b"retry-after", b"9"),)
    assert "901 bytes" in refusal.message and "100 are kept in reserve" in refusal.message
    assert space_refusal(space, policy, needs=500, promised=401) is not None  # others' promises count
    assert space_refusal(Space(free=50, size=10_000), policy, needs=0, promised=0) is not None


def test_slots_per_client_and_in_all() -> None:
    slots = Slots(AdmissionPolicy(max_per_client=2, max_total=3))
    a1, a2 = slots.take("a", 10), slots.take("a", 20)
    assert not isinstance(a1, Refusal) and not isinstance(a2, Refusal)
    refused = slots.take("a")
    assert isinstance(refused, Refusal) and refused.status == 429 and refused.code == "too-many-uploads"
    b1 = slots.take("b", 5)
    assert not isinstance(b1, Refusal)
    full = slots.take("c")
    assert isinstance(full, Refusal) and full.status == 503 and full.code == "server-busy"
    assert (slots.total, slots.promised) == (3, 35)
    a1.release()
    a1.release()  # idempotent
    assert (slots.total, slots.promised, slots.in_flight("a")) == (2, 25, 1)
    assert not isinstance(slots.take("a"), Refusal)


def test_zero_means_no_limit() -> None:
    slots = Slots(AdmissionPolicy(max_per_client=0, max_total=0))
    assert not any(isinstance(slots.take("a"), Refusal) for _ in range(1000))
    assert slots.total == 1000


def test_the_space_gauge_trusts_a_fresh_measurement_less_what_came_since() -> None:
    gauge = SpaceGauge(max_age=1.0)
    assert gauge.estimate(0.0) is None  # nothing measured yet
    gauge.admitted(100)  # admitted and in before the measurement: the measurement saw it
    asked = gauge.ask(10.0, in_flight=30)  # a body of 30 admitted but not yet in
    gauge.admitted(40)  # admitted while the measurement was under way
    gauge.record(Space(free=1000, size=5000), asked)
    gauge.admitted(5)
    assert gauge.estimate(10.5) == Space(free=1000 - 30 - 40 - 5, size=5000)
    assert gauge.estimate(11.0) is not None
    assert gauge.estimate(11.01) is None  # too old: measure again
    assert gauge.estimate(9.0) is None  # the clock went back: measure again
    gauge.admitted(10_000)
    assert gauge.estimate(10.5) == Space(free=0, size=5000)
