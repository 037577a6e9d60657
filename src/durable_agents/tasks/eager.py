"""Eager dispatch: a worker takes the next step or activity of an instance itself when it serves that queue.

Messages through the broker are the fallback, never skipped for correctness: an eager activity is
claimed under a lease (the step that schedules it writes it already leased to this worker) and recorded
under its unique key exactly as one delivered by the broker.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..steps.outcome import Dispatch, EagerClaim
from ..store.work import Completion
from .activity import claim, perform, record
from .dispatch import activity_queue, publish, rate_limited, step_queue, wake
from .step import run_one_step
from .tracing import received_traceparent

if TYPE_CHECKING:
    from ..app import DurableApp

log = logging.getLogger(__name__)

#: Consecutive steps one worker slot takes for an instance before handing it back to the broker,
#: so a long chain cannot hold a slot while other instances wait.
EAGER_STEPS = 20


def serves(app: DurableApp, queue: str) -> bool:
    return app.local_queues is not None and queue in app.local_queues


def runs_in_place(app: DurableApp, activity: str) -> bool:
    """Whether a step may run the activity here: this worker serves its queue, and Celery does not count
    its calls against a rate limit (which only a message of its own passes through)."""
    return serves(app, activity_queue(app, activity)) and not rate_limited(app, activity)


def drive(app: DurableApp, taskhub: str, instance_id: str, completion: Completion | None = None) -> None:
    """Step the instance; while a step leaves exactly one activity this worker serves, run it here and
    step again, recording each activity's outcome in the transaction of the step that consumes it.
    A step that leaves no activity but wakes exactly one instance (a child it started, a parent its
    result resumes) is followed by that instance's step, here too."""
    settings = app.settings
    eager = EagerClaim(app.leases.owner(), settings.lease_seconds, lambda name: runs_in_place(app, name))
    for _ in range(EAGER_STEPS):
        try:
            dispatch = run_one_step(app, taskhub, instance_id, eager, completion)
        except Exception:
            if completion is not None:
                record(app, *completion)  # keep the activity's outcome even when the step cannot run
            raise
        follow = _take_single_wake(app, dispatch) if dispatch.claimed is None else None
        publish(app, dispatch)
        if dispatch.claimed is not None:
            # The claimed item may be a child's, whose first step ran inline.
            instance_id = dispatch.claimed.instance_id
            outcome = perform(app, taskhub, dispatch.claimed, eager.owner, dispatch.trace_parent)
            completion = (dispatch.claimed, outcome)
        elif follow is not None:
            instance_id, completion = follow, None
        else:
            return
    if completion is not None:
        record(app, *completion)
    wake(app, instance_id)  # budget spent: the next step goes through the broker


def _take_single_wake(app: DurableApp, dispatch: Dispatch) -> str | None:
    wakes = set(dispatch.steps)
    if len(wakes) != 1 or dispatch.activities or not serves(app, step_queue(app, next(iter(wakes)))):
        return None
    dispatch.steps.clear()
    return wakes.pop()


def on_activity_message(app: DurableApp, taskhub: str, item_id: int, wake_orchestrator: bool) -> None:
    owner = app.leases.owner()
    item = claim(app, taskhub, item_id, owner)
    if item is None:
        return  # done already, or another worker holds a live lease: a duplicate message
    outcome = perform(app, taskhub, item, owner, received_traceparent())
    if not wake_orchestrator:
        record(app, item, outcome)  # a chord member: the chord's callback steps the instance
        return
    if serves(app, step_queue(app, item.instance_id)):
        try:
            drive(app, taskhub, item.instance_id, (item, outcome))
            return
        except Exception:
            log.exception("an eager step of %s failed; handing it to the broker", item.instance_id)
    else:
        record(app, item, outcome)
    wake(app, item.instance_id)
