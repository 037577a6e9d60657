"""What every command shares: consoles, common options, JSON output, app loading and the client."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from importlib import import_module
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.text import Text

from ..app import DurableApp
from ..client import DurableClient
from ..connections import require_redis
from ..errors import ConfigurationError
from ..state import OrchestrationStatus

# Markup and emoji codes are off: ids, names and replies come from users and models, and "[b]" or
# ":Joker:" in them must print as they are.
console = Console(highlight=False, markup=False, emoji=False)
err_console = Console(stderr=True, soft_wrap=True, highlight=False, markup=False, emoji=False)

#: Where `--app` is read from when it is not given.
APP_ENV = "DURABLE_AGENTS_APP"

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of text and tables.")]
TaskhubOption = Annotated[
    str | None,
    typer.Option("--taskhub", envvar="TASKHUB", help="Task hub to use (default: $TASKHUB, else 'default')."),
]
AppOption = Annotated[
    str | None,
    typer.Option(
        "--app",
        envvar=APP_ENV,
        metavar="MODULE:OBJECT",
        help=f"Your DurableApp (default: ${APP_ENV}): names are checked against it and its settings are used.",
    ),
]

STATUS_STYLES = {
    OrchestrationStatus.PENDING: "yellow",
    OrchestrationStatus.RUNNING: "cyan",
    OrchestrationStatus.COMPLETED: "green",
    OrchestrationStatus.FAILED: "bold red",
    OrchestrationStatus.TERMINATED: "red",
    OrchestrationStatus.SUSPENDED: "magenta",
    OrchestrationStatus.CONTINUED_AS_NEW: "blue",
}


def fail(message: str) -> NoReturn:
    """Print `error: message` on one line of stderr and exit 1."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", one_line(message)))
    raise typer.Exit(1)


def note(message: str, *, stderr: bool = False) -> None:
    """A dim remark for people (on stderr when stdout should hold only the result)."""
    (err_console if stderr else console).print(Text(message, style="dim"))


def one_line(message: str) -> str:
    return " ".join(message.split())


def emit_json(value: Any, *, compact: bool = False) -> None:
    """JSON for scripts, written as is: never wrapped or coloured by the terminal renderer.

    `compact` writes one object per line (JSON Lines), for output that streams."""
    text = json.dumps(value, default=str) if compact else json.dumps(value, indent=2, default=str)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def parse_json(text: str | None, what: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        if not text.strip().startswith(("{", "[", '"')):  # a bare word: text is JSON in double quotes
            fail(f"{what} is not valid JSON ({error.msg} at position {error.pos}); a text is JSON in double "
                 f"quotes, inside the shell's single quotes: {what} '{json.dumps(text)}'")  # fmt: skip
        fail(f"{what} is not valid JSON ({error.msg} at position {error.pos}); quote it like '{{\"key\": 1}}'")


def load_app(spec: str) -> Any:
    """Import `module:attribute` (attribute defaults to `app`) from the working directory or the path."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module_name, _, attribute = spec.partition(":")
    if not module_name:
        raise ConfigurationError(f"{spec!r} is not MODULE:OBJECT (for example myproject.workflows:app)")
    if module_name.endswith(".py"):  # a file name where Python wants the module: post.py -> post
        dotted = module_name.removesuffix(".py").replace("/", ".").strip(".")
        raise ConfigurationError(f"{spec!r} names a file; give its module instead: {dotted}:{attribute or 'app'}")
    try:
        module = import_module(module_name)
    except ImportError as error:
        raise ConfigurationError(f"cannot import {module_name!r} ({error}); check the name and PYTHONPATH") from error
    except Exception as error:
        raise ConfigurationError(f"importing {module_name!r} failed: {type(error).__name__}: {error}") from error
    target = getattr(module, attribute or "app", None)
    if target is None:
        raise ConfigurationError(f"module {module_name!r} has no attribute {attribute or 'app'!r}; pass MODULE:OBJECT")
    return target


def load_durable_app(spec: str) -> DurableApp:
    target = load_app(spec)
    if not isinstance(target, DurableApp):
        raise ConfigurationError(f"{spec} is a {type(target).__name__}, not a DurableApp")
    return target


def make_client(taskhub: str | None, app_spec: str | None = None, *, publishes: bool = False) -> DurableClient:
    """A client of `taskhub`; built from the user's app (if given) so names are checked before anything starts.

    A command that `publishes` (writes, then wakes a worker through Redis) checks Redis first: with it
    down, the command says so in one line and changes nothing, rather than half-succeeding."""
    app = load_durable_app(app_spec) if app_spec else None
    client = DurableClient(app, taskhub=taskhub, embedded_worker=False)
    if publishes:
        require_redis(client.settings)
    return client


#: The fewest characters of an id taken as its start (as git takes a commit's): fewer would too easily
#: name an instance nobody meant.
MIN_PREFIX = 4


def resolve_id(client: DurableClient, given: str) -> str:
    """The instance `given` names: its id, or the start of exactly one instance's id."""
    if client.get_orchestration_state(given) is not None or len(given) < MIN_PREFIX:
        return given  # an unknown id is reported by the command, which says so best
    matches = client.query_instances(instance_id_prefix=given, limit=4)
    if len(matches) == 1:
        return matches[0].instance_id
    if not matches:
        return given
    shown = ", ".join(state.instance_id for state in matches[:3])
    more = " and more" if len(matches) > 3 else ""
    raise ValueError(f"{given!r} is the start of several instance ids ({shown}{more}); give more of the id")


def styled_status(status: OrchestrationStatus | str) -> Text:
    value = OrchestrationStatus(status)
    return Text(value.value, style=STATUS_STYLES.get(value, ""))


def when(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def summary(value: Any, width: int = 80) -> str:
    """A value as compact JSON on one line, cut to `width` characters (0: never cut)."""
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    text = one_line(text)
    if width and len(text) > width:
        return text[: max(width - 1, 1)] + "…"
    return text


def parse_statuses(values: list[str] | None) -> list[OrchestrationStatus] | None:
    """The statuses named by `--status` options (any case, `-` for `_`); an unknown one fails in one line."""
    if not values:
        return None
    known = {s.value: s for s in OrchestrationStatus}
    wanted = []
    for value in values:
        status = known.get(value.upper().replace("-", "_"))
        if status is None:
            fail(f"unknown status {value!r}; use one of {', '.join(known)}")
        wanted.append(status)
    return wanted
