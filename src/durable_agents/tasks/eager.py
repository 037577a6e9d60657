"""Eager dispatch: a worker takes the next step or activity of an instance itself when it serves that queue.

Messages through the broker are the fallback, never skipped for correctness: an eager activity is
claimed under a lease and recorded under its unique key exactly as one delivered by the broker.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .activity import execute_work_item
from .dispatch import activity_queue, publish, wake
from .step import run_one_step

if TYPE_CHECKING:
    from ..app import DurableApp
    from ..store.steps import Dispatch

log = logging.getLogger(__name__)

#: Consecutive steps one worker slot takes for an instance before handing it back to the broker,
#: so a long chain cannot hold a slot while other instances wait.
EAGER_STEPS = 20


def serves(app: DurableApp, queue: str) -> bool:
    return app.local_queues is not None and queue in app.local_queues


def drive(app: DurableApp, taskhub: str, instance_id: str) -> None:
    """Step the instance; while a step leaves exactly one activity this worker serves, run it here and step again."""
    for _ in range(EAGER_STEPS):
        dispatch = run_one_step(app, taskhub, instance_id)
        item = _take_eager_activity(app, dispatch)
        publish(app, dispatch)
        if item is None:
            return
        if execute_work_item(app, taskhub, item) is None:
            return  # another worker holds it and will wake the instance
    wake(app, instance_id)  # budget spent: the next step goes through the broker


def on_activity_message(app: DurableApp, taskhub: str, item_id: int, wake_orchestrator: bool) -> None:
    instance_id = execute_work_item(app, taskhub, item_id)
    if instance_id is None or not wake_orchestrator:
        return
    if serves(app, app.settings.queue("orchestrator")):
        try:
            drive(app, taskhub, instance_id)
            return
        except Exception:
            log.exception("an eager step of %s failed; handing it to the broker", instance_id)
    wake(app, instance_id)


def _take_eager_activity(app: DurableApp, dispatch: Dispatch) -> int | None:
    if dispatch.chord_instance is not None or len(dispatch.activities) != 1:
        return None
    item, name = dispatch.activities[0]
    if not serves(app, activity_queue(app, name)):
        return None
    dispatch.activities.clear()
    return item
