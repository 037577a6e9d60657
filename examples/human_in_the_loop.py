"""Human in the loop: the WriterAgent drafts a blog post, then the orchestration waits (durably, up to
24 hours) for an `approval_received` event. The client plays the human: it waits until the
orchestration is waiting, then approves one draft and sends feedback on a second one.

Run it in one process (embedded mode: a SQLite file in the working directory, the worker a thread of
this program, no services):

    python examples/human_in_the_loop.py

Or with Postgres and Redis, worker and client as separate processes (in examples/, both terminals
with the same DATABASE_URL and REDIS_URL, after `durable-agents db upgrade`):

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        durable-agents worker human_in_the_loop:app
    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        python human_in_the_loop.py

A person would answer from anywhere, for example with
`durable-agents raise-event INSTANCE_ID approval_received --data '{"approved": true}'`.
With OPENAI_API_KEY (or AZURE_OPENAI_ENDPOINT) set the agent is a real model; without, the bundled
test model answers with scripted echoes.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from durable_agents import AgentFunctionApp, DurableClient, DurableOrchestrationContext, chat_client_from_env

# -- worker: the agent and the orchestration --------------------------------------------------------

agent = chat_client_from_env().as_agent(
    name="WriterAgent",
    instructions="You write short, clear blog posts and revise them when given feedback.",
)

app = AgentFunctionApp(agents=[agent])


# fmt: off
@app.orchestration_trigger(context_name="context")
def hitl_orchestration(context: DurableOrchestrationContext):
    """Request human approval before proceeding."""

    writer = app.get_agent(context, "WriterAgent")

    # Step 1: Generate draft
    draft = yield writer.run("Write a blog post about AI")

    # Step 2: Wait for human approval
    approval_event = context.wait_for_external_event(
        "approval_received",
        timeout=timedelta(hours=24)
    )

    timeout_event = context.create_timer(
        context.current_utc_datetime + timedelta(hours=24)
    )

    winner = yield context.task_any([approval_event, timeout_event])

    if winner == approval_event:
        # Approved: publish
        approval_data = approval_event.result
        if approval_data.get("approved"):
            return {"status": "published", "content": draft.text}
        else:
            # Revise based on feedback
            revised = yield writer.run(
                f"Revise this based on feedback '{approval_data.get('feedback')}': {draft.text}"
            )
            return {"status": "revised", "content": revised.text}
    else:
        # Timeout: escalate
        return {"status": "escalated", "reason": "approval timeout"}
# fmt: on


# -- client ---------------------------------------------------------------------------------------


def wait_until_waiting_for_approval(client: DurableClient, instance_id: str, timeout: float = 300.0) -> str:
    """Poll the instance's history until it records the wait for the event (the wait's timeout timer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in client.get_history(instance_id):
            if event["type"] == "TimerCreated" and event["purpose"] == "event_timeout":
                return datetime.fromisoformat(event["fire_at"]).strftime("%Y-%m-%d %H:%M UTC")
        state = client.get_orchestration_state(instance_id)
        if state is not None and state.runtime_status.is_terminal:
            raise RuntimeError(f"{instance_id} ended before waiting for approval: {state.runtime_status}")
        time.sleep(0.1)
    raise TimeoutError(f"{instance_id} was not waiting for approval after {timeout:g}s")


def review(client: DurableClient, decision: dict[str, Any]) -> None:
    instance_id = client.schedule_new_orchestration(hitl_orchestration)
    print(f"Started hitl_orchestration: instance {instance_id}")
    deadline = wait_until_waiting_for_approval(client, instance_id)
    print(f"  The draft is written; waiting for approval_received (or escalation at {deadline})")
    client.raise_orchestration_event(instance_id, "approval_received", data=decision)
    print(f"  Raised approval_received: {decision}")
    state = client.wait_for_orchestration_completion(instance_id, timeout=300)
    result = state.output
    print(f"  Status: {state.runtime_status}, result: {result['status']}")
    print(f"  Content: {result['content']}")


def main() -> None:
    client = DurableClient(app)
    review(client, {"approved": True})
    review(client, {"approved": False, "feedback": "Add more technical details"})


if __name__ == "__main__":
    main()
