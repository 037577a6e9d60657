"""The orchestrator step: one transaction that replays an instance and records its decisions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..store.db import transaction
from ..store.steps import ISOLATE_IN_STEP, Dispatch, EagerClaim, InStepActivityError, run_step
from ..store.work import Completion

if TYPE_CHECKING:
    from ..app import DurableApp


def run_one_step(
    app: DurableApp,
    taskhub: str,
    instance_id: str,
    eager: EagerClaim | None = None,
    completion: Completion | None = None,
) -> Dispatch:
    """Step the instance (recording `completion` first) and return the messages its decisions imply,
    not yet published."""
    try:
        return _run_step(app, taskhub, instance_id, eager, completion, isolate_in_step=False)
    except InStepActivityError:
        # Rolled back whole: again, with each in-step activity under a savepoint, so that its failure
        # undoes only its own writes and the code gets it.
        return _run_step(app, taskhub, instance_id, eager, completion, isolate_in_step=True)


def _run_step(
    app: DurableApp,
    taskhub: str,
    instance_id: str,
    eager: EagerClaim | None,
    completion: Completion | None,
    *,
    isolate_in_step: bool,
) -> Dispatch:
    settings = app.settings
    with transaction(settings.database_url) as session:
        session.info[ISOLATE_IN_STEP] = isolate_in_step
        outcome = run_step(
            session,
            taskhub=taskhub,
            instance_id=instance_id,
            registry=app.registry,
            cache=app.executor_cache,
            max_payload_bytes=settings.max_payload_bytes,
            eager=eager,
            completion=completion,
        )
    # Only now, after commit, is the executor's state the stored state.
    for stepped, execution_id, executor in outcome.executors:
        app.executor_cache.put(taskhub, stepped, execution_id, executor)
    return outcome.dispatch
