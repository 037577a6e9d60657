"""Waiting clients share one LISTEN connection per process, and outlive its loss."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from sqlalchemy import text

from durable_agents import OrchestrationStatus
from durable_agents.async_waits import in_io_thread, wait_for_state
from durable_agents.state import TERMINAL
from durable_agents.store.db import transaction
from durable_agents.store.inbox import notify_payload, send_notification
from durable_agents.store.listener import application_name, async_instance_changes, instance_changes

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


def test_an_async_wait_learns_the_status_a_change_left_and_reads_only_when_it_may_be_done(
    client: Any, services: Services
) -> None:
    instance_id = client.schedule_new_orchestration("approval", input={"timeout_seconds": 120})
    client.wait_for_orchestration_start(instance_id, timeout=30)
    reads: list[str] = []
    reading = client.get_orchestration_state

    def counted(asked: str) -> Any:
        reads.append(asked)
        return reading(asked)

    async def main() -> tuple[list[str | None], Any]:
        told: list[str | None] = []
        async with async_instance_changes(services.database_url, client.taskhub, instance_id) as changed:
            with transaction(services.database_url) as session:  # a change that tells no status
                send_notification(session, notify_payload(client.taskhub, instance_id))
            told.append(await changed(30))
            # Two that do, before the waiter wakes: the listener's thread hands both to the loop before it
            # reaches a third notification, for another instance, that this (blocked) loop waits for.
            with instance_changes(services.database_url, client.taskhub, "sentinel") as sentinel:
                with transaction(services.database_url) as session:
                    send_notification(session, notify_payload(client.taskhub, instance_id, "RUNNING"))
                    send_notification(session, notify_payload(client.taskhub, instance_id, "SUSPENDED"))
                    send_notification(session, notify_payload(client.taskhub, "sentinel"))
                sentinel(30)
            told.append(await changed(30))
            # Told "RUNNING", the wait reads nothing; only then is the instance let finish.
            with transaction(services.database_url) as session:
                send_notification(session, notify_payload(client.taskhub, instance_id, "RUNNING"))

            async def let_finish_once_told_running(remaining: float) -> str | None:
                status = await changed(remaining)
                told.append(status)
                if status == "RUNNING":
                    await in_io_thread(client.raise_orchestration_event, instance_id, "approval_received", data=1)
                return status

            client.get_orchestration_state = counted  # the wait reads through the client
            done = await wait_for_state(
                client, instance_id, lambda s: s.runtime_status.is_terminal, 30, "finish",
                changes=let_finish_once_told_running, done_status=lambda status: status in TERMINAL,
            )  # fmt: skip
        return told, done

    try:
        told, done = asyncio.run(main())
    finally:
        client.get_orchestration_state = reading
    assert told == [None, "SUSPENDED", "RUNNING", "COMPLETED"]  # the newest status told since the last wake-up
    assert done.runtime_status == OrchestrationStatus.COMPLETED
    assert reads == [instance_id]  # read once, after the change that could be the end
