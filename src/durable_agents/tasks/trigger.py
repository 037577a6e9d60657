"""A named Celery task that starts an orchestration: workflows can be triggered from Flower or any Celery client."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .start import start_instance

if TYPE_CHECKING:
    from ..app import DurableApp

START_TASK = "durable_agents.start_orchestration"


def register_trigger_task(app: DurableApp) -> None:
    """Register `durable_agents.start_orchestration(name, input=None, instance_id=None) -> instance id`.

    It runs on the task hub's orchestrator queue (the app's default queue), so a worker of the hub
    starts the instance; its result, the instance id, goes to the result backend.
    """

    def start_orchestration(name: str, input: Any = None, instance_id: str | None = None) -> str:
        """Start orchestration `name` with JSON `input` (and `instance_id`, if given); returns the instance id."""
        return start_instance(
            app, name, input=input, instance_id=instance_id or None, start_at=None, reuse_id=False, check_name=True
        )

    app.task(name=START_TASK, shared=False, ignore_result=False)(start_orchestration)
