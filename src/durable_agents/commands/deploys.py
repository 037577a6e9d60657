"""Deploy commands: `replay` (check code against recorded histories), `export`, `rewind` and `restart`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..agents.proxy import INTERNAL_ORCHESTRATIONS
from ..ids import AGENT_ID_PREFIX
from ..replays import RecordedHistory, ReplayReport, read_histories, replay_all
from ..state import OrchestrationStatus
from .common import (
    AppOption,
    JsonOption,
    TaskhubOption,
    console,
    emit_json,
    fail,
    load_durable_app,
    make_client,
    note,
    parse_statuses,
    resolve_id,
)
from .instances import InstanceId

UNFINISHED = [OrchestrationStatus.PENDING, OrchestrationStatus.RUNNING, OrchestrationStatus.SUSPENDED]


def register(app: typer.Typer) -> None:
    app.command("replay", rich_help_panel="Deploys")(replay)
    app.command("export", rich_help_panel="Deploys")(export)
    app.command("rewind", rich_help_panel="Deploys")(rewind)
    app.command("restart", rich_help_panel="Deploys")(restart)


def replay(
    target: Annotated[str, typer.Argument(metavar="MODULE:APP", help="The new code: your DurableApp.")],
    instance: Annotated[
        list[str] | None, typer.Option("--instance", "-i", help="Replay this instance (repeat for more).")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Only instances of this orchestration.")] = None,
    status: Annotated[
        list[str] | None,
        typer.Option("--status", "-s", help="Only instances in this status (repeatable; default: unfinished)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Replay at most this many instances.")] = 100,
    history: Annotated[
        list[Path] | None,
        typer.Option("--history", help="Replay the histories in this file (`history ID --json` or `export`)."),
    ] = None,
    taskhub: TaskhubOption = None,
    as_json: JsonOption = False,
) -> None:
    """Replay recorded histories against the code in MODULE:APP before you deploy it: in process, running no
    activity and writing nothing. Prints "compatible" or the first divergence per instance; exits 1 on any.

    Example: durable-agents replay myproject.workflows:app --name checkout --limit 500
    """
    app = load_durable_app(target)
    if history:
        histories = [recorded for path in history for recorded in _read(path)]
    else:
        histories = _recorded(target, taskhub, instance, name, status, limit)
    reports = replay_all(app.registry, histories, max_payload_bytes=app.settings.max_payload_bytes)
    _print(reports, as_json)
    if any(not report.compatible for report in reports):
        raise typer.Exit(1)


def _read(path: Path) -> list[RecordedHistory]:
    try:
        return read_histories(path)
    except ValueError as error:
        fail(str(error))


def _recorded(
    target: str, taskhub: str | None, ids: list[str] | None, name: str | None, status: list[str] | None, limit: int
) -> list[RecordedHistory]:
    client = make_client(taskhub, target)
    if ids:
        chosen = [resolve_id(client, given) for given in ids]
    else:
        statuses = parse_statuses(status) or UNFINISHED
        states = client.query_instances(
            statuses=statuses,
            name=name,
            exclude_names=sorted(INTERNAL_ORCHESTRATIONS),
            exclude_id_prefix=AGENT_ID_PREFIX,
            limit=limit,
        )
        chosen = [state.instance_id for state in states]
    return [RecordedHistory(instance_id, client.get_history(instance_id)) for instance_id in chosen]


def _print(reports: list[ReplayReport], as_json: bool) -> None:
    if as_json:
        emit_json([report.to_json() for report in reports])
        return
    if not reports:
        note("no recorded history to replay (no unfinished instance matched); nothing was checked")
        return
    for report in reports:
        console.print(report.describe(), style="" if report.compatible else "bold red")
    diverged = sum(not report.compatible for report in reports)
    summary = f"{len(reports) - diverged} compatible, {diverged} diverged"
    console.print(summary, style="bold red" if diverged else "green")


def export(
    instance_ids: Annotated[list[str], typer.Argument(metavar="ID...", help="The instances to export.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
    taskhub: TaskhubOption = None,
    app: AppOption = None,
) -> None:
    """Write instances' histories as JSON, for `replay --history` and `testing.replay` in your CI.

    Example: durable-agents export 3f2a9c 81bd02 -o tests/histories/checkout.json
    """
    client = make_client(taskhub, app)
    exported = []
    for given in instance_ids:
        instance_id = resolve_id(client, given)
        state = client.get_orchestration_state(instance_id)
        exported.append(
            {
                "instance_id": instance_id,
                "name": state.name if state else None,
                "version": state.version if state else None,
                "history": client.get_history(instance_id),
            }
        )
    if output is None:
        emit_json(exported)
        return

    output.write_text(json.dumps(exported, indent=2, default=str) + "\n")
    note(f"wrote {len(exported)} histor{'y' if len(exported) == 1 else 'ies'} to {output}")


def rewind(
    instance_id: InstanceId,
    reason: Annotated[str | None, typer.Option("--reason", help="Why, recorded in the history.")] = None,
    taskhub: TaskhubOption = None,
    app: AppOption = None,
    as_json: JsonOption = False,
) -> None:
    """Rewind a FAILED instance: its failed activities and sub-orchestrations run again (failed children are
    rewound too), what succeeded is kept. Deploy the fix first.

    Example: durable-agents rewind 3f2a9c --reason "fixed the currency bug"
    """
    client = make_client(taskhub, app, publishes=True)
    instance_id = resolve_id(client, instance_id)
    client.rewind(instance_id, reason=reason)
    if as_json:
        emit_json({"instance_id": instance_id, "rewound": True})
    else:
        console.print(f"rewinding {instance_id}")


def restart(
    instance_id: InstanceId,
    new_instance_id: Annotated[
        bool, typer.Option("--new-id", help="Start it under a new id, keeping the finished instance.")
    ] = False,
    taskhub: TaskhubOption = None,
    app: AppOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start a finished instance over with its original input (under its own id unless --new-id).

    Example: durable-agents restart 3f2a9c --new-id
    """
    client = make_client(taskhub, app, publishes=True)
    instance_id = resolve_id(client, instance_id)
    started = client.restart(instance_id, new_instance_id=new_instance_id)
    if as_json:
        emit_json({"instance_id": started, "restarted_from": instance_id})
    else:
        console.print(f"restarted {instance_id} as {started}")
