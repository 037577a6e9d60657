"""Recovery in seconds, not leases: a dead worker's leases are freed by its heartbeat, a stopping worker
hands back what it will not finish, the sweeper never floods the queues, prefork workers boot cleanly,
and a worker that cannot start says so in its exit status."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import update

from durable_agents import OrchestrationStatus
from durable_agents.models import InboxRow, WorkItem
from durable_agents.store.db import transaction
from durable_agents.tasks.sweeper import sweep_once

from conftest import TESTS_DIR, Services, WorkerProcess, make_client, new_taskhub, python_path, wait_until

#: The default lease: recovery must not wait for it.
DEFAULT_LEASE = 60.0


def runs_of(effects_dir: Path, label: str) -> list[str]:
    runs = effects_dir / f"runs-{label}"
    return runs.read_text().split() if runs.exists() else []


def started_on(workers: list[WorkerProcess], pid: str) -> WorkerProcess:
    return next(w for w in workers if w.process is not None and str(w.process.pid) == pid)


def test_sigkill_with_the_default_lease_another_worker_finishes_within_seconds(
    services: Services, effects_dir: Path, start_worker: Any
) -> None:
    hub = new_taskhub("dead")
    workers = [start_worker(hub, lease_seconds=DEFAULT_LEASE) for _ in range(2)]
    client = make_client(services, hub)
    label = uuid.uuid4().hex
    instance_id = client.schedule_new_orchestration("crash_target", input=label)
    wait_until(lambda: len(runs_of(effects_dir, label)) == 1, message="the activity to start")

    started_on(workers, runs_of(effects_dir, label)[0]).kill()  # SIGKILL inside the user's function
    killed_at = time.monotonic()
    (effects_dir / f"gate-{label}").touch()
    state = client.wait_for_orchestration_completion(instance_id, timeout=30)
    recovered_in = time.monotonic() - killed_at
    assert state.runtime_status == OrchestrationStatus.COMPLETED
    assert recovered_in < 10, f"took {recovered_in:.1f}s with a {DEFAULT_LEASE:g}s lease"
    first, second = runs_of(effects_dir, label)
    assert first != second  # the survivor ran it
    assert (effects_dir / f"effects-{label}").read_text().splitlines() == [state.output]  # one effect


def test_sigterm_hands_the_lease_back_after_the_grace_period(
    services: Services, effects_dir: Path, start_worker: Any
) -> None:
    hub = new_taskhub("handback")
    grace = {"DURABLE_AGENTS_SHUTDOWN_GRACE_SECONDS": "1"}
    workers = [start_worker(hub, lease_seconds=DEFAULT_LEASE, extra_env=grace) for _ in range(2)]
    client = make_client(services, hub)
    label = uuid.uuid4().hex
    instance_id = client.schedule_new_orchestration("crash_target", input=label)
    wait_until(lambda: len(runs_of(effects_dir, label)) == 1, message="the activity to start")

    stopping = started_on(workers, runs_of(effects_dir, label)[0])
    assert stopping.process is not None
    os.killpg(stopping.process.pid, signal.SIGTERM)  # a warm shutdown: the activity is still running
    stopped_at = time.monotonic()
    wait_until(lambda: len(runs_of(effects_dir, label)) == 2, timeout=15, message="another worker to start it")
    assert time.monotonic() - stopped_at < 8  # the grace period and a sweep, not the 60 s lease
    assert stopping.process.poll() is None  # the stopping worker still waits for its own run
    (effects_dir / f"gate-{label}").touch()
    state = client.wait_for_orchestration_completion(instance_id, timeout=30)
    assert state.runtime_status == OrchestrationStatus.COMPLETED
    assert (effects_dir / f"effects-{label}").read_text().splitlines() == [state.output]  # one effect


def test_the_sweeper_wakes_each_waiting_instance_and_lost_item_once_per_interval(services: Services) -> None:
    client = make_client(services, new_taskhub("flood"))  # no worker: nothing consumes the queues
    broker = redis.Redis.from_url(services.redis_url)
    steps, activities = client.settings.queue("orchestrator"), client.settings.queue("activities")
    waiting = [client.schedule_new_orchestration("long_waiter") for _ in range(5)]
    started = client.schedule_new_orchestration("sequence")
    from durable_agents.tasks.step import run_one_step

    run_one_step(client.app, client.taskhub, started)  # its first activity's work item
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    with transaction(client.settings.database_url) as session:  # every wake-up and message was lost long ago
        session.execute(update(InboxRow).where(InboxRow.taskhub == client.taskhub).values(created_at=an_hour_ago))
        session.execute(
            update(WorkItem)
            .where(WorkItem.taskhub == client.taskhub)
            .values(status="running", lease_owner="gone:1:x:1", lease_expires_at=an_hour_ago, dispatched_at=an_hour_ago)
        )
    broker.delete(steps, activities)
    for _ in range(3):  # three sweeps within one redispatch interval
        sweep_once(client.app)
    assert broker.llen(steps) == len(waiting)  # one wake-up each, not one per sweep
    assert broker.llen(activities) == 1


def test_prefork_workers_boot_with_every_child_serving(
    services: Services, effects_dir: Path, start_worker: Any
) -> None:
    hub = new_taskhub("boot")
    client = make_client(services, hub)
    for _ in range(3):
        command = [
            sys.executable, "-m", "durable_agents", "worker", "workflows:app", "--pool", "prefork",
            "--concurrency", "2", "--loglevel", "INFO", "--hostname", f"boot-{uuid.uuid4().hex[:6]}@%h",
        ]  # fmt: skip
        worker = start_worker(hub, command=command, extra_env={"DURABLE_AGENTS_SWEEP_INTERVAL": "0.01"})
        labels = [uuid.uuid4().hex for _ in range(2)]
        started = [client.schedule_new_orchestration("crash_target", input=label) for label in labels]
        # Both children take one blocking activity each: a child hung at start-up would leave one waiting.
        wait_until(lambda ls=labels: all(runs_of(effects_dir, label) for label in ls), message="both children to serve")
        assert len({runs_of(effects_dir, label)[0] for label in labels}) == 2
        for label in labels:
            (effects_dir / f"gate-{label}").touch()
        for instance_id in started:
            assert client.wait_for_orchestration_completion(instance_id, timeout=30).output
        worker.stop()


def test_a_worker_that_cannot_start_exits_non_zero(services: Services, tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text(
        "from celery import bootsteps\n"
        "from durable_agents import DurableApp\n"
        "app = DurableApp('broken')\n"
        "class Fails(bootsteps.StartStopStep):\n"
        "    def start(self, worker):\n"
        "        raise RuntimeError('this step cannot start')\n"
        "app.steps['worker'].add(Fails)\n"
    )
    env = {
        **os.environ,
        "DATABASE_URL": services.database_url,
        "REDIS_URL": services.redis_url,
        "TASKHUB": new_taskhub("broken"),
        "PYTHONPATH": python_path(str(tmp_path), str(TESTS_DIR)),
    }
    result = subprocess.run(
        [sys.executable, "-m", "durable_agents", "worker", "broken:app", "--pool", "solo"],
        env=env,
        cwd=TESTS_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0, result.stdout + result.stderr
    assert "this step cannot start" in result.stdout + result.stderr


def test_a_worker_waits_for_redis_one_line_an_attempt_and_starts_once_it_answers(
    services: Services, tmp_path: Path
) -> None:
    from durable_agents.testing.server import bind_socket

    free = bind_socket("127.0.0.1", 0)
    port = free.getsockname()[1]
    free.close()
    env = {
        **os.environ,
        "DATABASE_URL": services.database_url,
        "REDIS_URL": f"redis://:s3cret-pass@127.0.0.1:{port}/0",
        "TASKHUB": new_taskhub("noredis"),
        "PYTHONPATH": python_path(str(TESTS_DIR)),
    }
    log = tmp_path / "worker.log"
    command = [sys.executable, "-m", "durable_agents", "worker", "workflows:app", "--pool", "threads"]
    with log.open("wb") as output:
        worker = subprocess.Popen(command, env=env, cwd=TESTS_DIR, stdout=output, stderr=subprocess.STDOUT,
                                  start_new_session=True)  # fmt: skip
    redis_server = None
    try:
        waiting = f"waiting for the broker at redis://:***@127.0.0.1:{port}/0"
        wait_until(lambda: log.read_text().count(waiting) >= 2, message="two attempts, a line each")
        assert "s3cret-pass" not in log.read_text() and "Traceback" not in log.read_text()
        assert worker.poll() is None  # it waits; it does not exit
        redis_server = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--requirepass", "s3cret-pass"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(lambda: " ready." in log.read_text(), message="the worker to start once Redis answers")
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
        if redis_server is not None:
            redis_server.terminate()
            redis_server.wait(timeout=10)
