"""The spool: item names, the queue of renames, housekeeping and the ``incoming/`` drop.

Plain synchronous code, no reactor:

* :mod:`~spoold.spool.names` -- item names (unique, self-describing);
* :mod:`~spoold.spool.folders` -- the folder layout and the move between folders;
* :mod:`~spoold.spool.records` -- ``meta.json`` and reasons, one schema each;
* :mod:`~spoold.spool.delivery` -- writing an item (``tmp/`` then one rename);
* :mod:`~spoold.spool.queue` -- :class:`Spool`: claim, finish, fail, defer;
* :mod:`~spoold.spool.claim`, :mod:`~spoold.spool.outcome` -- the values handed on;
* :mod:`~spoold.spool.housekeeping`, :mod:`~spoold.spool.incoming`,
  :mod:`~spoold.spool.liveness` -- reaping, promotion, ``incoming/``, sweeping;
* :mod:`~spoold.spool.status` -- queue depths and failures (``spoold status``).
"""

from spoold.spool.claim import Claim
from spoold.spool.delivery import Delivery
from spoold.spool.outcome import Outcome, Result
from spoold.spool.queue import Spool, SpoolPolicy
from spoold.spool.records import ItemMeta, Reason

__all__ = ["Claim", "Delivery", "ItemMeta", "Outcome", "Reason", "Result", "Spool", "SpoolPolicy"]
