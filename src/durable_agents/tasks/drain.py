"""Fan-out drainers: a few chord members work through a fan-out's activities, as many as there are slots.

A Celery message per activity would cost a broker round trip, a result in the backend and a claim of
its own each; a drainer claims its next item in the statement that records the outcome of the one
before. Parallelism is kept: the chord has one drainer per live worker slot serving the activities'
queue (up to one per activity). Each drainer owns a share of the items and runs it from the front,
then helps with the other shares from their backs, so a slow activity holds up only its own drainer
and no item waits for a busy one. Correctness never rests on drainers: each item is claimed under a
lease, recorded under its unique key, and re-dispatched alone by the sweeper if its drainer dies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..store import work
from ..store.work import Completion
from .activity import perform, record
from .tracing import received_traceparent

if TYPE_CHECKING:
    from ..app import DurableApp


def on_drain_message(app: DurableApp, taskhub: str, item_ids: Sequence[int], share: int, shares: int) -> int:
    """Run share `share` of `shares` of the fan-out's `item_ids`, then whatever is left of the others;
    returns how many activities ran here."""
    drainer = _Drainer(app, taskhub)
    try:
        for item_id in item_ids[share::shares]:
            drainer.run(item_id)  # its own share: only a helper that got here first has taken an item
        for offset in range(1, shares):
            for item_id in reversed(item_ids[(share + offset) % shares :: shares]):
                if not drainer.run(item_id):
                    break  # its owner, or another helper, has been here: the rest is taken
    finally:
        drainer.finish()  # the last outcome, or the one a failed claim could not record with it
    return drainer.ran


class _Drainer:
    def __init__(self, app: DurableApp, taskhub: str) -> None:
        self._app = app
        self._taskhub = taskhub
        self._owner = app.leases.owner()
        self._unrecorded: Completion | None = None
        self._traceparent = received_traceparent()  # the step that fanned out
        self.ran = 0

    def run(self, item_id: int) -> bool:
        """Run the item unless someone else holds it or it is done (False)."""
        settings = self._app.settings
        # Recording the last outcome and claiming the next item is one statement where the database allows.
        item = work.claim_recording(
            settings.database_url, self._taskhub, item_id, self._owner, settings.lease_seconds, self._unrecorded
        )
        self._unrecorded = None  # recorded with the claim
        if item is None:
            return False
        self._unrecorded = (item, perform(self._app, self._taskhub, item, self._owner, self._traceparent))
        self.ran += 1
        return True

    def finish(self) -> None:
        if self._unrecorded is not None:
            record(self._app, *self._unrecorded)
            self._unrecorded = None
