"""The activity task: claim the work item under a lease, run the user's function, record the result once."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..errors import FailureDetails, NotRegisteredError
from ..logs import work_fields
from ..orchestrator.history import FailureInfo, TaskCompleted, TaskFailed
from ..registry import ActivityContext, ActivitySpec, invoke
from ..serialization import encode
from ..store import work
from ..store.db import single_statement, transaction
from ..telemetry.metrics import labelled, metrics
from ..telemetry.tracing import SpanKind, failed, span
from .timeouts import Attempt
from .tracing import activity_parent

if TYPE_CHECKING:
    from ..app import DurableApp
    from ..models import WorkItem

log = logging.getLogger(__name__)


def claim(app: DurableApp, taskhub: str, item_id: int, owner: str) -> WorkItem | None:
    """Lease the work item to `owner`; None if it is done or another worker holds a live lease."""
    with single_statement(app.settings.database_url) as session:
        return work.claim(session, taskhub, item_id, owner, app.settings.lease_seconds)


def record(app: DurableApp, item: WorkItem, outcome: TaskCompleted | TaskFailed) -> None:
    """Record an activity's outcome on its own (the eager path records it with the next step instead)."""
    with transaction(app.settings.database_url) as session:
        work.complete(session, item, outcome)


def perform(
    app: DurableApp, taskhub: str, item: WorkItem, owner: str, traceparent: str | None = None
) -> TaskCompleted | TaskFailed:
    """Run an activity whose lease `owner` holds, renewing the lease meanwhile; its outcome, not yet recorded.
    Its span hangs under `traceparent`, the step that scheduled it."""
    # The activity's name is the span's; each attribute more costs every span about 4 µs to make and encode.
    attributes = {
        "durable.instance_id": item.instance_id,
        "durable.task_id": item.task_id,
        "durable.attempt": item.attempts,
    }
    parent = activity_parent(app.settings.database_url, taskhub, item.instance_id, traceparent)
    clock = time.perf_counter()
    with span(f"activity {item.name}", attributes, parent=parent, kind=SpanKind.CONSUMER) as current:
        event = _attempt(app, taskhub, item, owner)
        if isinstance(event, TaskFailed):
            failed(current, f"{event.failure.error_type}: {event.failure.message}")
    recorded = metrics()
    labelled(recorded.activities, item.name, "completed" if isinstance(event, TaskCompleted) else "failed").inc()
    labelled(recorded.activity_seconds, item.name).observe(time.perf_counter() - clock)
    return event


def _attempt(app: DurableApp, taskhub: str, item: WorkItem, owner: str) -> TaskCompleted | TaskFailed:
    """One attempt under the lease, with the work's fields on every log line: its outcome, timed."""
    event: TaskCompleted | TaskFailed
    started = datetime.now(UTC)
    with (
        app.leases.holding(item.id, owner),
        work_fields(instance_id=item.instance_id, name=item.name, attempt=item.attempts),
    ):
        try:
            result = _run(app, taskhub, item, app.registry.activity(item.name))
            event = TaskCompleted(task_id=item.task_id, result=result)
        except NotRegisteredError as error:
            event = _failed(item.task_id, error)
        except Exception as error:
            log.info("activity %s of %s failed: %r", item.name, item.instance_id, error)
            event = _failed(item.task_id, error)
    return event.model_copy(update={"started_at": started, "finished_at": datetime.now(UTC)})


def _run(app: DurableApp, taskhub: str, item: WorkItem, spec: ActivitySpec) -> Any:
    """The activity's encoded result; under its timeouts when it has any."""
    settings = app.settings
    attempt = Attempt(spec) if spec.timed else None
    context = ActivityContext(
        taskhub=taskhub,
        instance_id=item.instance_id,
        task_id=item.task_id,
        name=item.name,
        attempt=item.attempts,
        idempotency_key=item.idempotency_key,
        _on_heartbeat=attempt.heartbeat if attempt is not None else None,
    )
    what, limit = f"result of activity {item.name!r}", settings.max_payload_bytes
    if spec.in_step:
        # Scheduled as a work item all the same (by an older release): a transaction of its own,
        # which a result too large to record undoes, as the step's savepoint would.
        with transaction(settings.database_url) as session:
            return encode(invoke(spec, context, item.input, session), what=what, limit=limit)
    if attempt is None:
        return encode(invoke(spec, context, item.input), what=what, limit=limit)
    result = app.watchdog.call(attempt, lambda: invoke(spec, context, item.input))
    return encode(result, what=what, limit=limit)


def _failed(task_id: int, error: BaseException) -> TaskFailed:
    return TaskFailed(task_id=task_id, failure=FailureInfo.of(FailureDetails.from_exception(error)))
