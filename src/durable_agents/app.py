"""DurableApp: a Celery app that knows its orchestrations and activities, and the worker start-up step."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar, overload

from celery import Celery, bootsteps
from kombu.entity import Queue

from .config import Settings
from .errors import ConfigurationError
from .registry import Registry
from .store.schema import check_schema
from .store.steps import ExecutorCache
from .tasks.activity import run_activity
from .tasks.dispatch import ACTIVITY_TASK, STEP_TASK, SWEEP_TASK
from .tasks.step import orchestrator_step
from .tasks.sweeper import SweeperThread, sweep_once

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger(__name__)


class DurableApp(Celery):  # type: ignore[misc]
    """Register orchestrations and activities on it; run it with `durable-agents worker module:app`.

    It is a Celery app, so `celery -A module worker` works as well. Settings come from the
    environment (see `Settings`) unless given here.
    """

    def __init__(
        self,
        main: str = "durable_agents",
        *,
        settings: Settings | None = None,
        taskhub: str | None = None,
        database_url: str | None = None,
        redis_url: str | None = None,
        broker_url: str | None = None,
        sweeper: bool = True,
        **celery_options: Any,
    ) -> None:
        overrides: dict[str, Any] = {
            key: value
            for key, value in {
                "taskhub": taskhub,
                "database_url": database_url,
                "redis_url": redis_url,
                "broker_url": broker_url,
            }.items()
            if value is not None
        }
        self.settings = settings.model_copy(update=overrides) if settings else Settings(**overrides)
        self.registry = Registry()
        self.executor_cache = ExecutorCache(self.settings.replay_cache_size)
        self.run_sweeper = sweeper
        super().__init__(
            main, broker=self.settings.effective_broker_url, backend=self.settings.redis_url, **celery_options
        )
        self._configure_celery()
        self._register_tasks()
        self.steps["worker"].add(DurableWorkerStep)

    # -- registration ------------------------------------------------------------------------

    @overload
    def orchestration(self, fn: F, *, name: str | None = None) -> F: ...
    @overload
    def orchestration(self, fn: None = None, *, name: str | None = None) -> Callable[[F], F]: ...
    def orchestration(self, fn: F | None = None, *, name: str | None = None) -> F | Callable[[F], F]:
        """Register a generator function `fn(context)` as an orchestration (by default under its name)."""

        def register(target: F) -> F:
            target.__durable_name__ = self.registry.add_orchestration(target, name)  # type: ignore[attr-defined]
            return target

        return register(fn) if fn is not None else register

    @overload
    def activity(self, fn: F, *, name: str | None = None) -> F: ...
    @overload
    def activity(self, fn: None = None, *, name: str | None = None) -> Callable[[F], F]: ...
    def activity(self, fn: F | None = None, *, name: str | None = None) -> F | Callable[[F], F]:
        """Register `fn(input)`, `fn(context, input)` or `fn()` (sync or async) as an activity."""

        def register(target: F) -> F:
            target.__durable_name__ = self.registry.add_activity(target, name)  # type: ignore[attr-defined]
            return target

        return register(fn) if fn is not None else register

    def orchestration_trigger(self, context_name: str = "context", name: str | None = None) -> Callable[[F], F]:
        """Durable Functions spelling of `orchestration`; `context_name` is accepted for compatibility."""
        return self.orchestration(name=name)

    def activity_trigger(self, input_name: str = "input", name: str | None = None) -> Callable[[F], F]:
        """Durable Functions spelling of `activity`; `input_name` is accepted for compatibility."""
        return self.activity(name=name)

    # -- Celery wiring -----------------------------------------------------------------------

    def _configure_celery(self) -> None:
        settings = self.settings
        queues = [Queue(settings.queue(role)) for role in ("orchestrator", "activities")]  # type: ignore[no-untyped-call]
        self.conf.update(
            task_serializer="json",
            result_serializer="json",
            accept_content=["json"],
            result_accept_content=["json"],
            task_default_queue=settings.queue("orchestrator"),
            task_queues=queues,
            task_ignore_result=True,
            result_expires=3600,
            worker_prefetch_multiplier=1,
            worker_send_task_events=True,
            task_send_sent_event=True,
            broker_connection_retry_on_startup=True,
            beat_schedule={
                "durable-agents-sweep": {"task": SWEEP_TASK, "schedule": settings.sweep_interval},
            },
        )

    def _register_tasks(self) -> None:
        hub = self.settings.taskhub

        def check_hub(taskhub: str) -> None:
            if taskhub != hub:
                raise ConfigurationError(
                    f"a message for task hub {taskhub!r} reached a worker of task hub {hub!r}; "
                    "give each task hub its own queues (the default) or its own broker"
                )

        def step(taskhub: str, instance_id: str) -> None:
            check_hub(taskhub)
            orchestrator_step(self, taskhub, instance_id)

        def activity(taskhub: str, item_id: int, wake: bool = True) -> None:
            check_hub(taskhub)
            run_activity(self, taskhub, item_id, wake)

        def sweep() -> int:
            return sweep_once(self)

        self.task(name=STEP_TASK, shared=False, ignore_result=True)(step)
        # Not ignoring results: chords count their members' results in the backend.
        self.task(name=ACTIVITY_TASK, shared=False, ignore_result=False)(activity)
        self.task(name=SWEEP_TASK, shared=False, ignore_result=True)(sweep)


class DurableWorkerStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """Refuses to start against a wrong schema; runs the sweeper thread inside the worker."""

    def __init__(self, worker: Any, **options: Any) -> None:
        super().__init__(worker, **options)
        self.sweeper: SweeperThread | None = None

    def start(self, worker: Any) -> None:
        app: DurableApp = worker.app
        check_schema(app.settings.database_url)
        if app.run_sweeper:
            self.sweeper = SweeperThread(app)
            self.sweeper.start()
        log.info(
            "durable-agents worker for task hub %r: %d orchestrations, %d activities",
            app.settings.taskhub,
            len(app.registry.orchestrations),
            len(app.registry.activities),
        )

    def stop(self, worker: Any) -> None:
        if self.sweeper is not None:
            self.sweeper.stop()
            self.sweeper = None
