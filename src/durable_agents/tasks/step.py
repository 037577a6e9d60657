"""The orchestrator step: one transaction that replays an instance and records its decisions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..steps.driver import Stepper
from ..steps.in_step import ISOLATE_IN_STEP, InStepActivityError
from ..steps.outcome import Dispatch, EagerClaim
from ..store.db import transaction
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
    stepper = Stepper(app.registry, app.executor_cache, settings.max_payload_bytes, eager, app.version_gate)
    with transaction(settings.database_url) as session:
        session.info[ISOLATE_IN_STEP] = isolate_in_step
        outcome = stepper.run(session, taskhub, instance_id, completion)
    # Only now, after commit, is the executor's state the stored state.
    for stepped, execution_id, executor in outcome.executors:
        app.executor_cache.put(taskhub, stepped, execution_id, executor)
    return outcome.dispatch
