"""Runs each demo pattern through the real client, worker and store, and reports what happened."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from sqlalchemy.engine import make_url

from .. import ids
from ..connections import masked

if TYPE_CHECKING:
    from ..agents.client import DurableAgentClient
    from ..client import DurableClient
    from ..config import Settings


@dataclass(frozen=True)
class PatternResult:
    pattern: str
    what_happened: str
    instance_id: str
    steps: int
    text: str


@dataclass(frozen=True)
class Demo:
    client: DurableClient
    agents: DurableAgentClient

    def steps(self, instance_id: str) -> int:
        """Checkpointed steps of the instance: each began a transaction that recorded its progress."""
        return sum(1 for event in self.client.get_history(instance_id) if event["type"] == "StepStarted")

    def run(self, orchestration: str, input: Any = None, timeout: float = 300.0) -> tuple[str, Any]:
        instance_id = self.client.schedule_new_orchestration(orchestration, input=input)
        state = self.client.wait_for_orchestration_completion(instance_id, timeout=timeout)
        if state.failure_details is not None:
            raise RuntimeError(f"{orchestration} failed: {state.failure_details}")
        return instance_id, state.output

    def wait_for_history(self, instance_id: str, event_type: str, timeout: float = 120.0) -> None:
        """Wait until the instance has recorded `event_type` (it is then waiting on what follows)."""
        deadline = time.monotonic() + timeout
        while not any(event["type"] == event_type for event in self.client.get_history(instance_id)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{instance_id} recorded no {event_type} within {timeout:g}s")
            time.sleep(0.05)


def single_agent(demo: Demo) -> PatternResult:
    joker = demo.agents.get_agent("Joker")
    session = joker.create_session()
    first = joker.run_sync("Tell me a joke about clouds", session=session)
    second = joker.run_sync("Tell me another one", session=session)
    turns = demo.agents.get_session("Joker", session).turn_count
    return PatternResult(
        "Single agent, multi-turn",
        f"Joker answered two turns of one session; the session holds {turns} turns in the store.",
        ids.agent_turn_instance_id(second.correlation_id),
        demo.steps(ids.agent_turn_instance_id(first.correlation_id))
        + demo.steps(ids.agent_turn_instance_id(second.correlation_id)),
        f"Joke 1: {first.text}\nJoke 2: {second.text}",
    )


def two_agents(demo: Demo) -> PatternResult:
    physics = demo.agents.get_agent("Physicist").run_sync("Explain quantum entanglement")
    chemistry = demo.agents.get_agent("Chemist").run_sync("Explain chemical bonds")
    return PatternResult(
        "Two agents",
        "Physicist and Chemist, each with its own instructions and conversation.",
        ids.agent_turn_instance_id(chemistry.correlation_id),
        demo.steps(ids.agent_turn_instance_id(physics.correlation_id))
        + demo.steps(ids.agent_turn_instance_id(chemistry.correlation_id)),
        f"Physicist: {physics.text}\nChemist: {chemistry.text}",
    )


def chaining(demo: Demo) -> PatternResult:
    instance_id, output = demo.run("writer_orchestration")
    return PatternResult(
        "Sequential chaining",
        "WriterAgent drafted a sentence, then improved it in the same session.",
        instance_id,
        demo.steps(instance_id),
        str(output),
    )


def parallel(demo: Demo) -> PatternResult:
    instance_id, output = demo.run("parallel_orchestration", "black holes")
    return PatternResult(
        "Parallel agents",
        "Physicist, Chemist and Mathematician answered at the same time; the orchestration joined them.",
        instance_id,
        demo.steps(instance_id),
        str(output),
    )


def routing(demo: Demo) -> PatternResult:
    spam_id, spam = demo.run("conditional_orchestration", "WIN A FREE cruise! Click here to claim your prize.")
    mail_id, mail = demo.run("conditional_orchestration", "Hi, can we move Thursday's review to 3 pm?")
    return PatternResult(
        "Conditional routing",
        f"A structured Classification routed each e-mail: spam was {spam['action']}, "
        f"the real e-mail was {mail['action']}.",
        mail_id,
        demo.steps(spam_id) + demo.steps(mail_id),
        f"spam: {spam}\nreal: {mail['draft']}",
    )


def human_in_the_loop(demo: Demo) -> PatternResult:
    approved_id = demo.client.schedule_new_orchestration("hitl_orchestration")
    demo.wait_for_history(approved_id, "TimerCreated")  # the draft is done; it waits for a person now
    demo.client.raise_event(approved_id, "approval_received", data={"approved": True})
    approved = demo.client.wait_for_orchestration_completion(approved_id, timeout=120).output
    timed_out_id, timed_out = demo.run("hitl_orchestration", {"timeout_seconds": 2})
    return PatternResult(
        "Human in the loop",
        f"One draft was approved by an event and {approved['status']}; another waited 2 s for nobody "
        f"and was {timed_out['status']}.",
        approved_id,
        demo.steps(approved_id) + demo.steps(timed_out_id),
        f"approved: {approved['content']}\ntimed out: {timed_out}",
    )


def durable_tool(demo: Demo) -> PatternResult:
    from .app import BOOKING_SECONDS

    instance_id, output = demo.run("travel_orchestration", "Book a flight to Lisbon for two people.")
    return PatternResult(
        "Long-running durable tool",
        f"TravelAgent called book_flight, an activity of {BOOKING_SECONDS:g} s; the turn was checkpointed "
        "while it ran and no worker slot waited for it.",
        instance_id,
        demo.steps(instance_id),
        str(output),
    )


def resumed_stream(demo: Demo) -> PatternResult:
    writer = demo.agents.get_agent("WriterAgent")
    correlation_id = writer.run_sync("Write a sentence about learning.", wait_for_response=False)

    async def read(cursor: str, limit: int | None) -> tuple[list[str], str]:
        texts: list[str] = []
        async for chunk in demo.agents.stream(correlation_id, cursor=cursor):
            cursor = chunk.cursor
            if chunk.kind == "chunk":
                texts.append(chunk.text)
            if limit is not None and len(texts) >= limit:
                break  # the reader goes away mid-reply
        return texts, cursor

    before, cursor = asyncio.run(read("0", 3))
    after, _ = asyncio.run(read(cursor, None))
    return PatternResult(
        "Resumed stream",
        f"A reader took {len(before)} chunks ({''.join(before)!r}) and left; a new reader resumed at "
        f"cursor {cursor} and got the other {len(after)}, none twice.",
        ids.agent_turn_instance_id(str(correlation_id)),
        demo.steps(ids.agent_turn_instance_id(str(correlation_id))),
        "".join(before + after),
    )


PATTERNS: dict[str, Callable[[Demo], PatternResult]] = {
    "single-agent": single_agent,
    "two-agents": two_agents,
    "chaining": chaining,
    "parallel": parallel,
    "routing": routing,
    "human-in-the-loop": human_in_the_loop,
    "durable-tool": durable_tool,
    "resumed-stream": resumed_stream,
}


@contextmanager
def _workers_if_needed(embedded: bool) -> Iterator[None]:
    """With services configured, the demo's app is served by a worker process of its own."""
    if embedded:
        yield
        return
    command = [sys.executable, "-m", "durable_agents", "worker", "durable_agents.demo.app:app", "--pool", "threads"]
    worker = subprocess.Popen([*command, "--concurrency", "8", "--loglevel", "WARNING"], env=os.environ.copy())
    try:
        yield
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def run_demo(console: Console, *, only: list[str] | None = None, as_json: bool = False) -> list[PatternResult]:
    """Run the patterns (all, or those named in `only`) and print what each did."""
    unknown = sorted(set(only or ()) - set(PATTERNS))
    if unknown:
        raise ValueError(f"unknown pattern(s) {', '.join(unknown)}; choose from {', '.join(PATTERNS)}")
    from ..agents.client import DurableAgentClient
    from ..client import DurableClient
    from ..embedded import ensure_worker
    from .app import app, chat

    settings = app.settings
    note = console if not as_json else Console(stderr=True, highlight=False, markup=False, emoji=False)
    chosen = [name for name in PATTERNS if not only or name in only]
    _introduce(note, settings, chat, len(chosen))
    results: list[PatternResult] = []
    with _workers_if_needed(settings.embedded):
        if settings.embedded:
            ensure_worker(app, quiet=True)  # the introduction above said where things live
        client = DurableClient(app)
        demo = Demo(client, DurableAgentClient(client))
        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=note,
            transient=True,
        )
        with progress:
            overall = progress.add_task("patterns", total=len(chosen))
            for name in chosen:
                progress.update(overall, description=f"running [bold]{name}[/]")
                result = PATTERNS[name](demo)
                results.append(result)
                if not as_json:
                    progress.console.print(_panel(result))
                progress.advance(overall)
    if as_json:
        console.print_json(data=[asdict(result) for result in results])
    else:
        console.print(_summary(results))
    return results


def _introduce(note: Console, settings: Settings, chat: Any, count: int) -> None:
    """What the demo runs on, each place on a line of its own, never cut inside a path or URL."""
    from ..agents.environment import is_offline

    if settings.embedded:
        where = "embedded development mode: one process, no services"
        store = f"SQLite file {make_url(settings.database_url).database}; broker and streams in memory; worker thread"
    else:
        where = "your PostgreSQL and Redis, with a worker process started for the demo"
        store = (
            f"{make_url(settings.database_url).render_as_string(hide_password=True)} and {masked(settings.redis_url)}"
        )
    model = (
        "the bundled test model (scripted replies; set OPENAI_API_KEY or AZURE_OPENAI_ENDPOINT for a real one)"
        if is_offline(chat)
        else f"{chat.model} at {chat.endpoint}"
    )
    patterns = f"{count} pattern{'s' if count != 1 else ''}" + (" (all)" if count == len(PATTERNS) else "")
    note.print(Text.assemble(("durable-agents demo", "bold"), f": {patterns}, in {where}"), soft_wrap=True)
    note.print(Text.assemble(("  store ", "dim"), store), soft_wrap=True)
    note.print(Text.assemble(("  model ", "dim"), model, "\n"), soft_wrap=True)


def _panel(result: PatternResult) -> Panel:
    body = Table.grid(padding=(0, 1))
    body.add_column(style="dim", no_wrap=True)
    body.add_column()
    body.add_row("what", result.what_happened)
    body.add_row("instance", result.instance_id)
    body.add_row("steps", f"{result.steps} checkpointed")
    body.add_row("text", result.text)
    return Panel(body, title=f"[bold green]✓[/] {result.pattern}", title_align="left", border_style="green")


def _summary(results: list[PatternResult]) -> Table:
    count = len(results)
    title = (
        f"All {count} patterns completed"
        if count == len(PATTERNS)
        else f"{count} of {len(PATTERNS)} patterns completed (`durable-agents demo` runs them all)"
    )
    table = Table(title=title, title_justify="left")
    table.add_column("pattern")
    table.add_column("instance")
    table.add_column("steps", justify="right")
    for result in results:
        table.add_row(result.pattern, result.instance_id, str(result.steps))
    return table
