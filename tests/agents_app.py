"""The reference's agent samples on one app; every orchestration body is exactly as the reference has it.

The model is the bundled OpenAI-compatible test server at $MODEL_SERVER_URL.
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from durable_agents import (
    AgentFunctionApp,
    ApprovalPolicy,
    DurableOrchestrationContext,
    KeepLast,
    MCPServer,
    OpenAIChatClient,
    Summarize,
)

EFFECTS_DIR = Path(os.environ.get("DA_TEST_EFFECTS_DIR", "/tmp/durable-agents-effects"))

client = OpenAIChatClient(
    model="test-model",
    api_key="not-needed",
    base_url=os.environ.get("MODEL_SERVER_URL", "http://127.0.0.1:8089/v1"),
    max_retries=3,
    max_concurrency=int(os.environ.get("DA_TEST_MODEL_CONCURRENCY", "0")) or None,
)

#: Another model behind the same server, as a local server's would be: the structured-output fallback
#: learns per endpoint and model, so this one's lessons do not leak into the other tests'.
local_client = OpenAIChatClient(
    model="local-model",
    api_key="not-needed",
    base_url=os.environ.get("MODEL_SERVER_URL", "http://127.0.0.1:8089/v1"),
    max_retries=3,
)

WRITER_AGENT_NAME = "WriterAgent"

agent = client.as_agent(
    name=WRITER_AGENT_NAME,
    instructions="""You refine text. Given an initial sentence you enhance it;
    given an improved sentence you polish it further.""",
)
joker = client.as_agent(name="Joker", instructions="You are good at telling jokes.")
physicist = client.as_agent(name="Physicist", instructions="You are a physicist expert. Answer physics questions.")
chemist = client.as_agent(name="Chemist", instructions="You are a chemistry expert. Answer chemistry questions.")
mathematician = client.as_agent(name="Mathematician", instructions="You are a mathematician. Answer maths questions.")
spam_detector = client.as_agent(name="SpamDetector", instructions="You classify e-mail as spam or not.")
email_assistant = client.as_agent(name="EmailAssistant", instructions="You draft polite e-mail replies.")
forgetful = client.as_agent(
    name="Forgetful", instructions="You only remember recent messages.", history=KeepLast(messages=2)
)
summarizer = client.as_agent(
    name="Summarizer", instructions="You talk at length.", history=Summarize(keep_last=2, max_messages=4)
)
local_classifier = local_client.as_agent(name="LocalClassifier", instructions="You classify e-mail as spam or not.")
ephemeral = client.as_agent(
    name="Ephemeral", instructions="Your sessions expire.", session_ttl=timedelta(milliseconds=300)
)

app = AgentFunctionApp(
    agents=[
        agent,
        joker,
        physicist,
        chemist,
        mathematician,
        spam_detector,
        email_assistant,
        forgetful,
        summarizer,
        ephemeral,
        local_classifier,
    ]
)


# -- tools ------------------------------------------------------------------------------------


def weather(city: str, unit: str = "celsius") -> str:
    """Look up the current weather in a city."""
    EFFECTS_DIR.mkdir(parents=True, exist_ok=True)
    with (EFFECTS_DIR / f"weather-{city}").open("a") as f:
        f.write(f"{os.getpid()}\n")
    return f"It is 21 degrees {unit} in {city}."


def broken_tool(reason: str) -> str:
    """A tool that always fails."""
    raise RuntimeError(f"the tool broke: {reason}")


@app.durable_tool
def book_flight(destination: str, passengers: int) -> dict[str, Any]:
    """Book a flight (a durable tool: an activity that may take long)."""
    return {"confirmation": f"FLIGHT-{destination.upper()}-{passengers}"}


class ResearchArguments(BaseModel):
    topic: str


@app.orchestration_tool(arguments=ResearchArguments, description="Research a topic in depth.")
def research(context: DurableOrchestrationContext) -> Any:
    topic = context.get_input()["topic"]
    notes = yield context.call_activity(take_notes, input=topic)
    return {"topic": topic, "notes": notes}


@app.activity
def take_notes(topic: str) -> str:
    return f"notes on {topic}"


tool_user = app.add_agent(
    client.as_agent(
        name="ToolUser",
        instructions="You use tools.",
        tools=[weather, broken_tool, book_flight, research],
        max_tool_rounds=3,
    )
)


# -- tool approvals and MCP tools -----------------------------------------------------------------


@app.durable_tool(requires_approval=True)
def delete_file(path: str) -> str:
    """Delete a file (only once a person approves)."""
    EFFECTS_DIR.mkdir(parents=True, exist_ok=True)
    (EFFECTS_DIR / f"deleted-{path}").write_text(str(os.getpid()))
    return f"deleted {path}"


@app.durable_tool(requires_approval=ApprovalPolicy(timeout=timedelta(seconds=1), on_timeout="approve"))
def ping_host(host: str) -> str:
    """Ping a host (it goes ahead unless someone objects within a second)."""
    return f"{host} answered"


app.add_agent(client.as_agent(name="Janitor", instructions="You tidy up files.", tools=[delete_file, weather]))
app.add_agent(
    client.as_agent(
        name="Hasty",
        instructions="You look up the weather, if allowed in time.",
        tools=[weather, ping_host],
        approval=ApprovalPolicy(timeout=timedelta(seconds=1), timeout_reason="nobody answered within a second"),
    )
)
MCP_SERVER_SCRIPT = str(Path(__file__).with_name("mcp_tools_server.py"))
app.add_agent(
    client.as_agent(
        name="Calculator",
        instructions="You add numbers with your tools.",
        tools=[MCPServer.stdio(sys.executable, [MCP_SERVER_SCRIPT], env={"DA_TEST_EFFECTS_DIR": str(EFFECTS_DIR)})],
    )
)


def where_am_i(place: str) -> str:
    """Say which process runs this tool."""
    return f"{place} from pid {os.getpid()}"


# Its model and tool calls go to the `gpu` queue, which the shared agents worker does not consume.
app.add_agent(
    client.as_agent(name="GpuWriter", instructions="You write on the GPU hosts.", tools=[where_am_i], queue="gpu")
)
if os.environ.get("DA_TEST_MCP_HTTP_URL"):
    app.add_agent(
        client.as_agent(
            name="WebCalculator",
            instructions="You add numbers with your tools.",
            tools=[MCPServer.http(os.environ["DA_TEST_MCP_HTTP_URL"], prefix="web_")],
        )
    )


# -- the reference's orchestrations ---------------------------------------------------------------


@app.orchestration_trigger(context_name="context")
def writer_orchestration(context: DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    """Sequential refinement with shared conversation."""
    writer = app.get_agent(context, WRITER_AGENT_NAME)
    session = writer.create_session()

    # First pass
    initial = yield writer.run(messages="Write a sentence about learning.", session=session)

    # Second pass with context
    refined = yield writer.run(messages=f"Improve this: {initial.text}", session=session)

    return refined.text


@app.orchestration_trigger(context_name="context")
def parallel_orchestration(context: DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    """Run multiple agents concurrently and aggregate results."""

    physicist = app.get_agent(context, "Physicist")
    chemist = app.get_agent(context, "Chemist")
    mathematician = app.get_agent(context, "Mathematician")

    topic = context.get_input()

    # Schedule all agents concurrently
    physics_task = physicist.run(f"Explain {topic} from a physics perspective")
    chemistry_task = chemist.run(f"Explain {topic} from a chemistry perspective")
    math_task = mathematician.run(f"Explain {topic} from a mathematics perspective")

    # Wait for all to complete
    results = yield [physics_task, chemistry_task, math_task]

    # Aggregate results
    combined = "\n\n".join(
        [
            f"Physics: {results[0].text}",
            f"Chemistry: {results[1].text}",
            f"Mathematics: {results[2].text}",
        ]
    )

    return combined


class Classification(BaseModel):
    is_spam: bool
    confidence: float


@app.orchestration_trigger(context_name="context")
def conditional_orchestration(context: DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    """Route based on spam detection."""

    spam_detector = app.get_agent(context, "SpamDetector")
    email_assistant = app.get_agent(context, "EmailAssistant")

    email = context.get_input()

    # Step 1: Detect spam
    classification = yield spam_detector.run(messages=f"Classify this email: {email}", response_format=Classification)

    # Step 2: Conditional routing
    if classification.is_spam and classification.confidence > 0.8:
        return {"action": "blocked", "reason": "spam detected"}
    else:
        # Process legitimate email
        response = yield email_assistant.run(messages=f"Draft a reply to: {email}")
        return {"action": "replied", "draft": response.text}


@app.orchestration_trigger(context_name="context")
def hitl_orchestration(context: DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    """Request human approval before proceeding."""

    writer = app.get_agent(context, "WriterAgent")

    # Step 1: Generate draft
    draft = yield writer.run("Write a blog post about AI")

    # Step 2: Wait for human approval
    approval_event = context.wait_for_external_event("approval_received", timeout=timedelta(hours=24))

    timeout_event = context.create_timer(context.current_utc_datetime + timedelta(hours=24))

    winner = yield context.task_any([approval_event, timeout_event])

    if winner == approval_event:
        # Approved: publish
        approval_data = approval_event.result
        if approval_data.get("approved"):
            return {"status": "published", "content": draft.text}
        else:
            # Revise based on feedback
            revised = yield writer.run(f"Revise this based on feedback '{approval_data.get('feedback')}': {draft.text}")
            return {"status": "revised", "content": revised.text}
    else:
        # Timeout: escalate
        return {"status": "escalated", "reason": "approval timeout"}


# -- more shapes for the tests ---------------------------------------------------------------------


@app.orchestration
def tool_orchestration(context: DurableOrchestrationContext) -> Any:
    response = yield app.get_agent(context, "ToolUser").run(context.get_input())
    return {"text": response.text, "messages": response.messages}


@app.orchestration
def structured_only(context: DurableOrchestrationContext) -> Any:
    classification = yield context.get_agent("SpamDetector").run(
        messages=f"Classify this email: {context.get_input()}", response_format=Classification
    )
    return {"is_spam": classification.is_spam, "value": classification.value.model_dump()}


@app.orchestration
def structured_local(context: DurableOrchestrationContext) -> Any:
    classification = yield context.get_agent("LocalClassifier").run(
        messages=f"Classify this email: {context.get_input()}", response_format=Classification
    )
    return classification.value.model_dump()


# -- response callbacks ---------------------------------------------------------------------------


class RecordingCallback:
    """Writes what it hears per correlation id, so tests in another process can read it."""

    def on_chunk(self, context: Any, chunk: str) -> None:
        with (EFFECTS_DIR / f"chunks-{context.correlation_id}").open("a") as f:
            f.write(chunk)

    def on_response(self, context: Any, response: dict[str, Any]) -> None:
        (EFFECTS_DIR / f"response-{context.correlation_id}").write_text(
            f"{context.agent}|{context.session}|{response['text']}"
        )


class BrokenCallback:
    def on_chunk(self, context: Any, chunk: str) -> None:
        raise RuntimeError("this callback is broken")


class IteratorCallback:
    """The reference's async-iterator form."""

    async def handle_agent_response(self, context: Any, response_stream: Any) -> None:
        pieces = [chunk async for chunk in response_stream]
        (EFFECTS_DIR / f"iterated-{context.correlation_id}").write_text("".join(pieces))


class AsyncHooksCallback:
    """Per-event hooks as coroutines: they run on the worker's callback loop, the chunks in order."""

    async def on_chunk(self, context: Any, chunk: str) -> None:
        await asyncio.sleep(0)  # a real await: a later chunk must still not overtake this one
        with (EFFECTS_DIR / f"async-chunks-{context.correlation_id}").open("a") as f:
            f.write(chunk)

    async def on_response(self, context: Any, response: dict[str, Any]) -> None:
        (EFFECTS_DIR / f"async-response-{context.correlation_id}").write_text(response["text"])


EFFECTS_DIR.mkdir(parents=True, exist_ok=True)
app.add_response_callback(AsyncHooksCallback(), agent="Joker")
app.add_response_callback(BrokenCallback())
app.add_response_callback(RecordingCallback())
app.add_response_callback(IteratorCallback())
