"""Waiting clients share one LISTEN connection per process, and outlive its loss."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import text

from durable_agents import OrchestrationStatus
from durable_agents.store.db import transaction
from durable_agents.store.listener import application_name

from conftest import Services, wait_until


def listening_backends(services: Services) -> list[int]:
    """The backends of this process's listening connections."""
    query = text("SELECT pid FROM pg_stat_activity WHERE application_name = :name AND query = 'LISTEN durable_agents'")
    with transaction(services.database_url) as session:
        return list(session.scalars(query, {"name": application_name()}))


def wait_in_threads(client: Any, instance_ids: list[str]) -> tuple[list[threading.Thread], dict[str, Any]]:
    states: dict[str, Any] = {}

    def wait(instance_id: str) -> None:
        states[instance_id] = client.wait_for_orchestration_completion(instance_id, timeout=60)

    threads = [threading.Thread(target=wait, args=(instance_id,)) for instance_id in instance_ids]
    for thread in threads:
        thread.start()
    return threads, states


def approve(client: Any, instance_ids: list[str], threads: list[threading.Thread], states: dict[str, Any]) -> None:
    for instance_id in instance_ids:
        client.raise_orchestration_event(instance_id, "approval_received", data=instance_id)
    for thread in threads:
        thread.join(60)
    for instance_id in instance_ids:
        assert states[instance_id].runtime_status == OrchestrationStatus.COMPLETED
        assert states[instance_id].output == {"status": "approved", "data": instance_id}


def test_concurrent_waits_share_one_listening_connection(client: Any, services: Services) -> None:
    ids = [client.schedule_new_orchestration("approval", input={"timeout_seconds": 120}) for _ in range(5)]
    for instance_id in ids:
        client.wait_for_orchestration_start(instance_id, timeout=30)
    threads, states = wait_in_threads(client, ids)
    wait_until(lambda: len(listening_backends(services)) >= 1, message="a listening connection")

    assert len(listening_backends(services)) == 1  # five waiting threads, one connection
    approve(client, ids, threads, states)
    assert len(listening_backends(services)) == 1  # kept for the next waits


def test_waits_outlive_the_loss_of_the_listening_connection(client: Any, services: Services) -> None:
    ids = [client.schedule_new_orchestration("approval", input={"timeout_seconds": 120}) for _ in range(2)]
    threads, states = wait_in_threads(client, ids)
    wait_until(lambda: len(listening_backends(services)) == 1, message="a listening connection")
    (lost,) = listening_backends(services)
    with transaction(services.database_url) as session:
        session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": lost})

    approve(client, ids, threads, states)
    wait_until(lambda: listening_backends(services) not in ([], [lost]), message="a new listening connection")
