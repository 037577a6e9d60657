"""Entity commands: `entities list`, `entities show` (state and last operations), `entities signal`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from ..ids import EntityId
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
    summary,
    when,
)

app = typer.Typer(help="Read durable entities' state and last operations, and signal them.", no_args_is_help=True)

EntityIdArgument = Annotated[str, typer.Argument(metavar="NAME@KEY", help="The entity: its registered name and key.")]


def _entity_id(text: str) -> EntityId:
    try:
        return EntityId.of(text)
    except ValueError as error:
        fail(f"invalid entity id: {error}")


@app.command("list")
def list_entities(
    name: Annotated[str | None, typer.Argument(metavar="NAME", help="Only entities of this name.")] = None,
    prefix: Annotated[str | None, typer.Option("--prefix", help="Only keys that start with this.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many entities.")] = 50,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Skip this many (for paging).")] = 0,
    taskhub: TaskhubOption = None,
    app_spec: AppOption = None,
    as_json: JsonOption = False,
) -> None:
    """List entities by name and key.

    Example: durable-agents entities list Account --prefix eu-
    """
    found = make_client(taskhub, app_spec).list_entities(name=name, key_prefix=prefix, limit=limit, offset=offset)
    if as_json:
        emit_json([entity.to_json() for entity in found])
        return
    if not found:
        note("no entities")
        return
    table = Table("entity", "state", "operations", "locked by", "waiting", "updated")
    for entity in found:
        table.add_row(
            str(entity.entity_id),
            summary(entity.state, 50),
            str(entity.operation_count),
            entity.locked_by or "",
            str(entity.waiting or ""),
            when(entity.updated_at),
        )
    console.print(table)


@app.command("show")
def show_entity(
    entity_id: EntityIdArgument,
    taskhub: TaskhubOption = None,
    app_spec: AppOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show an entity's state, its lock and its last operations (newest first).

    Example: durable-agents entities show Account@alice
    """
    entity = _entity_id(entity_id)
    found = make_client(taskhub, app_spec).get_entity(entity)
    if found is None:
        fail(f"no entity {str(entity)!r}: an entity exists once it is signalled or called")
    if as_json:
        emit_json(found.to_json())
        return
    lock = f" · locked by {found.locked_by} ({found.waiting} waiting)" if found.locked_by else ""
    console.print(
        Text.assemble((str(found.entity_id), "bold"), f" · {found.operation_count} operations{lock}"),
    )
    console.print(Text.assemble(("state ", "dim"), summary(found.state, 0)))
    if not found.recent_operations:
        note("(no operations yet)")
        return
    table = Table("applied", "kind", "operation", "caller", "input", "outcome")
    for operation in found.recent_operations:
        outcome = (
            Text(summary(operation.failure.get("message"), 60), style="red")
            if operation.failure
            else Text(summary(operation.result, 60))
        )
        table.add_row(
            when(operation.applied_at),
            operation.kind,
            operation.operation,
            operation.caller or "",
            summary(operation.input, 40) if operation.kind in ("call", "signal") else "",
            outcome if operation.kind in ("call", "signal") else "",
        )
    console.print(table)


@app.command("signal")
def signal_entity(
    entity_id: EntityIdArgument,
    operation: Annotated[str, typer.Argument(metavar="OPERATION", help="The operation to apply.")],
    input: Annotated[str | None, typer.Argument(metavar="INPUT", help="Its input as JSON.")] = None,
    taskhub: TaskhubOption = None,
    app_spec: AppOption = None,
    as_json: JsonOption = False,
) -> None:
    """Signal an operation to an entity: applied once, in order with every other, without waiting.

    Example: durable-agents entities signal Account@alice deposit 50
    """
    entity = _entity_id(entity_id)
    value = parse_json(input, "INPUT")
    make_client(taskhub, app_spec, publishes=True).signal_entity(entity, operation, value)
    if as_json:
        emit_json({"entity_id": str(entity), "operation": operation, "accepted": True})
    else:
        note(f"signalled {entity}.{operation}")
