"""A step's span and metrics: opened where the code runs on new events, never while history replays."""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from types import TracebackType

from opentelemetry.trace import Span

from ..store.locked import LockedInstance
from ..telemetry.metrics import labelled, metrics
from ..telemetry.tracing import context_of, current_traceparent, span

__all__ = ["StepTrace", "current_traceparent"]


class StepTrace:
    """The span of one step, under the instance's stored trace context; its outcome (the instance's status
    after the step, or continued_as_new) labels the step's count."""

    def __init__(self, instance: LockedInstance) -> None:
        self._instance = instance
        self._span: AbstractContextManager[Span] | None = None
        self._current: Span | None = None
        self._started = 0.0
        self.outcome = "error"

    def __enter__(self) -> StepTrace:
        instance = self._instance
        attributes = {  # the orchestration's name is the span's
            "durable.instance_id": instance.instance_id,
            "durable.execution_id": instance.execution_id,
            "durable.history_length": instance.history_length,
        }
        self._span = span(f"step {instance.name}", attributes, parent=context_of(instance.trace_parent))
        self._current = self._span.__enter__()
        self._started = time.perf_counter()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        elapsed = time.perf_counter() - self._started
        assert self._span is not None and self._current is not None
        outcome = "error" if error is not None else self.outcome.lower()
        self._current.set_attribute("durable.outcome", outcome)
        self._span.__exit__(kind, error, traceback)
        recorded = metrics()
        labelled(recorded.steps, self._instance.name, outcome).inc()
        labelled(recorded.step_seconds, self._instance.name).observe(elapsed)
