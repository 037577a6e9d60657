"""Deploying changed orchestration code while instances are in flight is detected, not silently replayed."""

from __future__ import annotations

from typing import Any

from durable_agents import OrchestrationStatus

from conftest import Services, make_client, new_taskhub, wait_until


def test_changed_code_fails_the_instance_with_a_clear_nondeterminism_error(
    services: Services, start_worker: Any
) -> None:
    hub = new_taskhub("deploy")
    old_code = start_worker(hub)
    client = make_client(services, hub)
    instance_id = client.schedule_new_orchestration("deploy_sensitive")
    wait_until(
        lambda: any(e["type"] == "TaskCompleted" for e in client.get_history(instance_id)), message="step one done"
    )
    old_code.stop()
    start_worker(hub, extra_env={"DA_TEST_CODE_VERSION": "2"})
    client.raise_event(instance_id, "continue")

    state = client.wait_for_orchestration_completion(instance_id, timeout=30)
    assert state.runtime_status == OrchestrationStatus.FAILED
    assert state.failure_details is not None
    assert state.failure_details.error_type == "NonDeterminismError"
    message = state.failure_details.message
    assert "call_activity('add_one')" in message and "call_activity('square')" in message
    assert "task #1" in message
