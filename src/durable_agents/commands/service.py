"""Running things: the worker, database migrations, and the bundled test model server."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from ..config import ROLES, Settings
from ..serving import run_worker
from ..store.schema import check_schema, current_revision, head_revision, upgrade
from .common import APP_ENV, JsonOption, TaskhubOption, console, emit_json, load_durable_app

PANEL = "Running"

db_app = typer.Typer(help="Create, migrate and check the durable-agents tables.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("worker", rich_help_panel=PANEL)(worker)
    app.add_typer(db_app, name="db", rich_help_panel=PANEL)
    app.command("testserver", rich_help_panel=PANEL)(testserver)
    app.command("healthcheck", rich_help_panel=PANEL)(healthcheck)


def worker(
    app_spec: Annotated[
        str,
        typer.Argument(
            metavar="MODULE:OBJECT", envvar=APP_ENV, help=f"Where your DurableApp lives (default: ${APP_ENV})."
        ),
    ],
    queues: Annotated[
        str | None,
        typer.Option(
            "--queues",
            "-Q",
            help=f"Comma-separated roles ({', '.join(ROLES)}), queues the app's activities name (gpu), or full "
            "queue names to serve (default: every role).",
        ),
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", "-c", min=1, help="Tasks run at once (default: Celery's).")
    ] = None,
    pool: Annotated[
        str | None,
        typer.Option(
            "--pool",
            "-P",
            help="Celery pool: prefork, threads or solo (default: threads with 64 slots for a worker that serves "
            "the agents queue of an app with agents, else prefork).",
        ),
    ] = None,
    loglevel: Annotated[str, typer.Option("--loglevel", "-l", help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
    hostname: Annotated[
        str | None, typer.Option("--hostname", "-n", help="The Celery node name, e.g. worker1@%h.")
    ] = None,
    events: Annotated[
        bool,
        typer.Option(
            "--events",
            "-E",
            help="Send task events for monitoring with Flower. Off by default, as in Celery: each task then "
            "costs three more Redis publishes.",
        ),
    ] = False,
    taskhub: TaskhubOption = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=1,
            max=65535,
            help="Serve Prometheus metrics at http://HOST:PORT/metrics, summed over the pool's processes.",
        ),
    ] = None,
) -> None:
    """Run a Celery worker for the app's orchestrations, activities and agents.

    Scale roles separately by starting workers with different --queues. Without DATABASE_URL and
    REDIS_URL it serves the SQLite file of this folder (embedded mode) in the foreground, for instances
    that `durable-agents start` and your programs create there (--queues, --pool and --events then do not apply).

    Example: durable-agents worker myproject.workflows:app --queues orchestrator,agents --pool threads -c 16
    (add --events when Flower watches the workers, --metrics-port 9191 when Prometheus scrapes them).
    """
    if taskhub:
        os.environ["TASKHUB"] = taskhub  # before the import: the app reads its settings then
    if metrics_port is not None:
        os.environ["DURABLE_AGENTS_METRICS_PORT"] = str(metrics_port)
    target = load_durable_app(app_spec)
    status = run_worker(
        target,
        spec=app_spec,
        queues=queues,
        concurrency=concurrency,
        pool=pool,
        loglevel=loglevel,
        hostname=hostname,
        events=events,
    )
    if status:
        raise typer.Exit(status)


def healthcheck(taskhub: TaskhubOption = None, as_json: JsonOption = False) -> None:
    """Exit 1 unless a worker of the task hub runs on this host and none of its processes is hung.

    For a container's healthcheck: a pool child that is alive but has stopped heart-beating (hung in a
    call, or stuck in an activity that ignored its timeout) fails it, though the worker's main process
    still heartbeats.

    Example: durable-agents healthcheck || echo "restart me"
    """
    from ..health import worker_health

    if taskhub:
        os.environ["TASKHUB"] = taskhub
    health = worker_health(Settings())
    if as_json:
        emit_json({"healthy": health.healthy, "message": health.message})
    else:
        console.print(health.message, highlight=False, soft_wrap=True)
    if not health.healthy:
        raise typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="The schema revision to migrate to.")] = "head",
    as_json: JsonOption = False,
) -> None:
    """Create or migrate the tables in $DATABASE_URL (safe to run again, and while workers run).

    Example: DATABASE_URL=postgresql://app@db/app durable-agents db upgrade
    """
    url = Settings().database_url
    current_revision(url)  # an unreachable database is reported with its URL before Alembic starts
    upgrade(url, revision)
    current = current_revision(url)
    if as_json:
        emit_json({"revision": current, "head": head_revision()})
    else:
        console.print(f"schema at revision {current}")


@db_app.command("check")
def db_check(as_json: JsonOption = False) -> None:
    """Exit 1 unless the schema in $DATABASE_URL is exactly the one this version needs.

    Example: durable-agents db check || durable-agents db upgrade
    """
    url = Settings().database_url
    check_schema(url)
    if as_json:
        emit_json({"revision": current_revision(url), "current": True})
    else:
        console.print("schema is current")


def testserver(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8089,
    latency_ms: Annotated[int, typer.Option("--latency-ms", min=0, help="Delay before every answer.")] = 0,
    json_schema: Annotated[
        bool,
        typer.Option(
            "--json-schema/--no-json-schema",
            help="Accept response_format json_schema; --no-json-schema refuses it, as llama.cpp does.",
        ),
    ] = True,
) -> None:
    """Serve the bundled OpenAI-compatible test model (offline demos and tests; it echoes, with rules).

    Point an OpenAIChatClient at http://HOST:PORT/v1.

    Example: durable-agents testserver --port 8089 --latency-ms 200
    """
    from ..testing import serve

    serve(host, port, latency_ms, json_schema)
