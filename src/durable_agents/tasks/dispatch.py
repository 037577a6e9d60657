"""Publishing Celery messages after commit: ids only, possibly twice, never relied upon alone."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from celery import Signature, chord

from ..steps.outcome import Dispatch
from ..store import instances
from ..store.db import single_statement
from ..telemetry.tracing import TRACEPARENT
from . import names

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
        # The step that scheduled the activities parents their spans, in whichever worker runs them.
        headers = {TRACEPARENT: dispatch.trace_parent} if dispatch.trace_parent else None
        if use_chord and len(dispatch.activities) > 1:
            # One wake-up for the whole fan-in instead of one per completion, and one message per
            # drainer rather than per activity. Correctness does not depend on it: completions are
            # rows, and a lost callback or drainer is covered by the sweeper.
            header = _chord_header(app, dispatch, headers)
            assert dispatch.chord_instance is not None
            callback = app.signature(
                STEP_TASK,
                args=(hub, dispatch.chord_instance),
                queue=step_queue(app, dispatch.chord_instance),
                immutable=True,
                **names.step(dispatch.chord_instance),
            )
            chord(header)(callback)
        else:
            for item, name in dispatch.activities:
                # Outside a chord nobody reads the result: keep it out of the backend.
                app.send_task(
                    activity_task(app, name),
                    args=(hub, item, True),
                    queue=activity_queue(app, name),
                    ignore_result=True,
                    headers=headers,
                    **_activity_options(app, name, item, dispatch.item_instances.get(item)),
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


def _chord_header(app: DurableApp, dispatch: Dispatch, headers: dict[str, str] | None) -> list[Signature]:
    """A fan-out's chord members: per queue, one drainer for each live worker slot consuming it, and no
    more drainers than activities. While no live worker of a queue is known, its activities get a
    member each, as many as any number of workers that turn up could run at once. A rate-limited
    activity gets a member each, so that Celery counts every call against its limit."""
    hub = app.settings.taskhub
    by_queue: dict[str, list[tuple[int, str]]] = {}
    header: list[Signature] = []
    for item, name in dispatch.activities:
        if rate_limited(app, name):
            header.append(_member(app, item, name, dispatch.item_instances.get(item), headers))
        else:
            by_queue.setdefault(activity_queue(app, name), []).append((item, name))
    for queue, items in by_queue.items():
        slots = app.slot_census.slots(queue)
        if not slots:
            header.extend(_member(app, item, name, dispatch.item_instances.get(item), headers) for item, name in items)
            continue
        drainers = min(len(items), slots)
        item_ids = [item for item, _ in items]
        activities = list(dict.fromkeys(name for _, name in items))  # a drainer may help with any of them
        priority = _shared_priority(app, activities)
        for share in range(drainers):
            count = len(item_ids[share::drainers])
            shown = names.drainer(activities, count, share, drainers, dispatch.chord_instance)
            header.append(
                app.signature(
                    DRAIN_TASK,
                    args=(hub, item_ids, share, drainers),
                    queue=queue,
                    immutable=True,
                    priority=priority,
                    headers=headers,
                    **shown,
                )
            )
    return header


def _member(
    app: DurableApp, item: int, name: str, instance_id: str | None, headers: dict[str, str] | None
) -> Signature:
    options = _activity_options(app, name, item, instance_id)
    hub, queue = app.settings.taskhub, activity_queue(app, name)
    return app.signature(
        activity_task(app, name), args=(hub, item, False), queue=queue, immutable=True, headers=headers, **options
    )


def _activity_options(app: DurableApp, name: str, item: int, instance_id: str | None) -> dict[str, Any]:
    options = names.activity(name, item, instance_id)
    spec = app.registry.activities.get(name)
    if spec is not None and spec.routing.priority is not None:
        options["priority"] = spec.routing.priority
    return options


def _shared_priority(app: DurableApp, activities: list[str]) -> int | None:
    """The priority of a drainer: its activities' when they all have the same one."""
    specs = [app.registry.activities.get(name) for name in activities]
    priorities = {spec.routing.priority if spec is not None else None for spec in specs}
    return priorities.pop() if len(priorities) == 1 else None


def wake(app: DurableApp, instance_id: str, *, queue: str | None = None) -> None:
    """Ask an orchestrator worker to run a step of `instance_id`.

    Best effort, like every message: what the step will consume is already committed, and the
    sweeper dispatches it again if this message is lost or cannot be sent.
    """
    try:
        app.send_task(
            STEP_TASK,
            args=(app.settings.taskhub, instance_id),
            queue=queue or step_queue(app, instance_id),
            ignore_result=True,  # nobody reads a step's result; asking would wait on the result backend
            **names.step(instance_id),
        )
    except Exception as error:  # one line: with the broker down, every wake-up says it again
        log.warning("could not publish a wake-up for %s (%s); the sweeper will dispatch it", instance_id, error)


def step_queue(app: DurableApp, instance_id: str) -> str:
    """The queue of the instance's steps: its orchestration's (the `orchestrator` queue unless it names one)."""
    registry = app.registry
    if not registry.step_queues_vary:  # the common case: no orchestration names a queue, no lookup
        return app.settings.queue("orchestrator")
    name = names.known(instance_id)
    if name is None:
        with single_statement(app.settings.database_url) as session:
            name = instances.name_of(session, app.settings.taskhub, instance_id)
        if name is not None:
            names.remember(instance_id, name)
    return app.settings.queue(registry.step_queue_role(name))


def activity_queue(app: DurableApp, activity: str) -> str:
    spec = app.registry.activities.get(activity)
    return app.settings.queue(spec.queue_role if spec is not None else "activities")


def rate_limited(app: DurableApp, activity: str) -> bool:
    """Whether the activity has a Celery rate limit: each call is then a message of its own task."""
    spec = app.registry.activities.get(activity)
    return spec is not None and spec.routing.rate_limit is not None


def activity_task(app: DurableApp, activity: str) -> str:
    """The Celery task of an activity's messages: its own when rate-limited, else the shared one."""
    return rate_limited_task(activity) if rate_limited(app, activity) else ACTIVITY_TASK


def rate_limited_task(activity: str) -> str:
    return f"{ACTIVITY_TASK}.{activity}"
