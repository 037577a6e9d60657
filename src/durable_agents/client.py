"""The client: start, query, signal and manage orchestration instances (sync and asyncio flavours)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from opentelemetry.trace import Span

from .app import DurableApp
from .approvals_client import ToolApprovals
from .async_waits import in_io_thread, wait_for_state
from .config import Settings
from .diagnosis import explain_instance
from .embedded import ensure_worker
from .errors import InstanceNotFoundError, WaitTimeoutError
from .explanation import Explanation
from .failures import service_failure
from .ids import EntityId
from .moments import clamped
from .orchestrator.context import durable_name
from .orchestrator.history import EntityOperation
from .schedule_client import ScheduleMethods
from .serialization import encode
from .state import OrchestrationState, OrchestrationStatus
from .store import entities, instances, rewinds, workers
from .store.db import single_statement, transaction
from .store.entities import EntityState
from .store.listener import instance_changes
from .store.schema import check_schema, upgrade
from .store.workers import WorkerInfo
from .tags import checked_tags
from .tasks.dispatch import wake
from .tasks.start import start_instance
from .telemetry.setup import configure_tracing
from .telemetry.tracing import SpanKind, span

#: How long a wait pauses before it reads the state again after the database did not answer.
WAIT_RETRY_SECONDS = 0.5


class DurableClient(ToolApprovals, ScheduleMethods):
    """Talks to Postgres (the truth) and publishes wake-ups to the broker; needs no worker in-process.

    Built from the app, it also checks orchestration names against the app's registry (and edited
    arguments of tool approvals against its agents' tools).
    """

    def __init__(
        self,
        app: DurableApp | None = None,
        *,
        taskhub: str | None = None,
        database_url: str | None = None,
        redis_url: str | None = None,
        broker_url: str | None = None,
        settings: Settings | None = None,
        embedded_worker: bool = True,
    ) -> None:
        """`embedded_worker=False`: in embedded mode, do not run the app's worker in this process (the
        CLI's clients: a short-lived process would take work and leave it to leases, and count as a live
        worker while it ran; `durable-agents worker MODULE:app` serves the file instead)."""
        configure_tracing()  # from OTEL_TRACES_EXPORTER, when set: the client's spans root each instance's trace
        # Only a client built from the user's app can check names against its registry.
        self._knows_names = app is not None
        users_app = app
        if app is None or taskhub is not None or database_url or redis_url or broker_url or settings:
            base = settings or (app.settings if app is not None else None)
            app_for_client = DurableApp(
                settings=base, taskhub=taskhub, database_url=database_url, redis_url=redis_url, broker_url=broker_url
            )
            if app is not None:
                app_for_client.registry = app.registry
                app_for_client.agents = app.agents
                app_for_client.version = app.version
            app = app_for_client
        self.app = app
        self.settings = app.settings
        self.taskhub = app.settings.taskhub
        self._url = app.settings.database_url
        if self.settings.embedded and users_app is not None and embedded_worker:
            # One process is everything: the worker runs here, on the app that registered the code.
            # A client without the app (the CLI, the API) only reads and writes the store; the
            # program's own sweeper picks up what it changes.
            ensure_worker(users_app)
        elif self.settings.embedded:
            upgrade(self._url)
        check_schema(self._url)

    # -- starting ----------------------------------------------------------------------------

    def schedule_new_orchestration(
        self,
        orchestrator: str | Callable[..., Any],
        *,
        input: Any = None,
        instance_id: str | None = None,
        start_at: datetime | None = None,
        reuse_id: bool = False,
        tags: Mapping[str, str] | None = None,
        version: str | None = None,
    ) -> str:
        """Start an instance and return its id. An id already in use is refused unless `reuse_id`
        is set and the old instance has finished (it is then replaced). `tags` label the instance:
        `query_instances(tags=...)` finds it by them. `version` (by default the app's) is the
        instance's orchestration version: `context.version`, and what workers' versioning matches."""
        return start_instance(
            self.app,
            durable_name(orchestrator),
            input=input,
            instance_id=instance_id,
            start_at=start_at,
            reuse_id=reuse_id,
            check_name=self._knows_names,
            tags=tags,
            version=version or self.app.version,
        )

    # -- reading -----------------------------------------------------------------------------

    def get_orchestration_state(self, instance_id: str) -> OrchestrationState | None:
        with single_statement(self._url) as session:
            return instances.get(session, self.taskhub, instance_id)

    get_instance_metadata = get_orchestration_state

    def get_history(self, instance_id: str) -> list[dict[str, Any]]:
        """The instance's current execution history, oldest first, as JSON objects."""
        with transaction(self._url) as session:
            return instances.history(session, self.taskhub, instance_id)

    def query_instances(
        self,
        *,
        statuses: Sequence[OrchestrationStatus | str] | None = None,
        name: str | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        instance_id_prefix: str | None = None,
        tags: Mapping[str, str] | None = None,
        exclude_names: Sequence[str] | None = None,
        exclude_id_prefix: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[OrchestrationState]:
        """Instances of this task hub, newest first, filtered and paged; with `tags`, those that carry
        every one of them; `exclude_names` leaves out orchestrations by name and `exclude_id_prefix` ids that
        start with it (`list` and the dashboard leave out the engine's own for agents, `ids.AGENT_ID_PREFIX`)."""
        wanted = [OrchestrationStatus(s) for s in statuses] if statuses else None
        tagged = checked_tags(tags)
        with transaction(self._url) as session:
            return instances.query(
                session,
                self.taskhub,
                statuses=wanted,
                name=name,
                created_from=clamped(created_from, "created_from"),
                created_to=clamped(created_to, "created_to"),
                instance_id_prefix=instance_id_prefix,
                tags=tagged,
                exclude_names=exclude_names,
                exclude_id_prefix=exclude_id_prefix,
                limit=limit,
                offset=offset,
            )

    def wait_for_orchestration_start(self, instance_id: str, *, timeout: float = 60.0) -> OrchestrationState:
        return self._wait(instance_id, lambda s: s.runtime_status != OrchestrationStatus.PENDING, timeout, "start")

    def wait_for_orchestration_completion(
        self, instance_id: str, *, timeout: float = 60.0, missing_ok: bool = False
    ) -> OrchestrationState:
        """Wait until the instance has completed, failed or been terminated; returns its final state.

        With `missing_ok`, an instance that does not exist yet is waited for too.
        """
        return self._wait(instance_id, lambda s: s.runtime_status.is_terminal, timeout, "finish", missing_ok)

    def _wait(
        self,
        instance_id: str,
        done: Callable[[OrchestrationState], bool],
        timeout: float,
        what: str,
        missing_ok: bool = False,
    ) -> OrchestrationState:
        deadline = time.monotonic() + timeout
        with instance_changes(self._url, self.taskhub, instance_id) as wait_for_change:
            while True:
                try:
                    state = self.get_orchestration_state(instance_id)
                except Exception as error:
                    # A read is safe to repeat: a database blip (a restart, a failover) costs the wait a
                    # retry, not its caller an error, until the deadline.
                    failure = service_failure(error)
                    if failure is None or not failure.unreachable or time.monotonic() >= deadline:
                        raise
                    time.sleep(min(WAIT_RETRY_SECONDS, max(0.0, deadline - time.monotonic())))
                    continue
                if state is None and not missing_ok:
                    raise InstanceNotFoundError(instance_id, self.taskhub)
                if state is not None and done(state):
                    return state
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    status = state.runtime_status if state is not None else "not created yet"
                    raise WaitTimeoutError(
                        f"instance {instance_id!r} did not {what} within {timeout:g}s (it is {status}); "
                        "the instance is unaffected, wait again or check that a worker serves this task hub"
                    )
                wait_for_change(remaining)

    # -- signalling and managing ---------------------------------------------------------------

    def _traced(self, operation: str, instance_id: str) -> AbstractContextManager[Span]:
        """The span of a call that leaves work for an instance, in the caller's trace (as `start`'s)."""
        attributes = {"durable.instance_id": instance_id, "durable.taskhub": self.taskhub}
        return span(operation, attributes, kind=SpanKind.PRODUCER)

    def raise_orchestration_event(self, instance_id: str, event_name: str, *, data: Any = None) -> None:
        """Deliver an event; if the instance is not waiting for it yet, it is buffered until it does."""
        if not event_name:
            raise ValueError("event_name must not be empty")
        encoded = encode(data, what=f"data of event {event_name!r}", limit=self.settings.max_payload_bytes)
        with self._traced(f"raise_event {event_name}", instance_id), transaction(self._url) as session:
            instances.raise_event(session, self.taskhub, instance_id, event_name, encoded)
        wake(self.app, instance_id)

    def terminate_orchestration(self, instance_id: str, *, output: Any = None) -> bool:
        """Stop the instance and its running sub-orchestrations; False if it had already finished."""
        encoded = encode(output, what="termination output", limit=self.settings.max_payload_bytes)
        with self._traced("terminate_orchestration", instance_id), transaction(self._url) as session:
            accepted = instances.terminate(session, self.taskhub, instance_id, encoded)
        if accepted:
            wake(self.app, instance_id)
        return accepted

    def suspend_orchestration(self, instance_id: str, *, reason: str | None = None) -> None:
        with self._traced("suspend_orchestration", instance_id), transaction(self._url) as session:
            instances.suspend(session, self.taskhub, instance_id, reason)
        wake(self.app, instance_id)

    def resume_orchestration(self, instance_id: str, *, reason: str | None = None) -> None:
        with self._traced("resume_orchestration", instance_id), transaction(self._url) as session:
            instances.resume(session, self.taskhub, instance_id, reason)
        wake(self.app, instance_id)

    def rewind_orchestration(self, instance_id: str, *, reason: str | None = None) -> None:
        """Take a FAILED instance back to before its failure, once the fix is deployed: its failed activities
        and sub-orchestrations run again (failed children are rewound too), what succeeded is kept and not
        run again, and it goes on from there. The history records the rewind and `reason`."""
        with self._traced("rewind_orchestration", instance_id), transaction(self._url) as session:
            rewinds.rewind(session, self.taskhub, instance_id, reason)
        wake(self.app, instance_id)

    def restart_orchestration(self, instance_id: str, *, new_instance_id: bool = False) -> str:
        """Start a finished instance over with its original input (and its tags and version); returns the id
        it runs under: its own (the finished instance is replaced) or, with `new_instance_id`, a new one."""
        with transaction(self._url) as session:
            original = rewinds.restartable(session, self.taskhub, instance_id)
        return start_instance(
            self.app,
            original["name"],
            input=original["input"],
            instance_id=None if new_instance_id else instance_id,
            start_at=None,
            reuse_id=not new_instance_id,
            check_name=False,
            tags=original["tags"],
            version=original["version"],
        )

    def purge_orchestration(self, instance_id: str, *, recursive: bool = True) -> int:
        """Delete a finished instance (and its sub-orchestrations); returns how many were deleted."""
        with self._traced("purge_orchestration", instance_id), transaction(self._url) as session:
            return instances.purge(session, self.taskhub, instance_id, recursive=recursive)

    def purge_orchestrations(
        self,
        *,
        created_before: datetime | None = None,
        statuses: Sequence[OrchestrationStatus | str] | None = None,
    ) -> int:
        """Delete every finished instance matching the filter; returns how many were deleted."""
        wanted = [OrchestrationStatus(s) for s in statuses] if statuses else None
        before = clamped(created_before, "created_before")
        with transaction(self._url) as session:
            return instances.purge_where(session, self.taskhub, created_before=before, statuses=wanted)

    # -- entities ------------------------------------------------------------------------------

    def signal_entity(self, entity_id: EntityId | str, operation: str, input: Any = None) -> None:
        """Send entity `entity_id` ("name@key" or EntityId) an operation; it applies it once, in order
        with every other, without anyone waiting. A client built from the app refuses unknown names."""
        entity = EntityId.of(entity_id)
        if self._knows_names:
            self.app.registry.entity(entity.name).check_operation(operation)
        elif not operation:
            raise ValueError("operation must not be empty")
        what = f"input of {entity}.{operation}"
        message = EntityOperation(
            operation=operation, input=encode(input, what=what, limit=self.settings.max_payload_bytes)
        )
        with self._traced(f"signal_entity {entity.name}", entity.instance_id), transaction(self._url) as session:
            entities.post(session, self.taskhub, entity, message)
        wake(self.app, entity.instance_id)

    def get_entity(self, entity_id: EntityId | str) -> EntityState | None:
        """The entity's stored state, lock and last operations; None if it was never addressed."""
        with transaction(self._url) as session:
            return entities.get(session, self.taskhub, EntityId.of(entity_id))

    def list_entities(
        self, *, name: str | None = None, key_prefix: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[EntityState]:
        """Entities of this task hub (by name, then key), optionally of one name or key prefix."""
        with transaction(self._url) as session:
            return entities.listing(
                session, self.taskhub, name=name, key_prefix=key_prefix, limit=max(0, limit), offset=max(0, offset)
            )

    # -- who serves, and why an instance waits ---------------------------------------------------

    def explain(self, instance_id: str) -> Explanation:
        """Why the instance is not progressing: finished, suspended, no live worker serves what it
        needs, or it waits for an event, a timer, a sub-orchestration or an agent (which, since when).

        Built from the app, the client replays the instance's code to name the events it waits for.
        """
        registry = self.app.registry if self._knows_names else None
        return explain_instance(
            self._url, self.taskhub, instance_id, registry=registry, max_payload_bytes=self.settings.max_payload_bytes
        )

    def list_workers(self, *, include_dead: bool = False) -> list[WorkerInfo]:
        """The live workers of this task hub (and, with `include_dead`, those whose heartbeats stopped
        within the last hour), with the queues they consume and the names they serve."""
        with transaction(self._url) as session:
            return workers.listing(session, self.taskhub, include_dead=include_dead)

    raise_event = raise_orchestration_event
    terminate = terminate_orchestration
    suspend = suspend_orchestration
    resume = resume_orchestration
    purge = purge_orchestration
    rewind = rewind_orchestration
    restart = restart_orchestration


class AsyncDurableClient:
    """The asyncio flavour of `DurableClient`: the same methods, awaitable. Waits hold no thread (they wait
    on the process's notification listener), so one client can wait for any number of instances at once."""

    def __init__(self, app: DurableApp | None = None, **options: Any) -> None:
        self.sync = DurableClient(app, **options)
        self.taskhub = self.sync.taskhub

    async def wait_for_orchestration_start(self, instance_id: str, *, timeout: float = 60.0) -> OrchestrationState:
        return await wait_for_state(
            self.sync, instance_id, lambda s: s.runtime_status != OrchestrationStatus.PENDING, timeout, "start"
        )

    async def wait_for_orchestration_completion(
        self, instance_id: str, *, timeout: float = 60.0, missing_ok: bool = False
    ) -> OrchestrationState:
        """Wait until the instance has completed, failed or been terminated; returns its final state."""
        return await wait_for_state(
            self.sync, instance_id, lambda s: s.runtime_status.is_terminal, timeout, "finish", missing_ok
        )

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.sync, name)
        if not callable(method):
            return method

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await in_io_thread(method, *args, **kwargs)

        call.__name__ = name
        call.__doc__ = method.__doc__
        return call
