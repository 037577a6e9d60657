"""The `durable-agents` command line: the root command, its command groups, and the one-line error handler.

The commands live in `durable_agents.commands`; this module assembles them. Every error a command
meets ends as one `error: ...` line on stderr and exit status 1 (the traceback with
DURABLE_AGENTS_DEBUG=1); usage mistakes are reported by Typer with exit status 2.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.text import Text

from . import __version__
from .commands import agents, approvals, deploys, diagnosis, entities, instances, schedules, service
from .commands.common import (
    JsonOption,
    TaskhubOption,
    console,
    emit_json,
    err_console,
    fail,
    load_app,
    make_client,
    one_line,
    parse_json,
)
from .commands.failure import debugging, describe

# Shared with the commands defined in this module (api, demo).
__all__ = [
    "JsonOption",
    "TaskhubOption",
    "app",
    "console",
    "emit_json",
    "err_console",
    "fail",
    "load_app",
    "main",
    "make_client",
    "parse_json",
]

app = typer.Typer(
    name="durable-agents",
    help="Durable, crash-proof agent workflows on Celery, Postgres and Redis.\n\n"
    "Every command has --help; commands that print take --json for scripts.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        console.print(f"durable-agents {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    pass


service.register(app)
instances.register(app)
diagnosis.register(app)
deploys.register(app)
app.command("stream", rich_help_panel="Agents")(agents.stream)
app.add_typer(agents.app, name="agents", rich_help_panel="Agents")
app.add_typer(approvals.app, name="approvals", rich_help_panel="Agents")
app.add_typer(entities.app, name="entities", rich_help_panel="Instances")
app.add_typer(schedules.app, name="schedules", rich_help_panel="Instances")


# -- commands of other features (api, demo) go here ---------------------------------------------


@app.command("api", rich_help_panel="Running")
def serve_api(
    app_spec: Annotated[
        str | None,
        typer.Argument(
            metavar="MODULE:OBJECT",
            help="Your DurableApp (optional), so the API knows its orchestration and agent names.",
        ),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on (beyond loopback, keys are a must).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")] = 8000,
    taskhub: TaskhubOption = None,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn's: debug, info, warning, error.")] = "info",
) -> None:
    """Serve the HTTP API (and the dashboard) of one task hub with uvicorn.

    Clients send `Authorization: Bearer KEY`, with keys from DURABLE_AGENTS_API_KEYS (taskhub:key,...).
    DURABLE_AGENTS_API_AUTH=disabled serves without keys, on loopback only.

    Example: DURABLE_AGENTS_API_KEYS=default:$(openssl rand -hex 24) durable-agents api myproject.workflows:app
    """
    import os

    import uvicorn

    from .api import create_app
    from .api.auth import check_bind
    from .app import DurableApp
    from .config import Settings
    from .errors import ConfigurationError

    if taskhub:
        os.environ["TASKHUB"] = taskhub  # before the import: the app reads its settings then
    target = load_app(app_spec) if app_spec else None
    if target is not None and not isinstance(target, DurableApp):
        raise ConfigurationError(f"{app_spec} is a {type(target).__name__}, not a DurableApp")
    settings = target.settings if target is not None else Settings()
    check_bind(settings, host)
    uvicorn.run(create_app(target, settings), host=host, port=port, log_level=log_level)


@app.command("demo", rich_help_panel="Running")
def demo(
    patterns: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[PATTERN]...",
            help="Run only these: single-agent, two-agents, chaining, parallel, routing, human-in-the-loop, "
            "durable-tool, resumed-stream (default: all).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Run every pattern end to end: agents, chaining, parallel, routing, approval, a durable tool, streaming.

    With no DATABASE_URL and REDIS_URL it needs no services (embedded mode, a SQLite file here); with no
    OPENAI_API_KEY or AZURE_OPENAI_ENDPOINT it uses the bundled test model and says so.

    Example: durable-agents demo routing human-in-the-loop
    """
    from .demo import run_demo

    run_demo(console, only=patterns or None, as_json=as_json)


def main() -> None:
    try:
        app(prog_name="durable-agents")
    except Exception as error:
        if debugging():
            raise
        err_console.print(Text.assemble(("error:", "bold red"), " ", one_line(describe(error))))
        sys.exit(1)
