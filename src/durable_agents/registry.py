"""The registry: orchestrations and activities by name, with the types their signatures declare."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_type_hints

from .errors import ActivityNotRegisteredError, OrchestrationNotRegisteredError


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


@dataclass(frozen=True)
class OrchestrationSpec:
    name: str
    fn: Callable[..., Any]
    result_type: Any


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return get_type_hints(fn)
    except Exception:  # unresolvable forward references: fall back to plain JSON
        return {}


class Registry:
    def __init__(self) -> None:
        self.orchestrations: dict[str, OrchestrationSpec] = {}
        self.activities: dict[str, ActivitySpec] = {}

    def add_orchestration(self, fn: Callable[..., Any], name: str | None = None) -> str:
        name = name or fn.__name__
        if name in self.orchestrations and self.orchestrations[name].fn is not fn:
            raise ValueError(f"an orchestration named {name!r} is already registered")
        self.orchestrations[name] = OrchestrationSpec(name, fn, _hints(fn).get("return"))
        return name

    def add_activity(self, fn: Callable[..., Any], name: str | None = None, queue_role: str = "activities") -> str:
        name = name or fn.__name__
        if name in self.activities and self.activities[name].fn is not fn:
            raise ValueError(f"an activity named {name!r} is already registered")
        hints = _hints(fn)
        params = [
            p
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
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
        )
        return name

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
