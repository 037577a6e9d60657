"""Quick start: an orchestration that calls an activity for three cities in turn.

Run it in one process (embedded mode: a SQLite file in the working directory, the worker a thread of
this program, no services):

    python examples/quickstart.py

Or with Postgres and Redis, worker and client as separate processes (in examples/, both terminals
with the same DATABASE_URL and REDIS_URL, after `durable-agents db upgrade`):

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        durable-agents worker quickstart:app          # or: celery -A quickstart worker
    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        python quickstart.py
"""

from __future__ import annotations

from durable_agents import DurableApp, DurableClient, OrchestrationContext

# -- worker: the activity and the orchestration ---------------------------------------------------

app = DurableApp()


@app.activity
def say_hello(city: str) -> str:
    return f"Hello, {city}!"


@app.orchestration
def hello_cities(context: OrchestrationContext):  # type: ignore[no-untyped-def]
    greetings = []
    for city in ["Tokyo", "Seattle", "London"]:
        greetings.append((yield context.call_activity(say_hello, input=city)))
    return greetings


# -- client ---------------------------------------------------------------------------------------


def main() -> None:
    client = DurableClient(app)
    instance_id = client.schedule_new_orchestration(hello_cities)
    state = client.wait_for_orchestration_completion(instance_id, timeout=60)
    print(f"{instance_id}: {state.runtime_status} {state.output}")


if __name__ == "__main__":
    main()
