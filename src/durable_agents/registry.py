"""The registry: orchestrations and activities by name, with the types their signatures declare, and how
an activity is invoked."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, get_type_hints

from .entity_specs import EntitySpec
from .errors import ActivityNotRegisteredError, EntityNotRegisteredError, OrchestrationNotRegisteredError
from .ids import EntityId
from .serialization import decode

if TYPE_CHECKING:
    from .orchestrator.context import AgentFactory


@dataclass(frozen=True)
class ActivityContext:
    """What an activity may know about its own invocation."""

    taskhub: str
    instance_id: str
    task_id: int
    name: str
    attempt: int
    #: Stable across redeliveries and crash recovery of this activity call: pass it to the outside
    #: world (payment APIs, e-mail senders) so a repeated call has its effect once.
    idempotency_key: str
    #: Where heartbeats go: the worker's watchdog, when the activity has timeouts.
    _on_heartbeat: Callable[[Any], None] | None = field(default=None, repr=False, compare=False)

    def heartbeat(self, details: Any = None) -> None:
        """Say the activity is still making progress. With a `heartbeat_timeout`, an activity silent for
        longer is taken for hung and fails with ActivityTimeoutError; `details` (the last ones) are named
        in that error. Cheap: it touches memory only, so call it as often as you like."""
        if self._on_heartbeat is not None:
            self._on_heartbeat(details)


@dataclass(frozen=True)
class Routing:
    """How an activity's messages travel through Celery, besides their queue."""

    #: Celery's rate limit ("10/m"), per worker: each call is then a message of its own task.
    rate_limit: str | None = None
    #: The message priority Celery hands the broker (Redis serves 0 first).
    priority: int | None = None


@dataclass(frozen=True)
class ActivitySpec:
    name: str
    fn: Callable[..., Any]
    takes_context: bool
    takes_input: bool
    input_type: Any
    result_type: Any
    #: The queue role its work goes to: "activities", or "agents" for model and tool calls.
    queue_role: str = "activities"
    #: Runs inside the transaction of the step that schedules it, as `fn(session, context, input)`:
    #: its writes and its completion commit together, without a work item or a step of their own.
    in_step: bool = False
    routing: Routing = Routing()
    #: Seconds one attempt may run before it fails with ActivityTimeoutError (None: no limit).
    start_to_close_timeout: float | None = None
    #: Seconds an attempt may go without `context.heartbeat()` before it is taken for hung (None: no limit).
    heartbeat_timeout: float | None = None

    @property
    def timed(self) -> bool:
        return self.start_to_close_timeout is not None or self.heartbeat_timeout is not None


@dataclass(frozen=True)
class OrchestrationSpec:
    name: str
    fn: Callable[..., Any]
    result_type: Any
    #: The queue role its steps go to: "orchestrator", or a queue of its own.
    queue_role: str = "orchestrator"


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return get_type_hints(fn)
    except Exception:  # unresolvable forward references: fall back to plain JSON
        return {}


class Registry:
    def __init__(self) -> None:
        self.orchestrations: dict[str, OrchestrationSpec] = {}
        self.activities: dict[str, ActivitySpec] = {}
        self.entities: dict[str, EntitySpec] = {}
        #: Some orchestration's steps go to a queue of its own: waking an instance needs its name.
        self.step_queues_vary = False
        #: What `context.get_agent(name)` builds; set by the app that hosts agents, passed to every executor.
        self.agent_factory: AgentFactory | None = None
        #: The engine's own orchestrations (agent sessions and turns): every worker runs them, whatever
        #: its versioning, as they are the library's code rather than the app's.
        self.unversioned: set[str] = set()

    def add_orchestration(
        self, fn: Callable[..., Any], name: str | None = None, queue_role: str = "orchestrator"
    ) -> str:
        name = name or fn.__name__
        if name in self.orchestrations and self.orchestrations[name].fn is not fn:
            raise ValueError(f"an orchestration named {name!r} is already registered")
        self.orchestrations[name] = OrchestrationSpec(name, fn, _hints(fn).get("return"), queue_role)
        if queue_role != "orchestrator":
            self.step_queues_vary = True
        return name

    def step_queue_role(self, orchestration: str | None) -> str:
        """The queue role of the orchestration's steps ("orchestrator" for a name it does not know)."""
        spec = self.orchestrations.get(orchestration) if orchestration is not None else None
        return spec.queue_role if spec is not None else "orchestrator"

    def add_activity(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        queue_role: str = "activities",
        in_step: bool = False,
        routing: Routing | None = None,
        *,
        start_to_close_timeout: timedelta | float | None = None,
        heartbeat_timeout: timedelta | float | None = None,
    ) -> str:
        """Register `fn` as activity `name`. With `in_step`, `fn(session, context, input)` writes through the
        step's own database session (see `ActivitySpec.in_step`); the timeouts are `ActivitySpec`'s."""
        name = name or fn.__name__
        timeouts = {
            "start_to_close_timeout": _seconds(start_to_close_timeout, "start_to_close_timeout", name),
            "heartbeat_timeout": _seconds(heartbeat_timeout, "heartbeat_timeout", name),
        }
        if in_step and any(timeouts.values()):
            raise ValueError(f"activity {name!r} runs in its step's transaction, which cannot be timed out")
        if name in self.activities and self.activities[name].fn is not fn:
            raise ValueError(f"an activity named {name!r} is already registered")
        hints = _hints(fn)
        params = [
            p
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if in_step:
            params = params[1:]  # the session
        first = hints.get(params[0].name) if params else None
        takes_context = len(params) >= 2 or first is ActivityContext
        input_param = params[1] if len(params) >= 2 else (params[0] if params and not takes_context else None)
        self.activities[name] = ActivitySpec(
            name=name,
            fn=fn,
            takes_context=takes_context,
            takes_input=input_param is not None,
            input_type=hints.get(input_param.name) if input_param is not None else None,
            result_type=hints.get("return"),
            queue_role=queue_role,
            in_step=in_step,
            routing=routing or Routing(),
            **timeouts,
        )
        return name

    def add_entity(self, target: Callable[..., Any], name: str | None = None, *, records_locks: bool = True) -> str:
        """Register a class (its public methods are the operations) or a function of (state, operation, input)."""
        name = name or target.__name__
        EntityId(name, "key")  # a clear error now for a name no entity id could carry
        if name in self.entities and self.entities[name].target is not target:
            raise ValueError(f"an entity named {name!r} is already registered")
        self.entities[name] = EntitySpec.of(name, target, records_locks=records_locks)
        return name

    def entity(self, name: str) -> EntitySpec:
        try:
            return self.entities[name]
        except KeyError:
            raise EntityNotRegisteredError(name, list(self.entities)) from None

    def orchestration(self, name: str) -> OrchestrationSpec:
        try:
            return self.orchestrations[name]
        except KeyError:
            raise OrchestrationNotRegisteredError(name, list(self.orchestrations)) from None

    def activity(self, name: str) -> ActivitySpec:
        try:
            return self.activities[name]
        except KeyError:
            raise ActivityNotRegisteredError(name, list(self.activities)) from None

    def result_type_of(self, kind: str, name: str) -> Any:
        """The declared return type of a registered activity or orchestration, if any."""
        table: dict[str, Any] = self.activities if kind == "activity" else self.orchestrations
        spec = table.get(name)
        return spec.result_type if spec is not None else None


def _seconds(value: timedelta | float | None, option: str, activity: str) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if not seconds > 0:
        raise ValueError(f"{option} of activity {activity!r} must be positive (seconds or a timedelta), got {value!r}")
    return seconds


_current: ContextVar[ActivityContext | None] = ContextVar("durable_agents_activity", default=None)


def current_activity() -> ActivityContext:
    """The context of the activity running in this thread (its idempotency key, attempt, instance)."""
    context = _current.get()
    if context is None:
        raise RuntimeError("current_activity() is only available inside a running activity")
    return context


def invoke(spec: ActivitySpec, context: ActivityContext, raw_input: Any, session: Any = None) -> Any:
    """Call the activity with what its signature asks for; `session` is the database session an
    in-step activity writes through."""
    args: list[Any] = [session] if spec.in_step else []
    if spec.takes_context:
        args.append(context)
    if spec.takes_input:
        args.append(decode(raw_input, spec.input_type, what=f"input of activity {spec.name!r}"))
    token = _current.set(context)
    try:
        value = spec.fn(*args)
        if inspect.isawaitable(value):
            value = asyncio.run(_wait(value))
        return value
    finally:
        _current.reset(token)


async def _wait(awaitable: Any) -> Any:
    return await awaitable
