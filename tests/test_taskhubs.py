"""Task hubs isolate: a client of hub `b` can neither see nor touch hub `a`'s instances."""

from __future__ import annotations

from typing import Any

import pytest

from durable_agents import InstanceNotFoundError, OrchestrationStatus

from conftest import Services, make_client, new_taskhub


def test_instances_of_one_hub_are_invisible_to_another(services: Services, client: Any) -> None:
    instance_id = client.schedule_new_orchestration("long_waiter", instance_id=f"shared-{new_taskhub('')}")
    client.wait_for_orchestration_start(instance_id)
    other = make_client(services, new_taskhub("b"))

    assert other.get_orchestration_state(instance_id) is None
    assert instance_id not in {s.instance_id for s in other.query_instances(limit=1000)}
    for touch in (
        lambda: other.get_history(instance_id),
        lambda: other.raise_event(instance_id, "never", data=1),
        lambda: other.terminate(instance_id),
        lambda: other.suspend(instance_id),
        lambda: other.purge(instance_id),
    ):
        with pytest.raises(InstanceNotFoundError, match="task hub"):
            touch()

    # The same id may exist in both hubs, independently.
    other.schedule_new_orchestration("long_waiter", instance_id=instance_id)
    assert other.get_orchestration_state(instance_id).runtime_status == OrchestrationStatus.PENDING
    assert client.get_orchestration_state(instance_id).runtime_status == OrchestrationStatus.RUNNING
    assert other.settings.queue("activities") != client.settings.queue("activities")
    client.terminate(instance_id)
    assert client.wait_for_orchestration_completion(instance_id).runtime_status == OrchestrationStatus.TERMINATED
    assert other.get_orchestration_state(instance_id).runtime_status == OrchestrationStatus.PENDING
