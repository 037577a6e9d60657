"""Fan-out drainers: a few chord members work through a fan-out's activities, as many as there are slots.

A Celery message per activity would cost a broker round trip, a result in the backend and a claim
transaction each; a drainer claims the fan-out's next item in the transaction that records the
outcome of the one before. Parallelism is kept: the chord has one drainer per live worker slot that
serves the activities' queue (up to one per activity), and drainers take items as they free up, so a
slow activity holds up only its own drainer. Correctness never rests on drainers: each item is
claimed under a lease, recorded under its unique key, and re-dispatched alone by the sweeper if its
drainer dies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..orchestrator.history import TaskCompleted, TaskFailed
from ..store import work
from ..store.db import single_statement, transaction
from .activity import lease_owner, perform

if TYPE_CHECKING:
    from ..app import DurableApp
    from ..models import WorkItem


def on_drain_message(app: DurableApp, taskhub: str, item_ids: Sequence[int]) -> int:
    """Run the items of `item_ids` that nobody else holds, one after another; returns how many ran here."""
    owner = lease_owner()
    lease = app.settings.lease_seconds
    with single_statement(app.settings.database_url) as session:
        item = work.claim_next(session, taskhub, item_ids, owner, lease)
    ran = 0
    while item is not None:
        outcome = perform(app, taskhub, item, owner)
        item = _record_and_claim_next(app, item, outcome, item_ids, owner)
        ran += 1
    return ran


def _record_and_claim_next(
    app: DurableApp, done: WorkItem, outcome: TaskCompleted | TaskFailed, item_ids: Sequence[int], owner: str
) -> WorkItem | None:
    with transaction(app.settings.database_url) as session:
        work.complete(session, done, outcome)
        return work.claim_next(session, done.taskhub, item_ids, owner, app.settings.lease_seconds)
