"""Agent commands: `agents run` (optionally streaming), session inspection and reset, and `stream`."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from ..agents.client import DurableAgentClient
from ..agents.proxy import DEFAULT_SESSION
from ..store.sessions import SessionInfo
from ..streaming.redis_stream import StreamChunk
from .common import (
    AppOption,
    JsonOption,
    TaskhubOption,
    console,
    emit_json,
    err_console,
    fail,
    make_client,
    note,
    summary,
    when,
)

app = typer.Typer(
    help="Talk to agents hosted by your workers, and read or reset their sessions.",
    no_args_is_help=True,
)

AgentName = Annotated[str, typer.Argument(metavar="NAME", help="The agent's name, as registered on the worker.")]
SessionKey = Annotated[
    str, typer.Argument(metavar="KEY", help=f"The session key (default: the agent's {DEFAULT_SESSION!r} session).")
]
TimeoutOption = Annotated[
    float,
    typer.Option(
        "--timeout", min=0.1, help="Give up after this many seconds without an answer (or, streaming, a token)."
    ),
]

_ROLE_STYLES = {"user": "bold cyan", "assistant": "bold green", "tool": "dim", "system": "yellow"}


def _agents(taskhub: str | None, app_spec: str | None, *, publishes: bool = False) -> DurableAgentClient:
    return DurableAgentClient(make_client(taskhub, app_spec, publishes=publishes))


@app.command("run")
def run(
    name: AgentName,
    message: Annotated[
        str, typer.Argument(metavar="MESSAGE", help="What to say to the agent; '-' reads it from stdin.")
    ],
    session: Annotated[
        str | None,
        typer.Option(
            "--session", "-s", help=f"Continue this conversation (default: the agent's {DEFAULT_SESSION!r} session)."
        ),
    ] = None,
    new_session: Annotated[
        bool, typer.Option("--new-session", help="Start a fresh conversation (its key is printed to stderr).")
    ] = False,
    stream: Annotated[
        bool, typer.Option("--stream", help="Print the reply token by token as it is generated.")
    ] = False,
    timeout: TimeoutOption = 300.0,
    taskhub: TaskhubOption = None,
    app_spec: AppOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run one agent turn on a worker and print the reply.

    A turn is durable: a worker crash mid-turn resumes after the last finished model or tool call.

    With --app (or $DURABLE_AGENTS_APP) the name is checked before the turn starts; otherwise the worker reports it.

    Example: durable-agents agents run Joker "Tell me a joke about clouds" --session alice --stream
    """
    if session is not None and new_session:
        fail("give --session or --new-session, not both")
    text = sys.stdin.read() if message == "-" else message
    agents = _agents(taskhub, app_spec, publishes=True)
    proxy = agents.get_agent(name)
    key = proxy.create_session().key if new_session else (session or DEFAULT_SESSION)
    if not stream:
        response = proxy.run_sync(text, session=key, timeout=timeout)
        usage = response.usage
        if as_json:
            emit_json(
                {
                    "agent": name,
                    "session": key,
                    "correlation_id": response.correlation_id,
                    "text": response.text,
                    "usage": {
                        "prompt_tokens": usage.prompt_tokens,
                        "completion_tokens": usage.completion_tokens,
                        "total_tokens": usage.total_tokens,
                    },
                    "messages": response.messages,
                }
            )
            return
        console.out(response.text, highlight=False)
        note(f"{name} · session {key} · turn {response.correlation_id} · {usage.total_tokens} tokens", stderr=True)
        return
    correlation_id = proxy.run_sync(text, session=key, wait_for_response=False)
    _follow(agents, correlation_id, cursor="0", timeout=timeout, as_json=as_json)
    if not as_json:
        note(f"{name} · session {key} · turn {correlation_id}", stderr=True)


@app.command("session")
def show_session(
    name: AgentName,
    key: SessionKey = DEFAULT_SESSION,
    taskhub: TaskhubOption = None,
    app_spec: AppOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a session's conversation and counters.

    Example: durable-agents agents session Joker alice
    """
    info = _agents(taskhub, app_spec).get_session(name, key)
    if as_json:
        emit_json(_session_json(info))
        return
    console.print(
        Text.assemble(
            (info.agent, "bold"),
            f" · session {info.session_key} · {info.turn_count} turns · {info.message_count} messages"
            f" · {info.prompt_tokens} prompt + {info.completion_tokens} completion tokens"
            f" · updated {when(info.updated_at)}",
        )
    )
    if not info.messages:
        note("(no messages)")
    for message in info.messages:
        console.print(_message_line(message))


@app.command("sessions")
def list_sessions(
    name: Annotated[str | None, typer.Argument(metavar="NAME", help="Only this agent's sessions.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many sessions.")] = 50,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Skip this many (for paging).")] = 0,
    taskhub: TaskhubOption = None,
    app_spec: AppOption = None,
    as_json: JsonOption = False,
) -> None:
    """List sessions, most recently used first.

    Example: durable-agents agents sessions Joker --limit 10
    """
    infos = _agents(taskhub, app_spec).list_sessions(name, limit=limit, offset=offset)
    if as_json:
        emit_json([_session_json(info) for info in infos])
        return
    if not infos:
        note("no sessions")
        return
    table = Table("agent", "session", "turns", "messages", "tokens", "updated", "expires")
    for info in infos:
        table.add_row(
            info.agent,
            info.session_key,
            str(info.turn_count),
            str(info.message_count),
            str(info.prompt_tokens + info.completion_tokens),
            when(info.updated_at),
            when(info.expires_at),
        )
    console.print(table)


@app.command("reset")
def reset_session(
    name: AgentName,
    key: SessionKey = DEFAULT_SESSION,
    taskhub: TaskhubOption = None,
    app_spec: AppOption = None,
    as_json: JsonOption = False,
) -> None:
    """Forget a session's conversation; its next turn starts afresh.

    Example: durable-agents agents reset Joker alice
    """
    _agents(taskhub, app_spec).reset_session(name, key)
    _acknowledge("reset", name, key, as_json)


@app.command("delete")
def delete_session(
    name: AgentName,
    key: SessionKey = DEFAULT_SESSION,
    taskhub: TaskhubOption = None,
    app_spec: AppOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete a session and its conversation.

    Example: durable-agents agents delete Joker alice
    """
    _agents(taskhub, app_spec).delete_session(name, key)
    _acknowledge("deleted", name, key, as_json)


def _acknowledge(what: str, name: str, key: str, as_json: bool) -> None:
    if as_json:
        emit_json({"agent": name, "session": key, what: True})
    else:
        console.print(f"session {key!r} of agent {name!r} {what}")


def stream(
    correlation_id: Annotated[str, typer.Argument(help="The turn's correlation id (AgentResponse.correlation_id).")],
    cursor: Annotated[
        str, typer.Option("--cursor", help="Resume after this entry (a chunk's cursor; 0: from the start).")
    ] = "0",
    timeout: TimeoutOption = 300.0,
    taskhub: TaskhubOption = None,
    app_spec: AppOption = None,
    as_json: JsonOption = False,
) -> None:
    """Follow an agent turn's reply live, from the start or from a cursor.

    With --json, print one JSON object per chunk (kind, text, seq, cursor), one per line.

    Example: durable-agents stream 9b1e2d40c3 --cursor 1718000000000-3
    """
    _follow(_agents(taskhub, app_spec), correlation_id, cursor=cursor, timeout=timeout, as_json=as_json)


def _follow(agents: DurableAgentClient, correlation_id: str, *, cursor: str, timeout: float, as_json: bool) -> None:
    async def follow() -> None:
        chunks = agents.stream(correlation_id, cursor=cursor, start_timeout=timeout, idle_timeout=timeout)
        async for chunk in chunks:
            _print_chunk(chunk, as_json)
        if not as_json:
            console.out("")

    asyncio.run(follow())


def _print_chunk(chunk: StreamChunk, as_json: bool) -> None:
    if as_json:
        emit_json({"kind": chunk.kind, "text": chunk.text, "seq": chunk.seq, "cursor": chunk.cursor}, compact=True)
    elif chunk.kind == "restart":
        err_console.print(Text("\nthe turn restarted; what follows replaces the text above", style="yellow"))
    else:
        # Tokens as they come: no renderer in between, flushed at once.
        sys.stdout.write(chunk.text)
        sys.stdout.flush()


def _message_line(message: dict[str, Any]) -> Text:
    role = message.get("role", "?")
    line = Text(f"{role:>9}  ", style=_ROLE_STYLES.get(role, ""))
    if message.get("content"):
        line.append(str(message["content"]))
    for call in message.get("tool_calls") or []:
        function = call.get("function", {})
        line.append(f"→ {function.get('name')}({summary(function.get('arguments', ''), 0)})", style="cyan")
    return line


def _session_json(info: SessionInfo) -> dict[str, Any]:
    return {
        "taskhub": info.taskhub,
        "agent": info.agent,
        "session": info.session_key,
        "turn_count": info.turn_count,
        "message_count": info.message_count,
        "prompt_tokens": info.prompt_tokens,
        "completion_tokens": info.completion_tokens,
        "created_at": info.created_at.isoformat(),
        "updated_at": info.updated_at.isoformat(),
        "expires_at": info.expires_at.isoformat() if info.expires_at else None,
        "messages": info.messages,
    }
