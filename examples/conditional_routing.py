"""Conditional routing: a SpamDetector classifies each e-mail into a pydantic model (structured output),
and the orchestration either blocks it or has the EmailAssistant draft a reply. Runs on two e-mails.

Run it in one process (embedded mode: a SQLite file in the working directory, the worker a thread of
this program, no services):

    python examples/conditional_routing.py

Or with Postgres and Redis, worker and client as separate processes (in examples/, both terminals
with the same DATABASE_URL and REDIS_URL, after `durable-agents db upgrade`):

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        durable-agents worker conditional_routing:app
    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        python conditional_routing.py

With OPENAI_API_KEY (or AZURE_OPENAI_ENDPOINT) set the agents are a real model; without, the bundled
test model answers, told below how to classify the two e-mails.
"""

from __future__ import annotations

from pydantic import BaseModel

from durable_agents import AgentFunctionApp, DurableClient, DurableOrchestrationContext, chat_client_from_env
from durable_agents.agents.environment import is_offline, offline_model_server

EMAILS = [
    "Hi, can we move tomorrow's design review to 3pm? Thanks, Ana",
    "CONGRATULATIONS!!! You have won a $1,000,000 prize. Send your bank details to claim it.",
]

# -- worker: two agents, the structured output and the orchestration ------------------------------

chat = chat_client_from_env()
spam_detector = chat.as_agent(name="SpamDetector", instructions="You classify e-mail as spam or not.")
email_assistant = chat.as_agent(name="EmailAssistant", instructions="You draft polite e-mail replies.")

app = AgentFunctionApp(agents=[spam_detector, email_assistant])

if is_offline(chat):
    # What a real model would answer: the prize e-mail is spam, the other one is not.
    control = offline_model_server().control
    control.add_rule(
        match={"response_format": True, "last_user_contains": "prize"},
        reply={"json": {"is_spam": True, "confidence": 0.97}},
    )
    control.add_rule(match={"response_format": True}, reply={"json": {"is_spam": False, "confidence": 0.92}})


class Classification(BaseModel):
    is_spam: bool
    confidence: float


# fmt: off
@app.orchestration_trigger(context_name="context")
def conditional_orchestration(context: DurableOrchestrationContext):
    """Route based on spam detection."""

    spam_detector = app.get_agent(context, "SpamDetector")
    email_assistant = app.get_agent(context, "EmailAssistant")

    email = context.get_input()

    # Step 1: Detect spam
    classification = yield spam_detector.run(
        messages=f"Classify this email: {email}",
        response_format=Classification
    )

    # Step 2: Conditional routing
    if classification.is_spam and classification.confidence > 0.8:
        return {"action": "blocked", "reason": "spam detected"}
    else:
        # Process legitimate email
        response = yield email_assistant.run(
            messages=f"Draft a reply to: {email}"
        )
        return {"action": "replied", "draft": response.text}
# fmt: on


# -- client ---------------------------------------------------------------------------------------


def main() -> None:
    client = DurableClient(app)
    for email in EMAILS:
        instance_id = client.schedule_new_orchestration(conditional_orchestration, input=email)
        print(f"E-mail: {email}")
        print(f"  conditional_orchestration: instance {instance_id}")
        state = client.wait_for_orchestration_completion(instance_id, timeout=300)
        result = state.output
        print(f"  Status: {state.runtime_status}, action: {result['action']}")
        if result["action"] == "blocked":
            print(f"  Reason: {result['reason']}")
        else:
            print(f"  Draft: {result['draft']}")


if __name__ == "__main__":
    main()
