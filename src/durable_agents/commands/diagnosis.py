"""Diagnosis commands: `explain` (why an instance is not progressing) and `workers` (who serves the task hub)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..explanation import Explanation, Pending
from ..store.workers import WorkerInfo
from .common import (
    AppOption,
    JsonOption,
    TaskhubOption,
    console,
    emit_json,
    make_client,
    note,
    resolve_id,
    styled_status,
    when,
)


def register(app: typer.Typer) -> None:
    app.command("explain", rich_help_panel="Instances")(explain)
    app.command("workers", rich_help_panel="Running")(workers)


def explain(
    instance_id: Annotated[
        str, typer.Argument(metavar="ID", help="The instance id (as `list` prints it), or the start of one.")
    ],
    taskhub: TaskhubOption = None,
    app: AppOption = None,
    as_json: JsonOption = False,
) -> None:
    """Say why an instance is not progressing: finished, suspended, no live worker serves it, or what it
    waits for (an event, a timer, an activity, a sub-orchestration or an agent) and since when.

    With --app (or $DURABLE_AGENTS_APP) the instance's code is replayed to name the events it waits for.

    Example: durable-agents explain 3f2a9c --app myproject.workflows:app
    """
    client = make_client(taskhub, app)
    explanation = client.explain(resolve_id(client, instance_id))
    if as_json:
        emit_json(explanation.to_json())
        return
    console.print(_panel(explanation))


def _panel(explanation: Explanation) -> Panel:
    style = "red" if explanation.needs_attention else "cyan"
    head = Text.assemble(
        (explanation.reason.value, f"bold {style}"), "  ", styled_status(explanation.status), "  ", explanation.name
    )
    parts: list[Text | Table | Panel] = [head, Text(explanation.message)]
    if explanation.pending:
        parts.append(_pending_table(explanation.pending))
    parts.extend(Text(f"note: {line}", style="yellow") for line in explanation.notes)
    if explanation.child is not None:
        parts.append(_panel(explanation.child))
    title = f"{explanation.instance_id}" + (" — needs attention" if explanation.needs_attention else "")
    return Panel(Group(*parts), title=title, title_align="left", border_style=style, expand=False)


def _pending_table(pending: tuple[Pending, ...]) -> Table:
    table = Table(title="Waits for", title_justify="left", box=None, padding=(0, 2, 0, 0))
    for column in ("kind", "name", "since", "fires at", "status", "served by"):
        table.add_column(column)
    for item in pending:
        served = ", ".join(item.served_by) if item.served_by else ("no live worker" if item.needs_worker else "")
        table.add_row(
            item.kind,
            item.name or "?",
            when(item.since),
            when(item.fires_at),
            item.status or "",
            Text(served, style="bold red" if item.needs_worker and not item.served_by else ""),
        )
    return table


def workers(
    all_workers: Annotated[
        bool, typer.Option("--all", help="Also workers whose heartbeats stopped within the last hour.")
    ] = False,
    taskhub: TaskhubOption = None,
    app: AppOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the task hub's live workers: node, host, queues, the names they serve and their last heartbeat.

    Example: durable-agents workers --all
    """
    client = make_client(taskhub, app)
    listed = client.list_workers(include_dead=all_workers)
    if as_json:
        emit_json([w.to_json() for w in listed])
        return
    if not listed:
        note(f"no {'known' if all_workers else 'live'} worker in task hub {client.taskhub!r}")
        return
    console.print(_workers_table(listed))


def _workers_table(listed: list[WorkerInfo]) -> Group:
    """One block a worker: its node name whole on a line, then what it consumes and serves as wrapped
    lists, which stay readable at 80 columns where a table of eight columns did not."""
    blocks: list[Text | Table] = [Text(f"Workers of task hub {listed[0].taskhub!r}", style="bold")]
    for worker in listed:
        state = Text("live", style="green") if worker.live else Text("not live", style="red")
        blocks.append(
            Text.assemble(
                "\n",
                (worker.node_name, "bold"),
                "  ",
                state,
                f" · {worker.concurrency} slot{'s' if worker.concurrency != 1 else ''} · host {worker.host}"
                f" · pid {worker.pid} · heartbeat {when(worker.last_heartbeat_at)}",
                f" · version {worker.code_version or 'none'} (match {worker.version_match})",
            )
        )
        details = Table.grid(padding=(0, 2))
        details.add_column(style="dim", no_wrap=True)
        details.add_column(overflow="fold")
        for label, names in (
            ("queues", worker.queues),
            ("orchestrations", worker.orchestrations),
            ("activities", worker.activities),
            ("agents", worker.agents),
        ):
            if names:
                details.add_row(f"  {label}", ", ".join(names))
        blocks.append(details)
    return Group(*blocks)
