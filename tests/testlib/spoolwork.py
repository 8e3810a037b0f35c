"""Claiming in tests: the loop a worker runs, without the worker.

The daemon hands out candidates itself (:mod:`spoold.worker.service`); tests that only
exercise the spool use this: walk the listing from a random place, claim the first item
that can be had.
"""

from __future__ import annotations

import itertools
import random

from spoold.spool import Claim, Spool


def claim_next(spool: Spool, candidates: list[str] | None = None) -> Claim | None:
    """Claim one pending item, or None if none is left (a lost race tries the next)."""
    names = spool.pending() if candidates is None else candidates
    if not names:
        return None
    start = random.randrange(len(names))
    for entry in itertools.chain(names[start:], names[:start]):
        claim = spool.claim(entry)
        if claim is not None:
            return claim
    return None
