"""Publishing Celery messages after commit: ids only, possibly twice, never relied upon alone."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from celery import Signature, chord

from ..steps.outcome import Dispatch

if TYPE_CHECKING:
    from ..app import DurableApp

log = logging.getLogger(__name__)

STEP_TASK = "durable_agents.orchestrator_step"
ACTIVITY_TASK = "durable_agents.activity"
DRAIN_TASK = "durable_agents.drain"
SWEEP_TASK = "durable_agents.sweep"


def publish(app: DurableApp, dispatch: Dispatch) -> None:
    """Send the messages a committed transaction implies.

    A failure to publish is logged and otherwise ignored: the work is in Postgres and the sweeper
    dispatches it again once it has waited `redispatch_after` seconds.
    """
    hub = app.settings.taskhub
    try:
        # Chords count results in Redis; embedded mode has none and wakes the step per completion.
        use_chord = dispatch.chord_instance is not None and not app.settings.embedded
        if use_chord and len(dispatch.activities) > 1:
            # One wake-up for the whole fan-in instead of one per completion, and one message per
            # drainer rather than per activity. Correctness does not depend on it: completions are
            # rows, and a lost callback or drainer is covered by the sweeper.
            header = _chord_header(app, dispatch.activities)
            callback = app.signature(
                STEP_TASK, args=(hub, dispatch.chord_instance), queue=app.settings.queue("orchestrator"), immutable=True
            )
            chord(header)(callback)
        else:
            for item, name in dispatch.activities:
                # Outside a chord nobody reads the result: keep it out of the backend.
                app.send_task(
                    ACTIVITY_TASK, args=(hub, item, True), queue=activity_queue(app, name), ignore_result=True
                )
        for instance_id in dict.fromkeys(dispatch.steps):
            wake(app, instance_id)
        for instance_id, version in dispatch.parked:
            queue = app.version_router.queue_for(version)
            log.info(
                "left the step of %s (version %s) for a worker of its version (this one runs %s, match %s)%s",
                instance_id,
                version or "none",
                app.version or "none",
                app.versioning.match,
                f": sent to {queue}" if queue else "; none is live, the sweeper brings it back",
            )
            if queue is not None:
                wake(app, instance_id, queue=queue)
    except Exception as error:  # one line: with the broker down, every step says it again
        log.warning("publishing to the broker failed (%s); the sweeper will dispatch this work again", error)


def _chord_header(app: DurableApp, activities: list[tuple[int, str]]) -> list[Signature]:
    """A fan-out's chord members: per queue, one drainer for each live worker slot consuming it, and no
    more drainers than activities. While no live worker of a queue is known, its activities get a
    member each, as many as any number of workers that turn up could run at once."""
    hub = app.settings.taskhub
    by_queue: dict[str, list[int]] = {}
    for item, name in activities:
        by_queue.setdefault(activity_queue(app, name), []).append(item)
    header: list[Signature] = []
    for queue, item_ids in by_queue.items():
        slots = app.slot_census.slots(queue)
        if not slots:
            header.extend(
                app.signature(ACTIVITY_TASK, args=(hub, item, False), queue=queue, immutable=True) for item in item_ids
            )
            continue
        drainers = min(len(item_ids), slots)
        header.extend(
            app.signature(DRAIN_TASK, args=(hub, item_ids, share, drainers), queue=queue, immutable=True)
            for share in range(drainers)
        )
    return header


def wake(app: DurableApp, instance_id: str, *, queue: str | None = None) -> None:
    """Ask an orchestrator worker to run a step of `instance_id`.

    Best effort, like every message: what the step will consume is already committed, and the
    sweeper dispatches it again if this message is lost or cannot be sent.
    """
    try:
        app.send_task(
            STEP_TASK,
            args=(app.settings.taskhub, instance_id),
            queue=queue or app.settings.queue("orchestrator"),
            ignore_result=True,  # nobody reads a step's result; asking would wait on the result backend
        )
    except Exception as error:  # one line: with the broker down, every wake-up says it again
        log.warning("could not publish a wake-up for %s (%s); the sweeper will dispatch it", instance_id, error)


def activity_queue(app: DurableApp, activity: str) -> str:
    spec = app.registry.activities.get(activity)
    return app.settings.queue(spec.queue_role if spec is not None else "activities")
