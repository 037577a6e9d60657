"""A long-running tool: the Researcher agent calls `compile_report`, a durable tool that takes a few
seconds. The tool runs as an activity, so while it runs the agent's turn is checkpointed and holds no
worker slot, and a worker crash would resume the turn after the last finished call.

Run it in one process (embedded mode: a SQLite file in the working directory, the worker a thread of
this program, no services):

    python examples/long_running_tool.py

Or with Postgres and Redis, worker and client as separate processes (in examples/, both terminals
with the same DATABASE_URL and REDIS_URL, after `durable-agents db upgrade`):

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        durable-agents worker long_running_tool:app
    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        python long_running_tool.py

With OPENAI_API_KEY (or AZURE_OPENAI_ENDPOINT) set the agent is a real model, which decides to call
the tool itself; without, the bundled test model is told below to call it.
"""

from __future__ import annotations

import asyncio
import time

from durable_agents import DurableAgentClient, DurableApp, DurableClient, chat_client_from_env
from durable_agents.agents.environment import is_offline, offline_model_server
from durable_agents.ids import agent_turn_instance_id

#: How long the tool works; hours would do as well (its activity holds a renewed lease, not a slot).
REPORT_SECONDS = 3.0

# -- worker: the durable tool and the agent that uses it -----------------------------------------

chat = chat_client_from_env()
app = DurableApp()


@app.durable_tool
def compile_report(topic: str) -> str:
    """Research a topic and compile a report on it (slow: reads many sources)."""
    time.sleep(REPORT_SECONDS)  # stands in for the real, slow work
    return f"Report on {topic}: 3 sources read, 12 findings, 2 open questions."


app.add_agent(
    chat.as_agent(
        name="Researcher",
        instructions="You answer research requests. Use compile_report for anything that needs a report.",
        tools=[compile_report],
    )
)

if is_offline(chat):
    # What a real model would do: call the tool for the user's request.
    offline_model_server().control.add_rule(
        match={"tool_offered": "compile_report", "last_message_role": "user"},
        reply={"tool_calls": [{"name": "compile_report", "arguments": {"topic": "durable execution"}}]},
    )


# -- client ---------------------------------------------------------------------------------------


def wait_for_tool_call(client: DurableClient, instance_id: str, timeout: float = 300.0) -> str:
    """Poll the turn's history until it records the tool call it now waits for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get_orchestration_state(instance_id)
        if state is not None:
            for event in client.get_history(instance_id):
                if event["type"] == "TaskScheduled" and event["name"].startswith("tool."):
                    return str(event["name"])
        time.sleep(0.1)
    raise TimeoutError(f"the turn {instance_id} called no tool within {timeout:g}s")


async def main() -> None:
    client = DurableClient(app)
    researcher = DurableAgentClient(client).get_agent("Researcher")

    correlation_id = await researcher.run("Write a report on durable execution", wait_for_response=False)
    turn = agent_turn_instance_id(correlation_id)
    print(f"Asked the Researcher for a report: turn instance {turn}")

    activity = await asyncio.to_thread(wait_for_tool_call, client, turn)
    print(f"  Checkpointed: the turn waits for the durable tool (activity {activity})")

    response = await asyncio.to_thread(researcher.wait, correlation_id)
    for message in response.messages:
        for call in message.get("tool_calls") or []:
            print(f"  Tool call: {call['function']['name']}({call['function']['arguments']})")
        if message["role"] == "tool":
            print(f"  Tool result: {message['content']}")
    steps = [event["name"] for event in client.get_history(turn) if event["type"] == "TaskScheduled"]
    print(f"  Checkpointed steps of the turn: {', '.join(steps)}")
    print(f"Researcher: {response.text}")


if __name__ == "__main__":
    asyncio.run(main())
