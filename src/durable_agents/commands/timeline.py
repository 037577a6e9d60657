"""An instance's history as a timeline people can read: offsets, names, task ids and how long each task took."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.table import Table
from rich.text import Text

from .. import ids
from ..agents.proxy import response_event
from ..agents.turn import COMMIT_TURN, MODEL_CALL, TOOL_CALL, call_of
from .common import summary

# How agent turns show in an orchestration's history: an event sent to "@agent:NAME:SESSION" and
# a reply raised back as "agent_response:CORRELATION_ID".
_AGENT_PREFIX = ids.agent_session_instance_id("", "").removesuffix(":")
_RESPONSE_PREFIX = response_event("")

# Events that open a task, and the ones that close it (matched on task_id).
_OPENS = {"TaskScheduled", "TimerCreated", "SubOrchestrationCreated"}
_CLOSES = {"TaskCompleted", "TaskFailed", "TimerFired", "SubOrchestrationCompleted", "SubOrchestrationFailed"}

_STYLES = {
    "StepStarted": "dim",
    "ExecutionStarted": "bold",
    "TaskScheduled": "cyan",
    "TimerCreated": "blue",
    "SubOrchestrationCreated": "cyan",
    "EventSent": "cyan",
    "TaskCompleted": "green",
    "TimerFired": "blue",
    "SubOrchestrationCompleted": "green",
    "TaskFailed": "red",
    "SubOrchestrationFailed": "red",
    "EventRaised": "magenta",
    "ExecutionSuspended": "yellow",
    "ExecutionResumed": "yellow",
    "ExecutionTerminated": "red",
    "PatchMarker": "blue",
    "ExecutionRewound": "bold yellow",
}
_COMPLETION_STYLES = {"COMPLETED": "bold green", "FAILED": "bold red", "CONTINUED_AS_NEW": "bold blue"}


@dataclass(frozen=True)
class TimelineRow:
    """One event: seconds since the first event, its kind and name, and (for a completion) how long it took."""

    offset: float
    kind: str
    name: str
    task_id: int | None
    duration: float | None
    detail: str
    style: str
    failed: bool = False


def timeline(events: list[dict[str, Any]], *, width: int = 80, steps: bool = False) -> list[TimelineRow]:
    """Rows for `events` (oldest first, as `DurableClient.get_history` returns them)."""
    if not events:
        return []
    start = _moment(events[0])
    opened: dict[tuple[str, Any], tuple[str, datetime]] = {}
    names: dict[Any, str] = {}  # task number -> name, for the tasks a rewind runs again
    rows = []
    for event in events:
        kind = event["type"]
        at = _moment(event)
        task_id = event.get("task_id")
        name, detail, duration = "", "", None
        if kind == "StepStarted":
            if not steps:
                continue
        elif kind == "ExecutionStarted":
            name, detail = event["name"], summary(event.get("input"), width)
        elif kind in _OPENS:
            name = event.get("name") or event.get("purpose", "timer")
            if kind == "TimerCreated":
                detail = f"fires at {_clock(event['fire_at'])}"
            elif kind == "SubOrchestrationCreated":
                detail = summary(f"instance {event['instance_id']}, input {summary(event.get('input'), 0)}", width)
            else:
                detail = summary(_input_view(name, event.get("input")), width)
            opened[("task", task_id)] = (name, at)
            names[task_id] = name
        elif kind == "ExecutionRewound":
            reran = event.get("task_ids") or []
            for rerun in reran:
                opened[("task", rerun)] = (names.get(rerun, ""), at)
            tasks = ", ".join(f"#{rerun}" for rerun in reran) or "none"
            detail = summary(f"{event.get('reason') or 'no reason given'}; runs again: {tasks}", width)
        elif kind == "PatchMarker":
            name = event["change_id"]
            detail = "deprecated patch" if event.get("deprecated") else "patched: the new branch runs"
        elif kind in _CLOSES:
            name, duration = _close(opened, ("task", task_id), at)
            detail = _outcome(event, width, name)
        elif kind == "EventSent":
            name, detail = _sent(event, at, opened, width)
        elif kind == "EventRaised":
            name, detail, duration = _raised(event, at, opened, width)
        elif kind == "ExecutionCompleted":
            name, detail = event["status"], _outcome(event, width)
        elif kind in {"ExecutionSuspended", "ExecutionResumed"}:
            detail = event.get("reason") or ""
        elif kind == "ExecutionTerminated":
            detail = summary(event.get("output"), width)
        style = _COMPLETION_STYLES.get(event.get("status", ""), "") if kind == "ExecutionCompleted" else ""
        data = event.get("data")
        failed = bool(event.get("failure")) or (kind == "EventRaised" and isinstance(data, dict) and "error" in data)
        rows.append(
            TimelineRow(
                offset=(at - start).total_seconds(),
                kind=kind,
                name=name,
                task_id=task_id,
                duration=duration,
                detail=detail,
                style=style or _STYLES.get(kind, ""),
                failed=failed,
            )
        )
    return rows


def render(rows: list[TimelineRow], title: str, *, width: int, wrap: bool = False) -> Table:
    """The rows as a table `width` columns wide: one line per event (names and details cut to fit),
    unless `wrap` lets details fold onto more lines."""
    cells = [
        (
            f"+{duration_text(row.offset)}",
            row.kind,
            row.name,
            "" if row.task_id is None else str(row.task_id),
            "" if row.duration is None else duration_text(row.duration),
        )
        for row in rows
    ]
    headers = ("time", "event", "name", "task", "took")
    widths = [max([len(header), *(len(cell[index]) for cell in cells)]) for index, header in enumerate(headers)]
    # Each column costs two spaces of padding and a border; the detail takes what is left, the name
    # gives way first when the terminal is narrow.
    spare = width - sum(widths) - 3 * (len(headers) + 1) - 1
    name_width = min(widths[2], max(10, widths[2] + spare - 24))
    detail_width = max(14, spare + widths[2] - name_width)
    table = Table(title=title, title_justify="left")
    for header, justify, column_width in zip(
        headers, ("right", "left", "left", "right", "right"), [*widths[:2], name_width, *widths[3:]], strict=True
    ):
        table.add_column(header, justify=justify, no_wrap=True, overflow="ellipsis", width=column_width)  # type: ignore[arg-type]
    table.add_column(
        "result / detail", no_wrap=not wrap, overflow="fold" if wrap else "ellipsis", max_width=detail_width
    )
    for row, (offset, kind, name, task, took) in zip(rows, cells, strict=True):
        table.add_row(
            offset,
            Text(kind, style=row.style),
            name,
            task,
            took,
            Text(row.detail, style="red" if row.failed else ""),
        )
    return table


def duration_text(seconds: float) -> str:
    """0.042s, 12.500s, 3m07.2s, 2h05m, 3d04h."""
    if seconds < 60:
        return f"{seconds:.3f}s"
    if seconds < 3600:
        minutes, rest = divmod(seconds, 60)
        return f"{int(minutes)}m{rest:04.1f}s"
    if seconds < 86400:
        hours, rest = divmod(seconds, 3600)
        return f"{int(hours)}h{int(rest // 60):02d}m"
    days, rest = divmod(seconds, 86400)
    return f"{int(days)}d{int(rest // 3600):02d}h"


def _moment(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["recorded_at"])


def _clock(value: str) -> str:
    return datetime.fromisoformat(value).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _close(
    opened: dict[tuple[str, Any], tuple[str, datetime]], key: tuple[str, Any], at: datetime
) -> tuple[str, float | None]:
    found = opened.get(key)
    if found is None:  # the history was cut by continue-as-new or purged: show what is left
        return "", None
    name, since = found
    return name, (at - since).total_seconds()


def _outcome(event: dict[str, Any], width: int, name: str = "") -> str:
    failure = event.get("failure")
    if failure:
        return summary(f"{failure['error_type']}: {failure['message']}", width)
    return summary(_result_view(name, event.get("result")), width)


def _input_view(name: str, value: Any) -> Any:
    """The part of an agent step's input a person wants to see (the whole request is in --json)."""
    if not isinstance(value, dict):
        return value
    name, _ = call_of(name)  # an agent's call on a queue of its own reads as the call itself
    if name == MODEL_CALL and value.get("messages"):
        return value["messages"][-1].get("content") or value["messages"][-1]
    if name == COMMIT_TURN and "text" in value:
        return value["text"]
    if name == TOOL_CALL and "tool" in value:
        return f"{value['tool']}({summary(value.get('arguments'), 0)})"
    return value


def _result_view(name: str, value: Any) -> Any:
    name, _ = call_of(name)
    if name == MODEL_CALL and isinstance(value, dict) and isinstance(value.get("message"), dict):
        message = value["message"]
        calls = [call.get("function") or {} for call in message.get("tool_calls") or []]
        if calls:
            return "tool calls: " + ", ".join(f"{c.get('name')}({c.get('arguments', '')})" for c in calls)
        return message.get("content")
    return value


def _sent(
    event: dict[str, Any], at: datetime, opened: dict[tuple[str, Any], tuple[str, datetime]], width: int
) -> tuple[str, str]:
    target: str = event["instance_id"]
    data = event.get("data")
    if target.startswith(_AGENT_PREFIX) and event["name"] == "turn" and isinstance(data, dict):
        # An agent turn: the orchestration sent the request to the session and waits for the reply event.
        agent = data.get("agent", "")
        opened[("agent", data.get("correlation_id"))] = (f"agent {agent}", at)
        said = " ".join(str(m.get("content") or "") for m in data.get("messages") or [])
        return f"agent {agent}", summary(said, width)
    return event["name"], summary(f"to {target}: {summary(data, 0)}", width)


def _raised(
    event: dict[str, Any], at: datetime, opened: dict[tuple[str, Any], tuple[str, datetime]], width: int
) -> tuple[str, str, float | None]:
    name: str = event["name"]
    data = event.get("data")
    if name.startswith(_RESPONSE_PREFIX):
        agent, took = _close(opened, ("agent", name.removeprefix(_RESPONSE_PREFIX)), at)
        if isinstance(data, dict) and data.get("error"):
            error = data["error"]
            return f"{agent} reply".strip(), summary(f"{error['error_type']}: {error['message']}", width), took
        text = data.get("text") if isinstance(data, dict) else data
        return f"{agent} reply".strip(), summary(text, width), took
    return name, summary(data, width), None
