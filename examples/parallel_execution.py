"""Parallel execution: an orchestration asks three experts about one topic at once and combines the
answers (fan-out, fan-in).

Run it in one process (embedded mode: a SQLite file in the working directory, the worker a thread of
this program, no services):

    python examples/parallel_execution.py

Or with Postgres and Redis, worker and client as separate processes (in examples/, both terminals
with the same DATABASE_URL and REDIS_URL, after `durable-agents db upgrade`):

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        durable-agents worker parallel_execution:app
    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        python parallel_execution.py

With OPENAI_API_KEY (or AZURE_OPENAI_ENDPOINT) set the agents are a real model; without, the bundled
test model answers with scripted echoes.
"""

from __future__ import annotations

from durable_agents import AgentFunctionApp, DurableClient, DurableOrchestrationContext, chat_client_from_env

# -- worker: three experts and the orchestration --------------------------------------------------

client = chat_client_from_env()

physicist = client.as_agent(name="Physicist", instructions="You are a physicist expert. Answer physics questions.")
chemist = client.as_agent(name="Chemist", instructions="You are a chemistry expert. Answer chemistry questions.")
mathematician = client.as_agent(name="Mathematician", instructions="You are a mathematician. Answer maths questions.")

app = AgentFunctionApp(agents=[physicist, chemist, mathematician])


# fmt: off
@app.orchestration_trigger(context_name="context")
def parallel_orchestration(context: DurableOrchestrationContext):
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
    combined = "\n\n".join([
        f"Physics: {results[0].text}",
        f"Chemistry: {results[1].text}",
        f"Mathematics: {results[2].text}"
    ])

    return combined
# fmt: on


# -- client ---------------------------------------------------------------------------------------


def main() -> None:
    durable_client = DurableClient(app)
    instance_id = durable_client.schedule_new_orchestration(parallel_orchestration, input="entropy")
    print(f"Started parallel_orchestration on 'entropy': instance {instance_id}")
    state = durable_client.wait_for_orchestration_completion(instance_id, timeout=300)
    print(f"Status: {state.runtime_status}")
    print(state.output)


if __name__ == "__main__":
    main()
