"""The command line against the session's worker: start, status, raise-event, list, history, errors."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from conftest import Services, run_cli


def cli(services: Services, taskhub: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url, "TASKHUB": taskhub}
    return run_cli(*args, env=env)


def test_start_raise_event_and_inspect(services: Services, client: Any) -> None:
    started = cli(services, client.taskhub, "start", "approval", "--input", '{"timeout_seconds": 3600}')
    assert started.returncode == 0, started.stderr
    instance_id = started.stdout.strip()
    client.wait_for_orchestration_start(instance_id)

    raised = cli(
        services, client.taskhub, "raise-event", instance_id, "approval_received", "--data", '{"approved": true}'
    )
    assert raised.returncode == 0, raised.stderr
    client.wait_for_orchestration_completion(instance_id)

    status = cli(services, client.taskhub, "status", instance_id, "--json")
    assert status.returncode == 0, status.stderr
    state = json.loads(status.stdout)
    assert state["runtime_status"] == "COMPLETED"
    assert state["output"] == {"status": "approved", "data": {"approved": True}}

    listed = json.loads(cli(services, client.taskhub, "list", "--json", "--name", "approval").stdout)
    assert instance_id in {s["instance_id"] for s in listed}

    history = cli(services, client.taskhub, "history", instance_id)
    assert history.returncode == 0
    for event_type in ("ExecutionStarted", "TimerCreated", "EventRaised", "ExecutionCompleted"):
        assert event_type in history.stdout


def test_errors_are_one_clear_line_and_non_zero(services: Services, client: Any) -> None:
    bad_json = cli(services, client.taskhub, "start", "approval", "--input", "{not json")
    assert bad_json.returncode == 1
    assert bad_json.stderr.strip().startswith("error: --input is not valid JSON")
    assert len(bad_json.stderr.strip().splitlines()) == 1

    missing = cli(services, client.taskhub, "raise-event", "ghost", "approval_received")
    assert missing.returncode == 1
    assert "no orchestration instance 'ghost'" in missing.stderr
    assert "Traceback" not in missing.stderr
