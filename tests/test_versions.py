"""Surviving deploys: versions, patches, replay before a deploy, on real workers (tests/versioned_app.py)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from durable_agents import DurableClient, InvalidInstanceStateError, OrchestrationStatus

from conftest import Services, new_taskhub, run_cli, wait_until


def _client(services: Services, hub: str) -> DurableClient:
    return DurableClient(taskhub=hub, database_url=services.database_url, redis_url=services.redis_url)


def _worker(start_worker: Any, hub: str, version: str, **env: str) -> Any:
    return start_worker(hub, module="versioned_app:app", extra_env={"DA_TEST_APP_VERSION": version, **env})


def _waiting(client: DurableClient, count: int) -> None:
    def all_waiting() -> bool:
        states = client.query_instances(name="deploy_flow", limit=count + 10)
        return sum(state.custom_status == "waiting" for state in states) >= count

    wait_until(all_waiting, timeout=60, message=f"{count} instances waiting for 'go'")


def _types(client: DurableClient, instance_id: str) -> list[str]:
    return [event["type"] for event in client.get_history(instance_id)]


def test_fifty_waiting_instances_survive_a_deploy_each_on_the_branch_its_history_calls_for(
    services: Services, start_worker: Any
) -> None:
    hub = new_taskhub("ver")
    old_code = _worker(start_worker, hub, "1")
    client = _client(services, hub)
    old = [client.schedule_new_orchestration("deploy_flow", version="1") for _ in range(50)]
    _waiting(client, 50)
    old_code.stop()

    _worker(start_worker, hub, "2")
    new = [client.schedule_new_orchestration("deploy_flow", version="2") for _ in range(3)]
    parent = client.schedule_new_orchestration("parent_flow", version="2")
    for instance_id in old + new:
        client.raise_event(instance_id, "go")

    for instance_id in old:
        state = client.wait_for_orchestration_completion(instance_id, timeout=60)
        assert state.runtime_status == OrchestrationStatus.COMPLETED, state.failure_details
        assert state.output == {"before": "step_a", "after": "v1", "version": "1"}
        assert state.version == "1"
        assert "PatchMarker" not in _types(client, instance_id)
    for instance_id in new:
        state = client.wait_for_orchestration_completion(instance_id, timeout=60)
        assert state.output == {"before": "step_b", "after": "v2", "version": "2"}
        markers = [e for e in client.get_history(instance_id) if e["type"] == "PatchMarker"]
        assert [marker["change_id"] for marker in markers] == ["use-step-b"]
    # A sub-orchestration has its parent's version.
    assert client.wait_for_orchestration_completion(parent).output == {"parent": "2", "child": "2"}
    workers = client.list_workers()
    assert [(w.code_version, w.version_match) for w in workers] == [("2", "none")]


def test_an_unpatched_change_is_caught_by_replay_and_under_strict_versioning_old_instances_wait(
    services: Services, start_worker: Any
) -> None:
    hub = new_taskhub("ver")
    strict = {"DA_TEST_VERSION_MATCH": "strict", "DA_TEST_ON_MISMATCH": "reject"}
    old_code = _worker(start_worker, hub, "1", **strict)
    client = _client(services, hub)
    old = [client.schedule_new_orchestration("deploy_flow", version="1") for _ in range(5)]
    _waiting(client, 5)
    old_code.stop()

    env = {"DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url, "TASKHUB": hub}
    caught = run_cli("replay", "versioned_app:app", env={**env, "DA_TEST_APP_VERSION": "3"})
    assert caught.returncode == 1, caught.stdout + caught.stderr
    for instance_id in old:
        assert f"{instance_id} (deploy_flow): diverges at task #1" in caught.stdout
    assert "history recorded call_activity('step_a'), the code now does call_activity('step_c')" in caught.stdout
    assert "versioned_app.py:" in caught.stdout  # where the code was
    assert "0 compatible, 5 diverged" in caught.stdout

    # Deployed anyway, as version 3 under strict versioning: the old instances wait for a worker of version 1.
    new_code = _worker(start_worker, hub, "3", **strict)
    for instance_id in old:
        client.raise_event(instance_id, "go")
    wait_until(
        lambda: all(f"left the step of {i} (version 1)" in new_code.log_path.read_text() for i in old),
        message="the version 3 worker to leave every old step",
    )
    assert {client.get_orchestration_state(i).runtime_status for i in old} == {OrchestrationStatus.RUNNING}
    explanation = client.explain(old[0])
    assert "version '1'" in explanation.message, explanation.message
    fresh = client.schedule_new_orchestration("deploy_flow", version="3")
    client.raise_event(fresh, "go")
    assert client.wait_for_orchestration_completion(fresh, timeout=30).output["before"] == "step_c"

    _worker(start_worker, hub, "1", **strict)
    for instance_id in old:
        state = client.wait_for_orchestration_completion(instance_id, timeout=60)
        assert state.output == {"before": "step_a", "after": "v1", "version": "1"}


def test_under_fail_a_mismatched_instance_fails_naming_both_versions(services: Services, start_worker: Any) -> None:
    hub = new_taskhub("ver")
    _worker(start_worker, hub, "3", DA_TEST_VERSION_MATCH="current_or_older", DA_TEST_ON_MISMATCH="fail")
    client = _client(services, hub)
    older = client.schedule_new_orchestration("child_flow", version="2.9")
    newer = client.schedule_new_orchestration("child_flow", version="3.1")
    assert client.wait_for_orchestration_completion(older).output == "2.9"
    state = client.wait_for_orchestration_completion(newer)
    assert state.runtime_status == OrchestrationStatus.FAILED
    assert state.failure_details is not None and state.failure_details.error_type == "VersionMismatchError"
    assert "'3.1'" in state.failure_details.message and "'3'" in state.failure_details.message


def _runs(effects_dir: Path, kind: str, key: str) -> int:
    path = effects_dir / f"{kind}-{key}"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_an_instance_failed_on_a_bug_is_rewound_after_the_fix_and_what_succeeded_does_not_run_again(
    services: Services, start_worker: Any, effects_dir: Path
) -> None:
    hub = new_taskhub("rew")
    buggy = _worker(start_worker, hub, "1")
    client = _client(services, hub)
    key = uuid.uuid4().hex[:8]
    order = client.schedule_new_orchestration("order_flow", input=key)
    failed = client.wait_for_orchestration_completion(order, timeout=30)
    assert failed.runtime_status == OrchestrationStatus.FAILED
    assert failed.failure_details is not None and "currency code missing" in failed.failure_details.message
    (payment,) = [s for s in client.query_instances(name="payment_flow") if s.parent_instance_id == order]
    assert payment.runtime_status == OrchestrationStatus.FAILED
    buggy.stop()

    _worker(start_worker, hub, "1", DA_TEST_FIXED="1")
    env = {"DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url, "TASKHUB": hub}
    rewound = run_cli("rewind", order, "--reason", "fixed the currency bug", env=env)
    assert rewound.returncode == 0, rewound.stdout + rewound.stderr
    done = client.wait_for_orchestration_completion(order, timeout=30)
    assert done.runtime_status == OrchestrationStatus.COMPLETED, done.failure_details
    assert done.output == [f"reserved {key}", f"charged {key}", f"shipped {key}"]
    # What had succeeded ran once; the failed charge ran again, once.
    assert _runs(effects_dir, "reserve", key) == 1 and _runs(effects_dir, "reserve", f"{key}-payment") == 1
    assert _runs(effects_dir, "charge", key) == 2 and _runs(effects_dir, "ship", key) == 1
    for instance_id in (order, payment.instance_id):  # the failed child was rewound too
        rewinds = [e for e in client.get_history(instance_id) if e["type"] == "ExecutionRewound"]
        assert [r["reason"] for r in rewinds] == ["fixed the currency bug"]
    assert client.get_orchestration_state(payment.instance_id).runtime_status == OrchestrationStatus.COMPLETED

    with pytest.raises(InvalidInstanceStateError, match=f"^instance {order} is COMPLETED; only a FAILED instance"):
        client.rewind(order)
    wrong = run_cli("rewind", order, env=env)
    assert wrong.returncode == 1
    assert wrong.stderr.strip() == f"error: instance {order} is COMPLETED; only a FAILED instance can be rewound"

    again = client.restart(order)
    assert again == order
    assert client.wait_for_orchestration_completion(order, timeout=30).output == done.output
    assert _runs(effects_dir, "reserve", key) == 2  # a restart runs everything again


def test_the_dashboard_shows_the_version_and_rewinds_or_restarts_a_finished_instance(services: Services) -> None:
    from fastapi.testclient import TestClient
    from sqlalchemy import update

    from durable_agents import Settings
    from durable_agents.api import create_app
    from durable_agents.models import Instance
    from durable_agents.store.db import transaction

    hub = new_taskhub("dash")
    client = _client(services, hub)
    instance_id = client.schedule_new_orchestration("deploy_flow", version="7.2")
    with transaction(services.database_url) as session:  # as if it had failed: no worker serves this hub
        session.execute(update(Instance).where(Instance.instance_id == instance_id).values(status="FAILED"))
    settings = Settings(
        database_url=services.database_url, redis_url=services.redis_url, taskhub=hub, api_auth="disabled"
    )
    web = TestClient(create_app(settings=settings), base_url="http://127.0.0.1", client=("127.0.0.1", 50000))
    page = web.get(f"/instances/{instance_id}").text
    assert '<span class="mono" data-version>7.2</span>' in page
    assert f"/instances/{instance_id}/rewind" in page and f"/instances/{instance_id}/restart" in page

    htmx = {"HX-Request": "true", "Origin": "http://127.0.0.1"}
    assert web.post(f"/instances/{instance_id}/rewind", headers=htmx).status_code == 200
    assert client.get_orchestration_state(instance_id).runtime_status == OrchestrationStatus.RUNNING
    refused = web.post(f"/instances/{instance_id}/restart", headers=htmx)
    assert refused.status_code == 409 and f"instance {instance_id} is RUNNING" in refused.text
