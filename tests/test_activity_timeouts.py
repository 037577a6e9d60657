"""Activity timeouts and heartbeats: an attempt past its timeout fails with ActivityTimeoutError and is
retried per policy, a silent heartbeat is caught long before the whole timeout, the slot comes back in
both pools, and a hung pool child fails the worker's healthcheck."""

from __future__ import annotations

import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from durable_agents import ActivityTimeoutError, OrchestrationStatus, Settings
from durable_agents.health import worker_health
from durable_agents.registry import Registry
from durable_agents.tasks.timeouts import Attempt, Watchdog

from conftest import Services, make_client, new_taskhub, run_cli, wait_until


def timed_call(activity: str, input: Any = None, attempts: int = 1) -> dict[str, Any]:
    return {"activity": activity, "input": input, "attempts": attempts}


def test_an_activity_past_its_timeout_fails_with_activity_timeout_error_and_is_retried(
    client: Any, tmp_path: Path
) -> None:
    # The shared worker runs the threads pool: the hung call is abandoned and its thread serves on.
    retried = client.schedule_new_orchestration(
        "timed_call", input=timed_call("hang_first_time", str(tmp_path / "a"), 2)
    )
    failed = client.schedule_new_orchestration("timed_call", input=timed_call("hang_first_time", str(tmp_path / "b")))

    state = client.wait_for_orchestration_completion(retried, timeout=30)  # the first attempt sleeps 60 s
    assert state.runtime_status == OrchestrationStatus.COMPLETED, state.failure_details
    state = client.wait_for_orchestration_completion(failed, timeout=30)
    assert state.runtime_status == OrchestrationStatus.FAILED
    assert state.failure_details.error_type == "ActivityTimeoutError"
    assert "start_to_close_timeout of 1s" in state.failure_details.message


def test_an_activity_that_stops_heartbeating_is_caught_before_its_whole_timeout(client: Any) -> None:
    instance_id = client.schedule_new_orchestration("timed_call", input=timed_call("stop_heartbeating"))
    # Its start_to_close_timeout is 60 s: within 30 only the missed heartbeat can have ended it.
    state = client.wait_for_orchestration_completion(instance_id, timeout=30)
    assert state.runtime_status == OrchestrationStatus.FAILED
    assert state.failure_details.error_type == "ActivityTimeoutError"
    assert "sent no heartbeat for 1s" in state.failure_details.message
    assert "{'step': 2}" in state.failure_details.message  # the last details it sent


def test_prefork_interrupts_a_timed_out_call_in_place_and_a_hung_child_fails_the_healthcheck(
    services: Services, start_worker: Any, tmp_path: Path
) -> None:
    hub = new_taskhub("hung")
    command = [
        sys.executable, "-m", "durable_agents", "worker", "workflows:app", "--pool", "prefork",
        "--concurrency", "1", "--loglevel", "INFO", "--hostname", f"hung-{uuid.uuid4().hex[:6]}@%h",
    ]  # fmt: skip
    # Heartbeats a little faster than the defaults (1 s, silent after 5 s), to spend less time waiting.
    beats = {"DURABLE_AGENTS_LEASE_HEARTBEAT_INTERVAL": "0.5", "DURABLE_AGENTS_LEASE_HOLDER_TIMEOUT": "2"}
    worker = start_worker(hub, command=command, extra_env=beats)
    client = make_client(services, hub)
    env = {"DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url, "TASKHUB": hub, **beats}

    # One child: the retry can run only if the timed-out call gave the child back.
    marker = tmp_path / "hang"
    instance_id = client.schedule_new_orchestration("timed_call", input=timed_call("hang_first_time", str(marker), 2))
    state = client.wait_for_orchestration_completion(instance_id, timeout=30)
    assert state.runtime_status == OrchestrationStatus.COMPLETED, state.failure_details
    assert state.output == int(marker.read_text())  # interrupted in place: the same child, not a new one
    settings = Settings(
        database_url=services.database_url, redis_url=services.redis_url, taskhub=hub, lease_heartbeat_interval=0.5,
        lease_holder_timeout=2,
    )  # fmt: skip
    assert worker_health(settings).healthy, worker_health(settings).message

    # The child stops for good while the worker's main process keeps heart-beating.
    frozen = tmp_path / "frozen"
    client.schedule_new_orchestration("timed_call", input=timed_call("freeze_process", str(frozen)))
    wait_until(frozen.exists, message="the child to freeze")
    pid = wait_until(lambda: frozen.read_text(), message="its pid")
    wait_until(lambda: not worker_health(settings).healthy, message="the healthcheck to fail")
    failing = run_cli("healthcheck", env=env)  # as a container's healthcheck runs it
    assert failing.returncode == 1
    assert f"worker process {pid} " in failing.stdout and "hung" in failing.stdout
    assert any(w.live for w in client.list_workers())  # what the registry alone still says
    worker.kill()  # the frozen child would hold up a warm shutdown


def test_a_call_that_swallows_its_interrupt_silences_the_process_until_it_returns() -> None:
    # In this process's main thread, as in a prefork child: the interrupt is a signal, which this call ignores.
    registry = Registry()
    registry.add_activity(lambda: None, "stubborn", start_to_close_timeout=0.2)
    hung: list[bool] = []
    watchdog = Watchdog(0.5, hung.append)
    released = threading.Event()

    def stubborn() -> str:
        give_up = time.monotonic() + 10  # a broken watchdog fails the test rather than hanging it
        while not released.is_set() and time.monotonic() < give_up:
            try:
                released.wait(0.05)
                if hung:  # taken for hung: now let it end
                    released.set()
            except BaseException:  # the interrupt, caught and dropped
                pass
        return "too late"

    with pytest.raises(ActivityTimeoutError, match="start_to_close_timeout of 0.2s"):
        watchdog.call(Attempt(registry.activity("stubborn")), stubborn)  # its late result is not taken
    assert hung == [True, False]  # silenced once its grace ran out, heard again once the call returned
