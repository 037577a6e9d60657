"""The demo's agents, tool and orchestrations; the orchestration bodies follow the reference's samples.

Run on separate workers too: `durable-agents worker durable_agents.demo.app:app`.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from ..agents.environment import chat_client_from_env, is_offline, offline_model_server
from ..app import DurableApp
from ..orchestrator.context import OrchestrationContext

chat = chat_client_from_env(quiet=True)

joker = chat.as_agent(name="Joker", instructions="You are good at telling jokes.")
physicist = chat.as_agent(name="Physicist", instructions="You are a physicist expert. Answer physics questions.")
chemist = chat.as_agent(name="Chemist", instructions="You are a chemistry expert. Answer chemistry questions.")
mathematician = chat.as_agent(name="Mathematician", instructions="You are a mathematician. Answer maths questions.")
writer = chat.as_agent(
    name="WriterAgent",
    instructions="You refine text. Given an initial sentence you enhance it; "
    "given an improved sentence you polish it further.",
)
spam_detector = chat.as_agent(name="SpamDetector", instructions="You classify e-mail as spam or not.")
email_assistant = chat.as_agent(name="EmailAssistant", instructions="You draft polite e-mail replies.")

app = DurableApp(agents=[joker, physicist, chemist, mathematician, writer, spam_detector, email_assistant])

#: How long the demo's booking tool works, standing in for a tool of an hour.
BOOKING_SECONDS = 2.0


@app.durable_tool
def book_flight(destination: str, passengers: int) -> dict[str, Any]:
    """Book a flight for the passengers to the destination; takes a while."""
    time.sleep(BOOKING_SECONDS)
    return {"confirmation": f"FLIGHT-{destination.upper()}-{passengers}", "seats": passengers}


travel_agent = app.add_agent(
    chat.as_agent(name="TravelAgent", instructions="You book travel with the tools you have.", tools=[book_flight])
)


class Classification(BaseModel):
    is_spam: bool
    confidence: float


@app.orchestration
def writer_orchestration(context: OrchestrationContext):  # type: ignore[no-untyped-def]
    """Sequential refinement with shared conversation."""
    writer = app.get_agent(context, "WriterAgent")
    session = writer.create_session()
    initial = yield writer.run(messages="Write a sentence about learning.", session=session)
    refined = yield writer.run(messages=f"Improve this: {initial.text}", session=session)
    return refined.text


@app.orchestration
def parallel_orchestration(context: OrchestrationContext):  # type: ignore[no-untyped-def]
    """Run three experts at once and combine their answers."""
    physicist = app.get_agent(context, "Physicist")
    chemist = app.get_agent(context, "Chemist")
    mathematician = app.get_agent(context, "Mathematician")
    topic = context.get_input()
    physics_task = physicist.run(f"Explain {topic} from a physics perspective")
    chemistry_task = chemist.run(f"Explain {topic} from a chemistry perspective")
    math_task = mathematician.run(f"Explain {topic} from a mathematics perspective")
    results = yield [physics_task, chemistry_task, math_task]
    return "\n\n".join(
        [f"Physics: {results[0].text}", f"Chemistry: {results[1].text}", f"Mathematics: {results[2].text}"]
    )


@app.orchestration
def conditional_orchestration(context: OrchestrationContext):  # type: ignore[no-untyped-def]
    """Route on the spam detector's structured verdict."""
    spam_detector = app.get_agent(context, "SpamDetector")
    email_assistant = app.get_agent(context, "EmailAssistant")
    email = context.get_input()
    classification = yield spam_detector.run(messages=f"Classify this email: {email}", response_format=Classification)
    if classification.is_spam and classification.confidence > 0.8:
        return {"action": "blocked", "reason": "spam detected"}
    response = yield email_assistant.run(messages=f"Draft a reply to: {email}")
    return {"action": "replied", "draft": response.text}


@app.orchestration
def hitl_orchestration(context: OrchestrationContext):  # type: ignore[no-untyped-def]
    """Draft, then wait for a human's approval; the wait is `timeout_seconds` long (a day by default)."""
    wait = timedelta(seconds=(context.get_input() or {}).get("timeout_seconds", 24 * 3600))
    writer = app.get_agent(context, "WriterAgent")
    draft = yield writer.run("Write a blog post about AI")
    approval_event = context.wait_for_external_event("approval_received", timeout=wait)
    timeout_event = context.create_timer(context.current_utc_datetime + wait)
    winner = yield context.task_any([approval_event, timeout_event])
    if winner == approval_event:
        approval_data = approval_event.result
        if approval_data.get("approved"):
            return {"status": "published", "content": draft.text}
        revised = yield writer.run(f"Revise this based on feedback '{approval_data.get('feedback')}': {draft.text}")
        return {"status": "revised", "content": revised.text}
    return {"status": "escalated", "reason": "approval timeout"}


@app.orchestration
def travel_orchestration(context: OrchestrationContext):  # type: ignore[no-untyped-def]
    """An agent turn whose tool runs as a durable activity."""
    response = yield app.get_agent(context, "TravelAgent").run(context.get_input())
    return response.text


#: What the bundled test model says in the demo, so offline answers read like a model's.
OFFLINE_SCRIPT: list[dict[str, Any]] = [
    {
        "match": {"system_contains": "jokes", "last_user_contains": "clouds"},
        "reply": {"content": "Why did the cloud break up with the fog? It needed more space."},
    },
    {
        "match": {"system_contains": "jokes", "last_user_contains": "another"},
        "reply": {"content": "Clouds never pay for their drinks: they always make it rain on someone else."},
    },
    {
        "match": {"response_format": True, "last_user_contains": "WIN A FREE"},
        "reply": {"json": {"is_spam": True, "confidence": 0.97}},
    },
    {"match": {"response_format": True}, "reply": {"json": {"is_spam": False, "confidence": 0.12}}},
    {
        "match": {"tool_offered": "book_flight", "last_message_role": "user"},
        "reply": {"tool_calls": [{"name": "book_flight", "arguments": {"destination": "Lisbon", "passengers": 2}}]},
    },
    {
        "match": {"tool_offered": "book_flight", "last_message_role": "tool"},
        "reply": {"content": "Booked: two seats to Lisbon, confirmation FLIGHT-LISBON-2."},
    },
    {
        "match": {"system_contains": "refine text", "last_user_contains": "Improve this"},
        "reply": {
            "content": "Learning is the quiet habit of turning each mistake into a map, and every map "
            "makes the next journey shorter."
        },
    },
    {
        "match": {"system_contains": "refine text", "last_user_contains": "blog post"},
        "reply": {
            "content": "Draft: AI will not replace curiosity. The best tools of the next decade will be the "
            "ones that make people ask better questions."
        },
    },
    {
        "match": {"system_contains": "refine text"},
        "reply": {
            "content": "Learning turns mistakes into maps.",
            "chunk_delay_ms": 15,
        },
    },
]

if is_offline(chat):
    offline_model_server().control.set_rules(OFFLINE_SCRIPT)
