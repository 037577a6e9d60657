"""Schedule commands: `schedules create`, `list`, `show`, `update`, `pause`, `resume`, `trigger`, `delete`."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from .. import ids
from ..schedule_client import UNSET
from ..schedule_policy import DEFAULT_CATCHUP_WINDOW
from ..schedule_state import ScheduleState
from .common import (
    AppOption,
    JsonOption,
    TaskhubOption,
    console,
    emit_json,
    make_client,
    note,
    parse_json,
    styled_status,
    summary,
    when,
)

app = typer.Typer(
    help="Recurring schedules: start an orchestration on a cron expression or an interval, fired by the workers.",
    no_args_is_help=True,
)

ScheduleId = Annotated[str, typer.Argument(metavar="ID", help="The schedule's id; its runs are named ID@fire time.")]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
DurationHelp = "a duration: 90, 90s, 5m, 2h or 1d"

CronOption = Annotated[
    str | None, typer.Option("--cron", help="5 cron fields, like '0 9 * * MON-FRI' (or @daily, @hourly...).")
]
EveryOption = Annotated[str | None, typer.Option("--every", help=f"Or an interval, {DurationHelp}.")]
InputOption = Annotated[str | None, typer.Option("--input", "-i", help="Every run's input as JSON.")]
TimezoneOption = Annotated[
    str | None, typer.Option("--timezone", "--tz", help="The IANA time zone the cron fields are read in (UTC).")
]
StartOption = Annotated[
    str | None, typer.Option("--start-at", help="No fire time before it (ISO 8601; UTC if no offset).")
]
EndOption = Annotated[str | None, typer.Option("--end-at", help="No fire time after it (ISO 8601; UTC if no offset).")]
OverlapOption = Annotated[
    str | None,
    typer.Option("--overlap", help="While the previous run runs: skip (default), buffer_one or allow."),
]
CatchupOption = Annotated[
    str | None,
    typer.Option("--catchup-window", help=f"Fire times missed at most this long ago are caught up ({DurationHelp})."),
]
NoteOption = Annotated[str | None, typer.Option("--note", help="A note for people (why it exists, why paused).")]


def duration(text: str | None, option: str) -> timedelta | None:
    if text is None:
        return None
    match = _DURATION.match(text)
    if not match:
        raise typer.BadParameter(f"{text!r} is not {DurationHelp}", param_hint=option)
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def moment(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        example = "2027-01-31T09:00:00+01:00"
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 time like {example}", param_hint=option) from None
    return parsed if parsed.utcoffset() is not None else parsed.replace(tzinfo=UTC)


@app.command("create")
def create(
    schedule_id: ScheduleId,
    orchestration: Annotated[str, typer.Argument(help="The orchestration each run starts (its registered name).")],
    cron: CronOption = None,
    every: EveryOption = None,
    input: InputOption = None,
    timezone: TimezoneOption = None,
    start_at: StartOption = None,
    end_at: EndOption = None,
    overlap: OverlapOption = None,
    catchup_window: CatchupOption = None,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused.")] = False,
    schedule_note: NoteOption = None,
    taskhub: TaskhubOption = None,
    app_spec: AppOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a schedule: the task hub's workers start ORCHESTRATION at every fire time.

    Example: durable-agents schedules create nightly-report report --cron '0 2 * * *' --tz Europe/Oslo
    """
    client = make_client(taskhub, app_spec)
    state = client.create_schedule(
        schedule_id,
        orchestration,
        input=parse_json(input, "--input"),
        cron=cron,
        every=duration(every, "--every"),
        start_at=moment(start_at, "--start-at"),
        end_at=moment(end_at, "--end-at"),
        timezone=timezone or "UTC",
        overlap=overlap or "skip",
        catchup_window=duration(catchup_window, "--catchup-window") or DEFAULT_CATCHUP_WINDOW,
        paused=paused,
        note=schedule_note,
    )
    _show(state, as_json)


@app.command("list")
def list_schedules(
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many schedules.")] = 100,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Skip this many (for paging).")] = 0,
    taskhub: TaskhubOption = None,
    app_spec: AppOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the task hub's schedules with their next fire time and last run.

    Example: durable-agents schedules list --json
    """
    client = make_client(taskhub, app_spec)
    states = client.list_schedules(limit=limit, offset=offset)
    if as_json:
        emit_json([state.to_json() for state in states])
        return
    if not states:
        note(f"no schedules in task hub {client.taskhub!r}; create one with `durable-agents schedules create`")
        return
    table = Table()
    table.add_column("schedule", no_wrap=True)
    table.add_column("orchestration", overflow="fold")
    table.add_column("when", overflow="fold")
    table.add_column("next fire", min_width=10)
    table.add_column("last run", overflow="fold")
    for state in states:
        upcoming = "paused" if state.paused else (when(state.next_fire_at) or "ended")
        table.add_row(state.schedule_id, state.orchestration, state.description, upcoming, state.last_instance_id or "")
    console.print(table)


@app.command("show")
def show(
    schedule_id: ScheduleId,
    runs: Annotated[int, typer.Option("--runs", min=0, help="Show this many of its latest runs.")] = 5,
    taskhub: TaskhubOption = None,
    app_spec: AppOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a schedule: its definition, next fire time, counts and latest runs.

    Example: durable-agents schedules show nightly-report
    """
    from ..errors import ScheduleNotFoundError

    client = make_client(taskhub, app_spec)
    state = client.get_schedule(schedule_id)
    if state is None:
        raise ScheduleNotFoundError(schedule_id, client.taskhub)
    latest = client.query_instances(tags={ids.SCHEDULE_TAG: schedule_id}, limit=runs) if runs else []
    if as_json:
        emit_json({**state.to_json(), "runs": [run.to_json() for run in latest]})
        return
    _show(state, False)
    for run in latest:
        console.print(styled_status(run.runtime_status), run.instance_id, when(run.created_at))


def _show(state: ScheduleState, as_json: bool) -> None:
    if as_json:
        emit_json(state.to_json())
        return
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    rows: list[tuple[str, Any]] = [
        ("schedule", state.schedule_id),
        ("orchestration", state.orchestration),
        ("when", state.description),
        ("status", "paused" if state.paused else ("active" if state.next_fire_at else "ended")),
        ("next fire", when(state.next_fire_at) or "none"),
        ("overlap", state.overlap),
        ("catch-up window", str(state.catchup_window)),
        ("input", summary(state.input, 0)),
        ("runs started", str(state.fired_count)),
        ("fire times skipped", str(state.skipped_count)),
    ]
    rows += [("last run", state.last_instance_id)] if state.last_instance_id else []
    rows += [("note", state.note)] if state.note else []
    for label, value in rows:
        table.add_row(label, value)
    console.print(table)


@app.command("update")
def update(
    schedule_id: ScheduleId,
    orchestration: Annotated[str | None, typer.Option("--orchestration", help="Start this one from now on.")] = None,
    cron: CronOption = None,
    every: EveryOption = None,
    input: InputOption = None,
    timezone: TimezoneOption = None,
    start_at: StartOption = None,
    end_at: EndOption = None,
    overlap: OverlapOption = None,
    catchup_window: CatchupOption = None,
    schedule_note: NoteOption = None,
    taskhub: TaskhubOption = None,
    app_spec: AppOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change what is given and keep the rest (--cron replaces an interval, --every a cron expression).

    Example: durable-agents schedules update nightly-report --cron '30 2 * * *'
    """
    given: dict[str, Any] = {
        "orchestration": orchestration,
        "cron": cron,
        "every": duration(every, "--every"),
        "input": parse_json(input, "--input") if input is not None else UNSET,
        "timezone": timezone,
        "start_at": moment(start_at, "--start-at"),
        "end_at": moment(end_at, "--end-at"),
        "overlap": overlap,
        "catchup_window": duration(catchup_window, "--catchup-window"),
        "note": schedule_note,
    }
    changes = {key: value for key, value in given.items() if value is not None and value is not UNSET}
    client = make_client(taskhub, app_spec)
    _show(client.update_schedule(schedule_id, **changes), as_json)


@app.command("pause")
def pause(
    schedule_id: ScheduleId,
    schedule_note: NoteOption = None,
    taskhub: TaskhubOption = None,
    app_spec: AppOption = None,
    as_json: JsonOption = False,
) -> None:
    """Stop firing until `resume` (runs already started go on).

    Example: durable-agents schedules pause nightly-report --note 'month-end freeze'
    """
    _show(make_client(taskhub, app_spec).pause_schedule(schedule_id, note=schedule_note), as_json)


@app.command("resume")
def resume(
    schedule_id: ScheduleId,
    schedule_note: NoteOption = None,
    taskhub: TaskhubOption = None,
    app_spec: AppOption = None,
    as_json: JsonOption = False,
) -> None:
    """Fire again from the next fire time after now (times passed while paused are not caught up).

    Example: durable-agents schedules resume nightly-report
    """
    _show(make_client(taskhub, app_spec).resume_schedule(schedule_id, note=schedule_note), as_json)


@app.command("trigger")
def trigger(
    schedule_id: ScheduleId, taskhub: TaskhubOption = None, app_spec: AppOption = None, as_json: JsonOption = False
) -> None:
    """Start a run now, as the overlap policy allows, and print its instance id.

    Example: durable-agents schedules trigger nightly-report
    """
    client = make_client(taskhub, app_spec, publishes=True)
    started = client.trigger_schedule(schedule_id)
    if as_json:
        emit_json({"schedule_id": schedule_id, "instance_id": started})
    elif started is None:
        note(f"the previous run of {schedule_id!r} still runs: its overlap policy held this run back")
    else:
        console.print(started)


@app.command("delete")
def delete(schedule_id: ScheduleId, taskhub: TaskhubOption = None, app_spec: AppOption = None) -> None:
    """Delete a schedule; the runs it started stay.

    Example: durable-agents schedules delete nightly-report
    """
    make_client(taskhub, app_spec).delete_schedule(schedule_id)
    note(f"deleted schedule {schedule_id!r}")
