"""The spool: item names, the queue of renames, housekeeping and the ``incoming/`` drop.

Plain synchronous code, no reactor. See :mod:`spoold.spool.queue` for the moves.
"""

from spoold.spool.queue import Claim, Delivery, Spool, SpoolPolicy

__all__ = ["Claim", "Delivery", "Spool", "SpoolPolicy"]
