"""The `durable-agents` command line: worker, database migrations, and instance management."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from importlib import import_module
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from .config import ROLES
from .errors import DurableAgentsError

app = typer.Typer(help="Durable, crash-proof agent workflows on Celery, Postgres and Redis.", no_args_is_help=True)
db_app = typer.Typer(help="Manage the database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
console = Console()
err_console = Console(stderr=True, soft_wrap=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]
TaskhubOption = Annotated[
    str | None, typer.Option("--taskhub", envvar="TASKHUB", help="Task hub to use (default: $TASKHUB or 'default').")
]


def _fail(message: str) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(1)


def load_app(spec: str) -> Any:
    """Import `module:attribute` (attribute defaults to `app`)."""
    sys.path.insert(0, os.getcwd())
    module_name, _, attribute = spec.partition(":")
    try:
        module = import_module(module_name)
    except ImportError as error:
        _fail(f"cannot import {module_name!r}: {error}")
    target = getattr(module, attribute or "app", None)
    if target is None:
        _fail(f"module {module_name!r} has no attribute {attribute or 'app'!r}; pass MODULE:ATTRIBUTE")
    return target


def _client(taskhub: str | None) -> Any:
    from .client import DurableClient

    return DurableClient(taskhub=taskhub)


def _parse_json(text: str | None, what: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        _fail(f"{what} is not valid JSON ({error.msg} at position {error.pos}); quote it like '{{\"k\": 1}}'")


@app.command()
def worker(
    app_spec: Annotated[str, typer.Argument(metavar="APP_MODULE:OBJECT", help="Where your DurableApp lives.")],
    queues: Annotated[
        str | None, typer.Option("--queues", "-Q", help="Comma-separated roles or queue names (default: all).")
    ] = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", "-c", help="Worker slots.")] = None,
    pool: Annotated[str, typer.Option(help="Celery pool: prefork, threads, solo.")] = "prefork",
    loglevel: Annotated[str, typer.Option("--loglevel", "-l")] = "INFO",
    hostname: Annotated[str | None, typer.Option("--hostname", "-n", help="Celery node name.")] = None,
    taskhub: TaskhubOption = None,
) -> None:
    """Run a Celery worker for the app's orchestrations and activities."""
    if taskhub:
        os.environ["TASKHUB"] = taskhub  # before the import: the app reads its settings then
    target = load_app(app_spec)
    from .app import DurableApp
    from .store.schema import check_schema

    if not isinstance(target, DurableApp):
        _fail(f"{app_spec} is a {type(target).__name__}, not a DurableApp")
    try:
        check_schema(target.settings.database_url)
    except DurableAgentsError as error:
        _fail(str(error))
    names = [q.strip() for q in (queues or ",".join(ROLES)).split(",") if q.strip()]
    resolved = ",".join(target.settings.queue(q) if q in ROLES else q for q in names)
    argv = ["worker", "-Q", resolved, "--pool", pool, "--loglevel", loglevel, "-E"]
    if concurrency:
        argv += ["--concurrency", str(concurrency)]
    if hostname:
        argv += ["--hostname", hostname]
    target.worker_main(argv)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Create or migrate the durable-agents tables (safe to run repeatedly)."""
    from .config import Settings
    from .store.schema import current_revision, upgrade

    settings = Settings()
    try:
        upgrade(settings.database_url, revision)
        console.print(f"schema at revision {current_revision(settings.database_url)}")
    except DurableAgentsError as error:
        _fail(str(error))


@db_app.command("check")
def db_check() -> None:
    """Exit non-zero unless the database schema matches this version."""
    from .config import Settings
    from .store.schema import check_schema

    try:
        check_schema(Settings().database_url)
    except DurableAgentsError as error:
        _fail(str(error))
    console.print("schema is current")


@app.command()
def start(
    name: str,
    input: Annotated[str | None, typer.Option("--input", help="JSON input.")] = None,
    instance_id: Annotated[str | None, typer.Option("--id", help="Instance id (default: a new one).")] = None,
    taskhub: TaskhubOption = None,
) -> None:
    """Start an orchestration by name and print its instance id."""
    try:
        console.print(
            _client(taskhub).schedule_new_orchestration(
                name, input=_parse_json(input, "--input"), instance_id=instance_id
            )
        )
    except DurableAgentsError as error:
        _fail(str(error))


@app.command()
def status(instance_id: str, taskhub: TaskhubOption = None, as_json: JsonOption = False) -> None:
    """Show one instance's status, input, output and failure."""
    try:
        state = _client(taskhub).get_orchestration_state(instance_id)
    except DurableAgentsError as error:
        _fail(str(error))
    if state is None:
        _fail(f"no instance {instance_id!r} in task hub {taskhub or os.environ.get('TASKHUB', 'default')!r}")
    if as_json:
        console.print_json(json.dumps(state.to_json()))
        return
    table = Table(show_header=False)
    for key, value in state.to_json().items():
        table.add_row(key, value if isinstance(value, str) else json.dumps(value))
    console.print(table)


@app.command("list")
def list_instances(
    status_filter: Annotated[list[str] | None, typer.Option("--status", help="Filter by status (repeatable).")] = None,
    name: Annotated[str | None, typer.Option(help="Filter by orchestration name.")] = None,
    limit: int = 50,
    offset: int = 0,
    taskhub: TaskhubOption = None,
    as_json: JsonOption = False,
) -> None:
    """List instances, newest first."""
    try:
        states = _client(taskhub).query_instances(statuses=status_filter, name=name, limit=limit, offset=offset)
    except (DurableAgentsError, ValueError) as error:
        _fail(str(error))
    if as_json:
        console.print_json(json.dumps([s.to_json() for s in states]))
        return
    table = Table("instance id", "name", "status", "created", "updated")
    for s in states:
        table.add_row(s.instance_id, s.name, s.runtime_status.value, _when(s.created_at), _when(s.last_updated_at))
    console.print(table)


@app.command()
def history(instance_id: str, taskhub: TaskhubOption = None, as_json: JsonOption = False) -> None:
    """Show an instance's history as a timeline."""
    try:
        events = _client(taskhub).get_history(instance_id)
    except DurableAgentsError as error:
        _fail(str(error))
    if as_json:
        console.print_json(json.dumps(events))
        return
    table = Table("#", "event", "detail", "recorded")
    for event in events:
        detail = {k: v for k, v in event.items() if k not in {"seq", "type", "recorded_at"}}
        table.add_row(str(event["seq"]), event["type"], json.dumps(detail)[:100], event["recorded_at"][11:23])
    console.print(table)


@app.command("raise-event")
def raise_event(
    instance_id: str,
    name: str,
    data: Annotated[str | None, typer.Option("--data", help="JSON event data.")] = None,
    taskhub: TaskhubOption = None,
) -> None:
    """Send an external event (for example an approval) to an instance."""
    try:
        _client(taskhub).raise_orchestration_event(instance_id, name, data=_parse_json(data, "--data"))
    except DurableAgentsError as error:
        _fail(str(error))
    console.print(f"raised {name!r} to {instance_id}")


def _manage(action: str, instance_id: str, taskhub: str | None) -> None:
    try:
        getattr(_client(taskhub), f"{action}_orchestration")(instance_id)
    except DurableAgentsError as error:
        _fail(str(error))
    console.print(f"{action} requested for {instance_id}")


@app.command()
def terminate(instance_id: str, taskhub: TaskhubOption = None) -> None:
    """Terminate an instance and its running sub-orchestrations."""
    _manage("terminate", instance_id, taskhub)


@app.command()
def suspend(instance_id: str, taskhub: TaskhubOption = None) -> None:
    """Suspend an instance: events wait until it is resumed."""
    _manage("suspend", instance_id, taskhub)


@app.command()
def resume(instance_id: str, taskhub: TaskhubOption = None) -> None:
    """Resume a suspended instance."""
    _manage("resume", instance_id, taskhub)


@app.command()
def purge(instance_id: str, taskhub: TaskhubOption = None) -> None:
    """Delete a finished instance and its history."""
    _manage("purge", instance_id, taskhub)


@app.command()
def stream(
    correlation_id: str,
    cursor: Annotated[str, typer.Option(help="Resume after this entry id (0: from the start).")] = "0",
    taskhub: TaskhubOption = None,
) -> None:
    """Follow an agent's response stream live in the terminal."""
    import asyncio

    from .agents.client import DurableAgentClient

    async def follow() -> None:
        async for chunk in DurableAgentClient(_client(taskhub)).stream(correlation_id, cursor=cursor):
            if chunk.kind == "restart":
                console.print("\n[yellow][the turn restarted; what follows replaces the text above][/]")
            console.out(chunk.text, end="", highlight=False)
        console.out("")

    try:
        asyncio.run(follow())
    except DurableAgentsError as error:
        _fail(str(error))


@app.command()
def testserver(
    host: str = "127.0.0.1",
    port: int = 8089,
    latency_ms: Annotated[int, typer.Option(help="Delay before every answer.")] = 0,
) -> None:
    """Serve the bundled OpenAI-compatible test model (for offline demos and tests)."""
    from .testing import serve

    serve(host, port, latency_ms)


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def main() -> None:
    app()
