"""Quick start: an orchestration of three activities, run by a real worker process.

durable-agents db upgrade
python examples/quickstart.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from durable_agents import DurableApp, DurableClient, OrchestrationContext

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


def main() -> None:
    # The worker normally runs on its own: `durable-agents worker quickstart:app` (or `celery -A quickstart worker`).
    worker = subprocess.Popen(
        [sys.executable, "-m", "durable_agents", "worker", "quickstart:app", "--pool", "threads", "-c", "4"],
        cwd=Path(__file__).parent,
    )
    try:
        client = DurableClient(app)
        instance_id = client.schedule_new_orchestration(hello_cities)
        state = client.wait_for_orchestration_completion(instance_id, timeout=60)
        print(f"{instance_id}: {state.runtime_status} {state.output}")
    finally:
        worker.terminate()
        worker.wait()


if __name__ == "__main__":
    main()
