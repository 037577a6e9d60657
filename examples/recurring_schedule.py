"""A recurring schedule: the engine starts an orchestration every second (a cron expression works the same
way), then the schedule is paused and run once by hand. No Celery beat: the workers' sweepers fire it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from durable_agents import DurableApp, DurableClient, OrchestrationContext

app = DurableApp()


@app.activity
def send_digest(team: str) -> str:
    return f"digest sent to {team}"


@app.orchestration
def digest(context: OrchestrationContext) -> Any:
    return (yield context.call_activity(send_digest, input=context.get_input()))


if __name__ == "__main__":
    client = DurableClient(app)
    if client.get_schedule("team-digest") is not None:  # left by an earlier run of this example
        client.delete_schedule("team-digest")
    # In production: cron="0 9 * * MON-FRI", timezone="Europe/Oslo".
    schedule = client.create_schedule("team-digest", digest, input="platform", every=timedelta(seconds=1))
    print(f"Schedule {schedule.schedule_id}: {schedule.description}, overlap {schedule.overlap}")
    for _ in range(2):
        run = client.wait_for_orchestration_completion(schedule.run_id(), timeout=30, missing_ok=True)
        print(f"Run at its fire time: {run.runtime_status} {run.output}")
        schedule = client.get_schedule("team-digest")  # type: ignore[assignment]
    client.pause_schedule("team-digest")
    by_hand = client.trigger_schedule("team-digest")  # runs even while paused
    run = client.wait_for_orchestration_completion(by_hand or "", timeout=30)
    print(f"Run by hand while paused: {run.runtime_status} {run.output}")
    client.delete_schedule("team-digest")
