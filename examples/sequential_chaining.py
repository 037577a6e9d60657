"""Sequential chaining: an orchestration runs the WriterAgent twice in one session, the second pass
refining the first.

Run it in one process (embedded mode: a SQLite file in the working directory, the worker a thread of
this program, no services):

    python examples/sequential_chaining.py

Or with Postgres and Redis, worker and client as separate processes (in examples/, both terminals
with the same DATABASE_URL and REDIS_URL, after `durable-agents db upgrade`):

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        durable-agents worker sequential_chaining:app
    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        python sequential_chaining.py

With OPENAI_API_KEY (or AZURE_OPENAI_ENDPOINT) set the agent is a real model; without, the bundled
test model answers with scripted echoes.
"""

from __future__ import annotations

from durable_agents import AgentFunctionApp, DurableClient, DurableOrchestrationContext, chat_client_from_env

# -- worker: the agent and the orchestration --------------------------------------------------------

WRITER_AGENT_NAME = "WriterAgent"

agent = chat_client_from_env().as_agent(
    name=WRITER_AGENT_NAME,
    instructions="""You refine text. Given an initial sentence you enhance it;
    given an improved sentence you polish it further.""",
)

app = AgentFunctionApp(agents=[agent])


# fmt: off
@app.orchestration_trigger(context_name="context")
def writer_orchestration(context: DurableOrchestrationContext):
    """Sequential refinement with shared conversation."""
    writer = app.get_agent(context, WRITER_AGENT_NAME)
    session = writer.create_session()

    # First pass
    initial = yield writer.run(
        messages="Write a sentence about learning.",
        session=session
    )

    # Second pass with context
    refined = yield writer.run(
        messages=f"Improve this: {initial.text}",
        session=session
    )

    return refined.text
# fmt: on


# -- client ---------------------------------------------------------------------------------------


def main() -> None:
    client = DurableClient(app)
    instance_id = client.schedule_new_orchestration(writer_orchestration)
    print(f"Started writer_orchestration: instance {instance_id}")
    state = client.wait_for_orchestration_completion(instance_id, timeout=300)
    print(f"Status: {state.runtime_status}")
    print(f"Refined text: {state.output}")


if __name__ == "__main__":
    main()
