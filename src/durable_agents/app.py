"""DurableApp: a Celery app that knows its orchestrations, activities, entities and agents."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar, overload

from celery import Celery
from pydantic import BaseModel

from .agents import observe
from .agents.activities import add_agent_queue, register_agent_activities
from .agents.agent import Agent
from .agents.approvals import ApprovalPolicy, as_policy
from .agents.limits import LocalModelSlots, ModelSlots
from .agents.proxy import AGENT_TURN, SESSION_ENTITY, SESSION_ORCHESTRATION, OrchestrationAgent
from .agents.tools import ToolSpec, arguments_model, describe
from .agents.turn import make_agent_session, make_agent_turn, refuse_operations
from .celery_config import (
    check_priority,
    check_queue_name,
    check_rate_limit,
    engine_defaults,
    under_user_settings,
)
from .config import Settings
from .connections import celery_ssl_options, redis_ssl_options
from .errors import AgentNotRegisteredError, ConfigurationError
from .logs import install_in_celery
from .orchestrator.context import OrchestrationContext
from .orchestrator.versions import VersioningOptions, checked_version
from .registry import Registry, Routing
from .serving import run_worker
from .steps.cache import ExecutorCache
from .steps.versions import VersionGate
from .streaming.redis_stream import RedisStreamCallback
from .tasks.dispatch import ACTIVITY_TASK, DRAIN_TASK, STEP_TASK, SWEEP_TASK, rate_limited_task
from .tasks.drain import on_drain_message
from .tasks.eager import drive, on_activity_message
from .tasks.leases import LeaseRenewer
from .tasks.presence import SlotCensus
from .tasks.sweeper import Reach, sweep_once
from .tasks.timeouts import Watchdog
from .tasks.trigger import register_trigger_task
from .tasks.versions import VersionRouter
from .worker_step import DurableWorkerStep

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
        agents: Sequence[Agent] = (),
        version: str | None = None,
        versioning: VersioningOptions | None = None,
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
        #: The orchestration version of this code: new instances get it, and `versioning` matches against it.
        self.version = checked_version(version or None)
        self.versioning = versioning or VersioningOptions()
        if self.versioning.match != "none" and self.version is None:
            raise ConfigurationError(
                f"VersioningOptions(match={self.versioning.match!r}) needs the app's version: DurableApp(version=...)"
            )
        self.version_router = VersionRouter(self)
        self.registry = Registry()
        # `context.get_agent(name)` in orchestration code: the agents layer plugs into the pure engine here.
        self.registry.agent_factory = self._orchestration_agent
        self.executor_cache = ExecutorCache(self.settings.replay_cache_size)
        self.run_sweeper = sweeper
        #: The queues this process's worker consumes (None outside a worker).
        self.local_queues: set[str] | None = None
        #: Live worker slots per queue, which size a fan-out's drainers.
        self.slot_census = SlotCensus(self)
        self.agents: dict[str, Agent] = {}
        #: Who hears agent replies as they stream; the Redis Stream writer joins with the first agent.
        self.response_callbacks: list[Any] = []
        #: Callbacks that hear only one agent's replies, by agent name.
        self.agent_callbacks: dict[str, list[Any]] = {}
        self._model_slots: ModelSlots | LocalModelSlots | None = None
        self._leases: LeaseRenewer | None = None
        self._watchdog: Watchdog | None = None
        self.sweep_reach = Reach()
        # Embedded mode keeps results in memory: nothing reads them but chords, which it does not use.
        backend = "cache+memory://" if self.settings.embedded else self.settings.redis_url
        super().__init__(main, broker=self.settings.effective_broker_url, backend=backend, **celery_options)
        self._configure_celery()
        self._register_tasks()
        self.steps["worker"].add(DurableWorkerStep)
        install_in_celery()  # DURABLE_AGENTS_LOG_FORMAT=json
        for agent in agents:
            self.add_agent(agent)

    # -- registration ------------------------------------------------------------------------

    @overload
    def orchestration(self, fn: F, *, name: str | None = None, queue: str | None = None) -> F: ...
    @overload
    def orchestration(
        self, fn: None = None, *, name: str | None = None, queue: str | None = None
    ) -> Callable[[F], F]: ...
    def orchestration(
        self, fn: F | None = None, *, name: str | None = None, queue: str | None = None
    ) -> F | Callable[[F], F]:
        """Register a generator function `fn(context)` as an orchestration (by default under its name).

        `queue` is a short queue name of this task hub for its steps (`durable_agents.<hub>.NAME`), served
        by workers started with `-Q NAME`; by default they go to the `orchestrator` queue."""
        role = check_queue_name(queue) if queue is not None else "orchestrator"

        def register(target: F) -> F:
            target.__durable_name__ = self.registry.add_orchestration(target, name, queue_role=role)  # type: ignore[attr-defined]
            return target

        return register(fn) if fn is not None else register

    @overload
    def activity(
        self,
        fn: F,
        *,
        name: str | None = None,
        queue: str | None = None,
        rate_limit: str | None = None,
        priority: int | None = None,
        start_to_close_timeout: timedelta | float | None = None,
        heartbeat_timeout: timedelta | float | None = None,
    ) -> F: ...
    @overload
    def activity(
        self,
        fn: None = None,
        *,
        name: str | None = None,
        queue: str | None = None,
        rate_limit: str | None = None,
        priority: int | None = None,
        start_to_close_timeout: timedelta | float | None = None,
        heartbeat_timeout: timedelta | float | None = None,
    ) -> Callable[[F], F]: ...
    def activity(
        self,
        fn: F | None = None,
        *,
        name: str | None = None,
        queue: str | None = None,
        rate_limit: str | None = None,
        priority: int | None = None,
        start_to_close_timeout: timedelta | float | None = None,
        heartbeat_timeout: timedelta | float | None = None,
    ) -> F | Callable[[F], F]:
        """Register `fn(input)`, `fn(context, input)` or `fn()` (sync or async) as an activity.

        `queue` is a short queue name of this task hub (`queue="gpu"`: `durable_agents.<hub>.gpu`), served
        by workers started with `-Q gpu`; `rate_limit` is Celery's (`"10/m"`: per worker), `priority` the
        message priority Celery passes to the broker (Redis serves 0 first).

        `start_to_close_timeout` bounds each attempt; `heartbeat_timeout` bounds the silence between two
        `context.heartbeat()` calls. An attempt past either fails with ActivityTimeoutError (which the
        call's retry policy may retry), and the worker takes its slot back.
        """
        role = check_queue_name(queue) if queue is not None else "activities"
        routing = Routing(rate_limit=check_rate_limit(rate_limit), priority=check_priority(priority))

        def register(target: F) -> F:
            registered = self.registry.add_activity(
                target,
                name,
                queue_role=role,
                routing=routing,
                start_to_close_timeout=start_to_close_timeout,
                heartbeat_timeout=heartbeat_timeout,
            )
            if routing.rate_limit is not None:
                # A task of its own: Celery's rate limits count messages per task.
                self.task(name=rate_limited_task(registered), shared=False, ignore_result=False,
                          rate_limit=routing.rate_limit)(self._on_activity_message)  # fmt: skip
            target.__durable_name__ = registered  # type: ignore[attr-defined]
            return target

        return register(fn) if fn is not None else register

    def orchestration_trigger(self, context_name: str = "context", name: str | None = None) -> Callable[[F], F]:
        """Durable Functions spelling of `orchestration`; `context_name` is accepted for compatibility."""
        return self.orchestration(name=name)

    def activity_trigger(self, input_name: str = "input", name: str | None = None) -> Callable[[F], F]:
        """Durable Functions spelling of `activity`; `input_name` is accepted for compatibility."""
        return self.activity(name=name)

    @overload
    def entity(self, target: F, *, name: str | None = None) -> F: ...
    @overload
    def entity(self, target: None = None, *, name: str | None = None) -> Callable[[F], F]: ...
    def entity(self, target: F | None = None, *, name: str | None = None) -> F | Callable[[F], F]:
        """Register an entity (by default under its name): a class whose public methods are its operations,
        working on `self.state`, or a function `fn(state, operation, input)` returning the new state."""

        def register(cls_or_fn: F) -> F:
            cls_or_fn.__durable_name__ = self.registry.add_entity(cls_or_fn, name)  # type: ignore[attr-defined]
            return cls_or_fn

        return register(target) if target is not None else register

    # -- agents ------------------------------------------------------------------------------

    def add_agent(self, agent: Agent) -> Agent:
        """Host `agent` on this app's workers; its model and tool calls go to its queue (`Agent(queue=...)`,
        by default the agents queue)."""
        if agent.name in self.agents and self.agents[agent.name] is not agent:
            raise ValueError(f"an agent named {agent.name!r} is already registered")
        if not self.agents:
            self._install_agent_runtime()
        if agent.queue_role != "agents":
            add_agent_queue(self, agent.queue_role)
        self.agents[agent.name] = agent
        return agent

    def add_response_callback(self, callback: Any, *, agent: str | None = None) -> None:
        """Hear every agent reply (or, with `agent`, that agent's): `on_chunk`, `on_restart`, `on_response`,
        `on_error`, or the async `handle_agent_response(context, stream)`. A failing callback is logged and
        never breaks a turn."""
        if agent is None:
            self.response_callbacks.append(callback)
        else:
            self.agent_callbacks.setdefault(agent, []).append(callback)

    def start(self, argv: list[str] | None = None) -> None:
        """Serve this app's worker in the foreground until Ctrl-C or SIGTERM, as the reference's
        `worker.start()` does: embedded on the SQLite file of the working directory, or a Celery worker
        on PostgreSQL and Redis (as `durable-agents worker`). With `argv`, Celery's own command line."""
        if argv is not None:
            super().start(argv)
            return
        status = run_worker(self)
        if status:
            raise SystemExit(status)

    def _install_agent_runtime(self) -> None:
        self.response_callbacks.insert(
            0,
            RedisStreamCallback(
                self.settings.redis_url,
                prefix=self.settings.queue_prefix,
                ttl_seconds=self.settings.stream_ttl_seconds,
                connection_options=redis_ssl_options(self.settings, self.settings.redis_url),
            ),
        )
        self.registry.add_orchestration(make_agent_session(self), SESSION_ORCHESTRATION)
        self.registry.add_orchestration(make_agent_turn(self), AGENT_TURN)
        self.registry.add_entity(refuse_operations, SESSION_ENTITY, records_locks=False)
        self.registry.unversioned |= {SESSION_ORCHESTRATION, AGENT_TURN}
        register_agent_activities(self)

    def agent(self, name: str) -> Agent:
        try:
            return self.agents[name]
        except KeyError:
            raise AgentNotRegisteredError(name, list(self.agents)) from None

    def get_agent(self, context: OrchestrationContext, name: str) -> OrchestrationAgent:
        """The agent `name` inside an orchestration: `yield agent.run(...)` is a durable turn."""
        self.agent(name)
        return self._orchestration_agent(context, name)

    def _orchestration_agent(self, context: OrchestrationContext, name: str) -> OrchestrationAgent:
        agent = self.agents.get(name)
        return OrchestrationAgent(context, name, agent.queue_role if agent is not None else None)

    def durable_tool(
        self, fn: F | None = None, *, name: str | None = None, requires_approval: bool | ApprovalPolicy = False
    ) -> F | Callable[[F], F]:
        """Make `fn` an agent tool that runs as an activity: the turn is checkpointed while it runs, no
        worker slot waits for it, and a tool of an hour survives worker restarts. With
        `requires_approval`, each call waits (durably) for a person to approve or reject it."""

        def register(target: F) -> F:
            tool_name = name or target.__name__
            activity_name = f"tool.{tool_name}"
            spec = ToolSpec(
                tool_name,
                describe(target),
                arguments_model(target, tool_name),
                "activity",
                fn=target,
                target=activity_name,
                approval=as_policy(requires_approval, f"tool {tool_name!r}"),
            )

            def run_tool(arguments: dict[str, Any]) -> Any:
                with observe.tool_call(spec.name, spec.description):
                    return spec.invoke(spec.parse_arguments(arguments))

            self.registry.add_activity(run_tool, activity_name)
            target.__durable_tool__ = spec  # type: ignore[attr-defined]
            return target

        return register(fn) if fn is not None else register

    def orchestration_tool(
        self,
        *,
        arguments: type[BaseModel],
        name: str | None = None,
        description: str | None = None,
        requires_approval: bool | ApprovalPolicy = False,
    ) -> Callable[[F], F]:
        """Make an orchestration an agent tool: the model's arguments (validated by `arguments`) are its
        input, and the turn waits for it as a sub-orchestration."""

        def register(target: F) -> F:
            orchestration_name = self.registry.add_orchestration(target, name)
            target.__durable_name__ = orchestration_name  # type: ignore[attr-defined]
            target.__durable_tool__ = ToolSpec(  # type: ignore[attr-defined]
                orchestration_name,
                description or describe(target),
                arguments,
                "orchestration",
                target=orchestration_name,
                approval=as_policy(requires_approval, f"tool {orchestration_name!r}"),
            )
            return target

        return register

    @property
    def model_slots(self) -> ModelSlots | LocalModelSlots:
        if self._model_slots is None:
            embedded = self.settings.embedded
            self._model_slots = (
                LocalModelSlots()
                if embedded
                else ModelSlots(self.settings.redis_url, redis_ssl_options(self.settings, self.settings.redis_url))
            )
        return self._model_slots

    @property
    def version_gate(self) -> VersionGate | None:
        """What a step checks before it runs an instance's code (None: every instance runs)."""
        if self.versioning.match == "none":
            return None
        return VersionGate(self.version, self.versioning, frozenset(self.registry.unversioned))

    @property
    def leases(self) -> LeaseRenewer:
        """Keeps the leases of the activities this process runs alive (made on first use: clients never run any)."""
        if self._leases is None:
            self._leases = LeaseRenewer(self.settings)
        return self._leases

    @property
    def watchdog(self) -> Watchdog:
        """Times the activities with timeouts this process runs; a call it cannot stop silences the leases."""
        if self._watchdog is None:
            self._watchdog = Watchdog(self.settings.lease_holder_timeout, self.leases.silence)
        return self._watchdog

    # -- Celery wiring -----------------------------------------------------------------------

    def _configure_celery(self) -> None:
        # Defaults, not settings: what the user passes to DurableApp(...) or loads with config_from_object
        # wins. `check_celery_config` refuses the few values that would break a guarantee.
        self.on_after_configure.connect(self._add_engine_defaults, weak=False)

    def _add_engine_defaults(self, sender: Any = None, source: Any = None, **_: Any) -> None:
        settings = self.settings
        defaults = engine_defaults(settings)
        # TLS for rediss:// URLs (README, "Secure connections"); redis:// URLs get no SSL options.
        broker_ssl = celery_ssl_options(settings, settings.effective_broker_url)
        if broker_ssl is not None:
            defaults["broker_use_ssl"] = broker_ssl
        backend_ssl = celery_ssl_options(settings, settings.redis_url)
        if backend_ssl is not None and not settings.embedded:
            defaults["redis_backend_use_ssl"] = backend_ssl
        under_user_settings(source if source is not None else self.conf, defaults)

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
            drive(self, taskhub, instance_id)

        def activity(taskhub: str, item_id: int, wake: bool = True) -> None:
            check_hub(taskhub)
            on_activity_message(self, taskhub, item_id, wake)

        def drain(taskhub: str, item_ids: list[int], share: int, shares: int) -> int:
            check_hub(taskhub)
            return on_drain_message(self, taskhub, item_ids, share, shares)

        def sweep() -> int:
            return sweep_once(self)

        self.task(name=STEP_TASK, shared=False, ignore_result=True)(step)
        # Not ignoring results: chords count their members' results in the backend.
        self.task(name=ACTIVITY_TASK, shared=False, ignore_result=False)(activity)
        self._on_activity_message = activity
        self.task(name=DRAIN_TASK, shared=False, ignore_result=False)(drain)
        self.task(name=SWEEP_TASK, shared=False, ignore_result=True)(sweep)
        register_trigger_task(self)
