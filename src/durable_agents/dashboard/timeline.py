"""The timeline of an instance, derived from its history: spans with start, end and duration, and instant markers.

History events carry no clock of their own; each belongs to the step that recorded it, and a
step opens with `StepStarted` (the orchestration's clock). So a span starts at the step that
scheduled the work and ends at the step that received its outcome: the time the orchestration
waited for it. An activity's outcome says when the activity itself ran (`started_at`,
`finished_at`), and its span is drawn from those: in a fan-out every outcome is heard of in the
one step after the last, which would give every bar the length of the slowest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal

from pydantic import ValidationError

from ..agents.proxy import SESSION_ORCHESTRATION, response_event
from ..orchestrator import history as h

SpanKind = Literal["activity", "suborchestration", "timer", "agent"]
SpanStatus = Literal["completed", "failed", "running", "unfinished"]
MarkerKind = Literal["event", "sent", "suspended", "resumed", "terminated", "patch", "rewound"]

#: Beyond this many spans the page shows the first ones and says how many it left out.
MAX_SPANS = 400

_TIMER_LABELS = {"timer": "Timer", "retry": "Retry backoff", "event_timeout": "Event timeout", "start": "Delayed start"}


@dataclass
class Span:
    """One piece of work the orchestration waited for."""

    row_type: ClassVar[str] = "span"
    kind: SpanKind
    label: str
    start: datetime
    end: datetime | None = None
    status: SpanStatus = "running"
    task_id: int | None = None
    detail: str = ""
    #: The instance this span ran as (sub-orchestrations), or the agent turn's correlation id.
    instance_id: str | None = None
    correlation_id: str | None = None
    #: When a timer is due (it may lie beyond the end of the view).
    fire_at: datetime | None = None
    #: When an activity that ran from `start` was scheduled (it waited in the queue until then).
    scheduled: datetime | None = None
    #: Placement on the view, in percent of its width (set by `Timeline.layout`).
    left: float = 0.0
    width: float = 0.0

    def duration(self, now: datetime) -> timedelta:
        return (self.end or now) - self.start


@dataclass
class Marker:
    """Something that happened at one moment: an event arrived, the instance was suspended."""

    row_type: ClassVar[str] = "marker"
    kind: MarkerKind
    label: str
    at: datetime
    detail: str = ""
    left: float = 0.0


@dataclass
class Tick:
    left: float
    label: str


@dataclass
class Timeline:
    start: datetime | None
    end: datetime | None
    spans: list[Span] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    hidden: int = 0
    #: True while the instance still runs: the view ends at "now" and open spans reach it.
    open: bool = False

    @property
    def duration(self) -> timedelta:
        if self.start is None or self.end is None:
            return timedelta(0)
        return self.end - self.start

    @property
    def entries(self) -> list[Span | Marker]:
        """Spans and markers in the order they began (history order among equals)."""
        items: list[tuple[datetime, int, Span | Marker]] = [(s.start, i, s) for i, s in enumerate(self.spans)]
        items += [(m.at, len(items) + i, m) for i, m in enumerate(self.markers)]
        return [item for _, _, item in sorted(items, key=lambda entry: (entry[0], entry[1]))]

    @property
    def tick_width(self) -> float:
        """The distance between two ticks, in percent (for the grid lines)."""
        return self.ticks[1].left if len(self.ticks) > 1 else 100.0

    def layout(self) -> None:
        """Place spans, markers and axis ticks on a 0-100 % scale."""
        start, end = self.start, self.end
        if start is None or end is None:
            return
        total = max((end - start).total_seconds(), 1e-3)

        def percent(moment: datetime) -> float:
            return min(100.0, max(0.0, (moment - start).total_seconds() / total * 100))

        for span in self.spans:
            span.left = percent(span.start)
            span.width = max(percent(span.end or end) - span.left, 0.0)
        for marker in self.markers:
            marker.left = percent(marker.at)
        step = _tick_step(total)
        self.ticks = []
        offset = 0.0
        while offset <= total + 1e-9:
            self.ticks.append(Tick(offset / total * 100, "0" if offset == 0 else "+" + format_duration(offset)))
            offset += step


def build_timeline(events: list[dict[str, Any]], *, now: datetime) -> Timeline:
    """The timeline of one execution's history (as `DurableClient.get_history` returns it)."""
    spans: list[Span] = []
    markers: list[Marker] = []
    by_task: dict[int, Span] = {}
    seen: dict[int, Span] = {}  # every task's span, for the tasks a rewind runs again
    agent_calls: dict[str, Span] = {}  # response event name -> span
    clock: datetime | None = None
    start: datetime | None = None
    finished: datetime | None = None
    for raw in events:
        event = _parse(raw)
        if event is None:
            continue
        if isinstance(event, h.StepStarted):
            clock = event.timestamp
            continue
        at = clock or _recorded_at(raw) or now
        if isinstance(event, h.ExecutionStarted):
            start = start or at
        elif isinstance(event, h.TaskScheduled):
            by_task[event.task_id] = _add(spans, Span("activity", event.name, at, task_id=event.task_id))
            by_task[event.task_id].detail = preview(event.input)
        elif isinstance(event, h.SubOrchestrationCreated):
            span = Span("suborchestration", event.name, at, task_id=event.task_id, instance_id=event.instance_id)
            span.detail = preview(event.input)
            by_task[event.task_id] = _add(spans, span)
        elif isinstance(event, h.TimerCreated):
            label = _TIMER_LABELS.get(event.purpose, "Timer")
            span = Span("timer", label, at, task_id=event.task_id, fire_at=event.fire_at)
            span.detail = f"fires after {format_duration(max((event.fire_at - at).total_seconds(), 0))}"
            by_task[event.task_id] = _add(spans, span)
        elif isinstance(event, h.EventSent):
            data = event.data if isinstance(event.data, dict) else {}
            if event.start_name == SESSION_ORCHESTRATION and event.name == "turn" and "correlation_id" in data:
                correlation_id = str(data["correlation_id"])
                span = Span("agent", str(data.get("agent", "agent")), at, task_id=event.task_id)
                span.correlation_id = correlation_id
                span.detail = _first_message(data)
                agent_calls[response_event(correlation_id).lower()] = _add(spans, span)
            else:
                markers.append(Marker("sent", f"sent {event.name!r}", at, f"to {event.instance_id}"))
        elif isinstance(event, (h.TaskCompleted, h.SubOrchestrationCompleted, h.TimerFired)):
            _ran(_close(by_task.pop(event.task_id, None), at, "completed"), event)
        elif isinstance(event, (h.TaskFailed, h.SubOrchestrationFailed)):
            closed = _ran(_close(by_task.pop(event.task_id, None), at, "failed"), event)
            if closed is not None:
                closed.detail = f"{event.failure.error_type}: {event.failure.message}"
        elif isinstance(event, h.EventRaised):
            call = agent_calls.pop(event.name.lower(), None)
            if call is not None:
                failed = isinstance(event.data, dict) and "error" in event.data
                _close(call, at, "failed" if failed else "completed")
            else:
                markers.append(Marker("event", event.name, at, preview(event.data)))
        elif isinstance(event, h.ExecutionSuspended):
            markers.append(Marker("suspended", "suspended", at, event.reason or ""))
        elif isinstance(event, h.ExecutionResumed):
            markers.append(Marker("resumed", "resumed", at, event.reason or ""))
        elif isinstance(event, h.ExecutionTerminated):
            markers.append(Marker("terminated", "terminated", at, preview(event.output)))
            finished = at
        elif isinstance(event, h.ExecutionCompleted):
            finished = at
        elif isinstance(event, h.PatchMarker):
            markers.append(Marker("patch", f"patch {event.change_id!r}", at, "deprecated" if event.deprecated else ""))
        elif isinstance(event, h.ExecutionRewound):
            markers.append(Marker("rewound", "rewound", at, event.reason or ""))
            finished = None
            for task_id in event.task_ids:
                earlier = seen.get(task_id)
                if earlier is not None:
                    rerun = Span(earlier.kind, earlier.label, at, task_id=task_id, instance_id=earlier.instance_id)
                    by_task[task_id] = _add(spans, rerun)
        seen.update(by_task)
    if start is None and spans:
        start = spans[0].start
    timeline = Timeline(start=start, end=finished or (now if start else None), open=finished is None)
    if finished is not None:  # work the instance stopped waiting for (a race's loser, a termination)
        for span in spans:
            if span.end is None:
                span.end, span.status = max(finished, span.start), "unfinished"
    if timeline.end is not None and timeline.start is not None and timeline.end < timeline.start:
        timeline.end = timeline.start
    timeline.hidden = max(0, len(spans) - MAX_SPANS)
    timeline.spans = spans[:MAX_SPANS]
    timeline.markers = markers
    timeline.layout()
    return timeline


@dataclass(frozen=True)
class HistoryLine:
    """One history event as the raw-history table shows it."""

    seq: int
    type: str
    offset: str
    summary: str


def history_lines(events: list[dict[str, Any]], start: datetime | None) -> list[HistoryLine]:
    lines: list[HistoryLine] = []
    clock: datetime | None = None
    for raw in events:
        event = _parse(raw)
        if isinstance(event, h.StepStarted):
            clock = event.timestamp
        at = clock or _recorded_at(raw)
        offset = "+" + format_duration((at - start).total_seconds()) if at and start and at >= start else ""
        lines.append(HistoryLine(int(raw.get("seq", len(lines))), str(raw.get("type")), offset, _summary(raw)))
    return lines


def _summary(raw: dict[str, Any]) -> str:
    kind = raw.get("type")
    task = f"#{raw['task_id']} " if "task_id" in raw else ""
    failure = raw.get("failure") or {}
    if kind == "StepStarted":
        return "a step of the orchestration code"
    if kind == "ExecutionStarted":
        return f"{raw.get('name')} started with {preview(raw.get('input')) or 'no input'}"
    if kind in ("TaskScheduled", "SubOrchestrationCreated"):
        target = f" as {raw['instance_id']}" if raw.get("instance_id") else ""
        return f"{task}{raw.get('name')}({preview(raw.get('input'), 60)}){target}"
    if kind in ("TaskCompleted", "SubOrchestrationCompleted"):
        return f"{task}returned {preview(raw.get('result')) or 'nothing'}"
    if kind in ("TaskFailed", "SubOrchestrationFailed"):
        return f"{task}failed: {failure.get('error_type')}: {failure.get('message')}"
    if kind == "TimerCreated":
        return f"{task}{raw.get('purpose', 'timer')} due {raw.get('fire_at')}"
    if kind == "TimerFired":
        return f"{task}fired"
    if kind == "EventSent":
        return f"{task}sent {raw.get('name')!r} to {raw.get('instance_id')}"
    if kind == "EventRaised":
        return f"{raw.get('name')!r} arrived with {preview(raw.get('data')) or 'no data'}"
    if kind in ("ExecutionSuspended", "ExecutionResumed"):
        return str(raw.get("reason") or "")
    if kind == "ExecutionTerminated":
        return f"terminated: {preview(raw.get('output')) or 'no reason given'}"
    if kind == "PatchMarker":
        return f"patch {raw.get('change_id')!r}" + (" (deprecated)" if raw.get("deprecated") else ": the new branch")
    if kind == "ExecutionRewound":
        tasks = ", ".join(f"#{task_id}" for task_id in raw.get("task_ids") or []) or "none"
        return f"rewound ({raw.get('reason') or 'no reason given'}); runs again: {tasks}"
    if kind == "ExecutionCompleted":
        if failure:
            return f"{raw.get('status')}: {failure.get('error_type')}: {failure.get('message')}"
        return f"{raw.get('status')} with {preview(raw.get('result')) or 'no result'}"
    return preview({k: v for k, v in raw.items() if k not in ("seq", "type", "recorded_at")})


def overlapping(spans: list[Span]) -> int:
    """The largest number of spans running at one moment (a fan-out's width)."""
    points: list[tuple[datetime, int]] = []
    for span in spans:
        if span.end is None:
            continue
        points += [(span.start, 1), (span.end, -1)]
    best = running = 0
    for _, delta in sorted(points, key=lambda p: (p[0], p[1])):
        running += delta
        best = max(best, running)
    return best


def format_duration(seconds: float) -> str:
    """A short human duration: 850 ms, 2.4 s, 3 m 05 s, 2 h 10 m, 3 d 4 h."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 10:
        return f"{seconds:.1f} s".replace(".0 s", " s")
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} m {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} m"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def preview(value: Any, limit: int = 80) -> str:
    """A one-line glimpse of a JSON value."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "), default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


_STEPS = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900,
    1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800,
]  # fmt: skip


def _tick_step(total: float) -> float:
    """A round tick interval giving at most six intervals across `total` seconds."""
    for step in _STEPS:
        if total / step <= 6:
            return step
    return total / 6


def _parse(raw: dict[str, Any]) -> h.HistoryEvent | None:
    fields = {k: v for k, v in raw.items() if k not in ("seq", "recorded_at")}
    try:
        return h.event_from_json(fields)
    except ValidationError:  # an event type this version does not know: leave it out of the picture
        return None


def _recorded_at(raw: dict[str, Any]) -> datetime | None:
    value = raw.get("recorded_at")
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _add(spans: list[Span], span: Span) -> Span:
    spans.append(span)
    return span


def _close(span: Span | None, at: datetime, status: SpanStatus) -> Span | None:
    if span is not None:
        span.end = max(at, span.start)
        span.status = status
    return span


def _ran(span: Span | None, event: h.HistoryEvent) -> Span | None:
    """Draw an activity's span from when it ran, where its outcome says so."""
    started = getattr(event, "started_at", None)
    finished = getattr(event, "finished_at", None)
    if span is not None and started is not None and finished is not None:
        # The worker's clock, the steps' the database's: never before the step that scheduled it.
        span.scheduled = span.start
        span.start = max(started, span.start)
        span.end = max(finished, span.start)
    return span


def _first_message(request: dict[str, Any]) -> str:
    messages = request.get("messages") or []
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "user":
            return preview(message.get("content"))
    return ""
