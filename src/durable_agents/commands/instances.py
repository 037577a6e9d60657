"""Instance commands: start, status, list, history, raise-event, terminate, suspend, resume, purge."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from .. import ids
from ..agents.proxy import INTERNAL_ORCHESTRATIONS
from ..client import DurableClient
from ..errors import InstanceNotFoundError
from ..state import OrchestrationState, OrchestrationStatus
from ..tags import parse_tag
from .common import (
    AppOption,
    JsonOption,
    TaskhubOption,
    console,
    emit_json,
    fail,
    make_client,
    note,
    parse_json,
    parse_statuses,
    resolve_id,
    styled_status,
    summary,
    when,
)
from .timeline import render, timeline

PANEL = "Instances"

InstanceId = Annotated[
    str,
    typer.Argument(
        metavar="ID", help="The instance id (as `start` or `list` print it), or the start of one: 4 characters or more."
    ),
]
StatusFilter = Annotated[
    list[str] | None,
    typer.Option(
        "--status",
        "-s",
        help="Only instances in this status (repeatable): "
        + ", ".join(s.value for s in OrchestrationStatus)
        + " (any case).",
    ),
]


def register(app: typer.Typer) -> None:
    for command, name in (
        (start, "start"),
        (status, "status"),
        (list_instances, "list"),
        (history, "history"),
        (raise_event, "raise-event"),
        (terminate, "terminate"),
        (suspend, "suspend"),
        (resume, "resume"),
        (purge, "purge"),
    ):
        app.command(name, rich_help_panel=PANEL)(command)


TagOption = Annotated[
    list[str] | None, typer.Option("--tag", "-t", help="A tag as NAME=VALUE, like team=billing (repeat for more).")
]


def _tags(texts: list[str] | None) -> dict[str, str] | None:
    return dict(parse_tag(text) for text in texts) if texts else None


def start(
    name: Annotated[str, typer.Argument(help="The orchestration's registered name.")],
    input: Annotated[
        str | None, typer.Option("--input", "-i", help="The input as JSON: '{\"city\": \"Oslo\"}', '\"text\"', '42'.")
    ] = None,
    instance_id: Annotated[
        str | None, typer.Option("--id", help="The instance id to use (default: a new random id); refused if taken.")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for the instance to finish and print its final state.")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="With --wait: stop waiting after this many seconds (it keeps running).")
    ] = 60.0,
    tags: TagOption = None,
    version: Annotated[
        str | None,
        typer.Option("--version", help="The orchestration version (default: the --app's version, if it has one)."),
    ] = None,
    taskhub: TaskhubOption = None,
    app: AppOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start an orchestration and print its instance id.

    With --wait, print the final state instead, and exit 1 unless it COMPLETED.

    Example: durable-agents start review --input '{"doc": "a.txt"}' --tag team=docs --wait
    """
    value = parse_json(input, "--input")
    labels = _tags(tags)
    client = make_client(taskhub, app, publishes=True)
    started = client.schedule_new_orchestration(
        name, input=value, instance_id=instance_id, tags=labels, version=version
    )
    if not wait:
        if as_json:
            emit_json({"instance_id": started, "name": name, "taskhub": client.taskhub})
        else:
            console.print(started)
        return
    state = client.wait_for_orchestration_completion(started, timeout=timeout)
    _show_state(state, as_json)
    if state.runtime_status != OrchestrationStatus.COMPLETED:
        raise typer.Exit(1)


def status(
    instance_id: InstanceId, taskhub: TaskhubOption = None, app: AppOption = None, as_json: JsonOption = False
) -> None:
    """Show one instance: its status, input, output, custom status and failure.

    Example: durable-agents status 3f2a9c --json
    """
    client = make_client(taskhub, app)
    instance_id = resolve_id(client, instance_id)
    state = client.get_orchestration_state(instance_id)
    if state is None:
        raise InstanceNotFoundError(instance_id, client.taskhub)
    _show_state(state, as_json)


def _show_state(state: OrchestrationState, as_json: bool) -> None:
    if as_json:
        emit_json(state.to_json())
        return
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("instance", state.instance_id)
    table.add_row("name", state.name)
    table.add_row("status", styled_status(state.runtime_status))
    table.add_row("task hub", state.taskhub)
    table.add_row("created", when(state.created_at))
    table.add_row("updated", when(state.last_updated_at))
    if state.completed_at:
        table.add_row("completed", when(state.completed_at))
    if state.parent_instance_id:
        table.add_row("parent", state.parent_instance_id)
    if state.version:
        table.add_row("version", state.version)
    table.add_row("input", summary(state.input, 0))
    if state.output is not None or state.runtime_status == OrchestrationStatus.COMPLETED:
        table.add_row("output", summary(state.output, 0))
    if state.custom_status is not None:
        table.add_row("custom status", summary(state.custom_status, 0))
    if state.tags:
        table.add_row("tags", ", ".join(f"{key}={value}" for key, value in state.tags.items()))
    if state.failure_details:
        table.add_row("failure", Text(str(state.failure_details), style="red"))
    console.print(table)


def list_instances(
    statuses: StatusFilter = None,
    name: Annotated[str | None, typer.Option("--name", "-n", help="Only instances of this orchestration.")] = None,
    prefix: Annotated[str | None, typer.Option("--prefix", help="Only instance ids starting with this.")] = None,
    everything: Annotated[
        bool, typer.Option("--all", "-a", help="Include the instances behind agent sessions and turns.")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many instances.")] = 50,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Skip this many (for paging).")] = 0,
    tags: TagOption = None,
    taskhub: TaskhubOption = None,
    app: AppOption = None,
    as_json: JsonOption = False,
) -> None:
    """List instances of the task hub, newest first.

    Example: durable-agents list --status running --status suspended --name review --tag team=docs
    """
    wanted = parse_statuses(statuses)
    labels = _tags(tags)
    client = make_client(taskhub, app)
    if everything or name or prefix or labels:
        states = client.query_instances(
            statuses=wanted, name=name, instance_id_prefix=prefix, tags=labels, limit=limit, offset=offset
        )
    else:
        states = _without_agent_internals(client, wanted, limit, offset)
    if as_json:
        emit_json([state.to_json() for state in states])
        return
    if not states:
        note(f"no instances in task hub {client.taskhub!r} match")
        return
    # Ids are what a reader copies into the next command: their column never wraps or cuts. The
    # others fold when the terminal is narrow, and a narrow one leaves out when each last changed.
    table = Table()
    table.add_column("instance id", no_wrap=True, min_width=max(len(state.instance_id) for state in states))
    table.add_column("name", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("created", min_width=10)
    wide = console.width >= WIDE_LIST_COLUMNS
    if wide:
        table.add_column("updated", min_width=10)
    for state in states:
        cells: list[str | Text] = [state.instance_id, state.name, styled_status(state.runtime_status)]
        cells += [when(state.created_at), *([when(state.last_updated_at)] if wide else [])]
        table.add_row(*cells)
    console.print(table)


#: From this terminal width on, `list` also shows when each instance last changed.
WIDE_LIST_COLUMNS = 110


def _without_agent_internals(
    client: DurableClient, statuses: list[OrchestrationStatus] | None, limit: int, offset: int
) -> list[OrchestrationState]:
    """A page of the user's own instances: one agent call makes a session and a turn instance too,
    which would crowd them out."""
    return client.query_instances(
        statuses=statuses,
        exclude_names=INTERNAL_ORCHESTRATIONS,
        exclude_id_prefix=ids.AGENT_ID_PREFIX,  # a turn's own sub-orchestrations too
        limit=limit,
        offset=offset,
    )


def history(
    instance_id: InstanceId,
    steps: Annotated[bool, typer.Option("--steps", help="Also show where each replay step started.")] = False,
    width: Annotated[
        int, typer.Option("--width", min=0, help="Cut results and inputs to this many characters (0: never).")
    ] = 80,
    taskhub: TaskhubOption = None,
    app: AppOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show an instance's history as a timeline: when each event happened, what it was, how long tasks took.

    With --json, print the stored events themselves (oldest first).

    Example: durable-agents history 3f2a9c --width 0
    """
    client = make_client(taskhub, app)
    instance_id = resolve_id(client, instance_id)
    events = client.get_history(instance_id)
    if as_json:
        emit_json(events)
        return
    started = next((e for e in events if e["type"] == "ExecutionStarted"), None)
    title = f"{started['name']} {instance_id}" if started else instance_id
    console.print(render(timeline(events, width=width, steps=steps), title=title, width=console.width, wrap=width == 0))


def raise_event(
    instance_id: InstanceId,
    name: Annotated[str, typer.Argument(help="The event name the orchestration waits for.")],
    data: Annotated[str | None, typer.Option("--data", "-d", help="The event's data as JSON.")] = None,
    taskhub: TaskhubOption = None,
    app: AppOption = None,
    as_json: JsonOption = False,
) -> None:
    """Send an external event (an approval, a webhook's payload) to an instance.

    An instance not yet waiting for it keeps it until it does.

    Example: durable-agents raise-event 3f2a9c approval_received --data '{"approved": true}'
    """
    value = parse_json(data, "--data")
    client = make_client(taskhub, app, publishes=True)
    instance_id = resolve_id(client, instance_id)
    client.raise_orchestration_event(instance_id, name, data=value)
    if as_json:
        emit_json({"instance_id": instance_id, "event": name, "data": value})
    else:
        console.print(f"raised event {name!r} on {instance_id}")


def terminate(
    instance_id: InstanceId,
    output: Annotated[str | None, typer.Option("--output", help="The output to record, as JSON.")] = None,
    taskhub: TaskhubOption = None,
    app: AppOption = None,
    as_json: JsonOption = False,
) -> None:
    """Terminate an instance and its running sub-orchestrations (an instance that has finished is left alone).

    Example: durable-agents terminate 3f2a9c --output '"cancelled by ops"'
    """
    value = parse_json(output, "--output")
    client = make_client(taskhub, app, publishes=True)
    instance_id = resolve_id(client, instance_id)
    accepted = client.terminate_orchestration(instance_id, output=value)
    if as_json:
        emit_json({"instance_id": instance_id, "terminated": accepted})
    elif accepted:
        console.print(f"terminating {instance_id}")
    else:
        console.print(f"{instance_id} had already finished; nothing to terminate")


def suspend(
    instance_id: InstanceId,
    reason: Annotated[str | None, typer.Option("--reason", help="Why, recorded in the history.")] = None,
    taskhub: TaskhubOption = None,
    app: AppOption = None,
    as_json: JsonOption = False,
) -> None:
    """Suspend an instance: it takes no step (events and results wait) until it is resumed.

    Example: durable-agents suspend 3f2a9c --reason "waiting for the vendor"
    """
    client = make_client(taskhub, app, publishes=True)
    instance_id = resolve_id(client, instance_id)
    client.suspend_orchestration(instance_id, reason=reason)
    _acknowledge("suspend", instance_id, as_json)


def resume(
    instance_id: InstanceId,
    reason: Annotated[str | None, typer.Option("--reason", help="Why, recorded in the history.")] = None,
    taskhub: TaskhubOption = None,
    app: AppOption = None,
    as_json: JsonOption = False,
) -> None:
    """Resume a suspended instance.

    Example: durable-agents resume 3f2a9c
    """
    client = make_client(taskhub, app, publishes=True)
    instance_id = resolve_id(client, instance_id)
    client.resume_orchestration(instance_id, reason=reason)
    _acknowledge("resume", instance_id, as_json)


def _acknowledge(action: str, instance_id: str, as_json: bool) -> None:
    if as_json:
        emit_json({"instance_id": instance_id, "requested": action})
    else:
        console.print(f"asked {instance_id} to {action}")


def purge(
    instance_id: Annotated[
        str | None, typer.Argument(metavar="ID", help="The finished instance to delete (with its sub-orchestrations).")
    ] = None,
    statuses: StatusFilter = None,
    older_than: Annotated[
        str | None,
        typer.Option("--older-than", help="Without ID: only instances created longer ago than this: 30m, 12h, 7d."),
    ] = None,
    taskhub: TaskhubOption = None,
    app: AppOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete finished instances and everything stored for them.

    Give one instance id, or select many with --status and --older-than. Running instances are never purged.

    Example: durable-agents purge --status completed --older-than 7d
    """
    if instance_id is not None and (statuses or older_than):
        fail("give either an instance id or --status/--older-than, not both")
    if instance_id is None and not (statuses or older_than):
        fail("name the instance to purge, or select many with --status and/or --older-than")
    client = make_client(taskhub, app)
    if instance_id is not None:
        instance_id = resolve_id(client, instance_id)
        count = client.purge_orchestration(instance_id)
    else:
        before = _cutoff(older_than) if older_than else None
        count = client.purge_orchestrations(created_before=before, statuses=parse_statuses(statuses))
    if as_json:
        emit_json({"purged": count, "instance_id": instance_id})
    else:
        console.print(f"purged {count} instance{'s' if count != 1 else ''}")


_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _cutoff(text: str) -> datetime:
    """The creation time before which `--older-than TEXT` purges."""
    match = _AGE.match(text.lower())
    if match is None:
        fail(f"--older-than {text!r} is not a duration; write a number and a unit: 90s, 30m, 12h, 7d, 2w")
    try:
        return datetime.now(UTC) - timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    except OverflowError:
        fail(f"--older-than {text!r} reaches back before year 1; give a shorter duration, such as 520w (ten years)")
