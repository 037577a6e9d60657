"""A named Celery task that starts an orchestration: workflows can be triggered from Flower or any Celery client."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..app import DurableApp
    from ..client import DurableClient

START_TASK = "durable_agents.start_orchestration"


def register_trigger_task(app: DurableApp) -> None:
    """Register `durable_agents.start_orchestration(name, input=None, instance_id=None) -> instance id`.

    It runs on the task hub's orchestrator queue (the app's default queue), so a worker of the hub
    starts the instance; its result, the instance id, goes to the result backend.
    """
    clients: list[DurableClient] = []
    lock = threading.Lock()

    def client() -> DurableClient:
        with lock:
            if not clients:
                from ..client import DurableClient

                clients.append(DurableClient(app))
            return clients[0]

    def start_orchestration(name: str, input: Any = None, instance_id: str | None = None) -> str:
        """Start orchestration `name` with JSON `input` (and `instance_id`, if given); returns the instance id."""
        return client().schedule_new_orchestration(name, input=input, instance_id=instance_id or None)

    app.task(name=START_TASK, shared=False, ignore_result=False)(start_orchestration)
