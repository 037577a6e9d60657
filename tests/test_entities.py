"""Durable entities on real workers: signals and calls applied once each, in order; critical sections."""

from __future__ import annotations

import asyncio
import random
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from durable_agents import (
    AsyncDurableClient,
    EntityId,
    EntityNotRegisteredError,
    EntityOperationNotFoundError,
    OrchestrationStatus,
)

from conftest import make_client, new_taskhub, python_path, run_cli, unconfigured_environment, wait_until


def _key() -> str:
    return uuid.uuid4().hex[:10]


def _finish_all(client: Any, instance_ids: list[str], timeout: float = 60.0) -> list[Any]:
    outputs = []
    for instance_id in instance_ids:
        state = client.wait_for_orchestration_completion(instance_id, timeout=timeout)
        assert state.runtime_status == OrchestrationStatus.COMPLETED, state.failure_details
        outputs.append(state.output)
    return outputs


def test_signals_from_many_orchestrations_at_once_count_exactly(client: Any) -> None:
    counter = f"counter@{_key()}"
    orchestrations, signals = 10, 30  # bench/ runs the 10 x 100
    started = [
        client.schedule_new_orchestration("signal_counter", input=[counter, signals]) for _ in range(orchestrations)
    ]
    _finish_all(client, started)
    total = orchestrations * signals
    entity = wait_until(
        lambda: (found := client.get_entity(counter)) is not None and found.operation_count == total and found,
        message=f"{total} operations applied",
    )
    assert entity.state == total
    assert entity.entity_id == EntityId("counter", counter.split("@")[1])
    assert len(entity.recent_operations) == 20  # only the last few are kept
    assert {op.kind for op in entity.recent_operations} == {"signal"}


def test_calls_return_each_new_value_once_and_in_order(client: Any) -> None:
    counter = f"counter@{_key()}"
    started = [client.schedule_new_orchestration("call_counter", input=[counter, 5]) for _ in range(4)]
    seen = [value for output in _finish_all(client, started) for value in output]
    # Every call saw a distinct value: the operations ran one at a time, none twice.
    assert sorted(seen) == list(range(1, 21))
    assert client.get_entity(counter).state == 20


def test_transfers_under_lock_keep_the_total(client: Any) -> None:
    key = _key()
    a, b = f"Account@a-{key}", f"Account@b-{key}"
    client.signal_entity(a, "deposit", 100)
    client.signal_entity(b, "deposit", 100)
    rng = random.Random(7)
    moves = [(a, b) if rng.random() < 0.5 else (b, a) for _ in range(16)]  # bench/ runs 200
    started = [
        client.schedule_new_orchestration("transfer", input=[source, target, rng.randint(1, 60)])
        for source, target in moves
    ]
    outcomes = _finish_all(client, started)
    balances = [client.get_entity(a).state, client.get_entity(b).state]
    assert sum(balances) == 200 and min(balances) >= 0
    assert True in outcomes  # some moved money (and the locks let every one of them finish)
    # The last release reaches the entities just after its orchestration ended.
    for entity in (a, b):
        wait_until(lambda entity=entity: client.get_entity(entity).locked_by is None, message=f"{entity} released")
        assert client.get_entity(entity).waiting == 0


def test_entity_errors_are_clear(client: Any) -> None:
    key = _key()
    with pytest.raises(EntityNotRegisteredError, match="no entity named 'acount'.*registered: Account, counter"):
        client.signal_entity(f"acount@{key}", "deposit", 1)
    with pytest.raises(EntityOperationNotFoundError, match="no operation 'depositt'.*balance, deposit, withdraw"):
        client.signal_entity(f"Account@{key}", "depositt", 1)
    with pytest.raises(ValueError, match="'name@key'"):
        client.signal_entity("Account", "deposit", 1)
    assert client.get_entity(f"Account@{key}") is None

    instance = client.schedule_new_orchestration("entity_misuse", input=[f"Account@{key}", f"Account@other-{key}"])
    failed_call, unknown, outside = _finish_all(client, [instance])[0]
    assert "entity operation 'Account@" in failed_call
    assert "ValueError: balance 0 is less than 1000000000" in failed_call
    assert "no entity named 'nosuch'" in unknown
    assert outside.startswith("EntityLockError: call_entity('Account@other-")
    entity = wait_until(
        lambda: (found := client.get_entity(f"Account@{key}")).locked_by is None and found, message="released"
    )
    assert entity.state is None  # the failed withdrawal changed nothing
    assert [op.kind for op in reversed(entity.recent_operations)] == ["call", "lock", "unlock"]
    assert entity.recent_operations[-1].failure["error_type"] == "ValueError"
    listed = client.list_entities(name="Account", key_prefix=key)
    assert [str(found.entity_id) for found in listed] == [f"Account@{key}"]

    # An event raised to the entity's instance by id is dropped there; operations go on.
    client.raise_orchestration_event(EntityId.of(f"Account@{key}").instance_id, "stray")
    client.signal_entity(f"Account@{key}", "deposit", 5)
    wait_until(lambda: client.get_entity(f"Account@{key}").state == 5, message="the deposit after a stray event")


def test_a_worker_killed_midway_leaves_the_count_exact(services: Any, start_worker: Any) -> None:
    taskhub = new_taskhub("ent")
    first = start_worker(taskhub, concurrency=4)
    client = make_client(services, taskhub)
    counter = f"counter@{_key()}"
    callers = [client.schedule_new_orchestration("call_counter", input=[counter, 12]) for _ in range(6)]
    signallers = [client.schedule_new_orchestration("signal_counter", input=[counter, 20]) for _ in range(3)]
    total = 6 * 12 + 3 * 20
    applied = wait_until(
        lambda: (found := client.get_entity(counter)) is not None and found.operation_count >= 25 and found,
        message="a quarter of the operations applied",
    )
    first.kill()
    assert applied.operation_count < total, "the kill came too late to interrupt anything"
    start_worker(taskhub, concurrency=4)
    seen = [value for output in _finish_all(client, callers, timeout=90) for value in output]
    _finish_all(client, signallers)
    entity = wait_until(
        lambda: (found := client.get_entity(counter)).operation_count >= total and found, message="all applied"
    )
    assert entity.state == total and entity.operation_count == total
    assert len(seen) == len(set(seen)) == 6 * 12  # each call applied once: no value seen twice


def test_the_api_cli_and_dashboard_show_and_signal_entities(services: Any, worker: Any, client: Any) -> None:
    from durable_agents.api import create_app
    from test_api import ApiServer, api_settings, error_of

    import workflows

    key = _key()
    entity = f"Account@{key}/eu"  # a key may hold '/'
    settings = api_settings(services, worker.taskhub, api_auth="disabled", api_keys="")
    with ApiServer(create_app(workflows.app, settings)) as server, server.client(key=None) as http:
        path = f"/api/entities/{entity.replace('/', '%2F')}"
        signalled = http.post(f"{path}/signal", json={"operation": "deposit", "input": 70})
        assert signalled.status_code == 202, signalled.text
        status_url = signalled.json()["status_url"]
        found = wait_until(lambda: (r := http.get(status_url)).json().get("state") == 70 and r.json(), message="70")
        assert found["entity_id"] == entity and found["recent_operations"][0]["kind"] == "signal"
        listed = http.get("/api/entities", params={"name": "Account", "prefix": key}).json()["items"]
        assert [item["entity_id"] for item in listed] == [entity] and listed[0]["recent_operations"] == []

        error_of(http.post(f"{path}/signal", json={"operation": "steal"}), 404, "operation_not_found")
        error_of(
            http.post(f"/api/entities/Acount@{key}/signal", json={"operation": "deposit"}), 404, "entity_not_registered"
        )
        error_of(http.get(f"/api/entities/Account@missing-{key}"), 404, "entity_not_found")
        error_of(http.get("/api/entities/no-at-sign"), 422, "invalid_input")

        page = http.get(f"/entities/{entity.replace('/', '%2F')}")
        assert page.status_code == 200 and "deposit" in page.text and "70" in page.text
        listing = http.get("/entities", params={"name": "Account"})
        assert listing.status_code == 200 and entity in listing.text
        assert http.get(f"/entities/Account@missing-{key}").status_code == 404

    env = {"DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url, "TASKHUB": worker.taskhub}
    sent = run_cli("entities", "signal", entity, "withdraw", "20", "--app", "workflows:app", env=env)
    assert sent.returncode == 0, sent.stderr
    wait_until(lambda: client.get_entity(entity).state == 50, message="the CLI's withdrawal applied")
    wrong = run_cli("entities", "signal", entity, "withdrw", "1", "--app", "workflows:app", env=env)
    assert wrong.returncode == 1 and "no operation 'withdrw'" in wrong.stderr and "Traceback" not in wrong.stderr


def test_the_readme_example_runs_embedded_on_sqlite(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    example = re.findall(r"```python\n(.*?)```", readme[readme.index("## Entities") :], re.S)[0]
    (tmp_path / "bank.py").write_text(example)
    result = subprocess.run(
        [sys.executable, "bank.py"],
        cwd=tmp_path,
        env={**unconfigured_environment(), "PYTHONPATH": python_path()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["70", "30"]
    assert (tmp_path / "durable_agents.db").exists()


def test_a_lock_holds_others_back_until_its_holder_is_terminated(services: Any, worker: Any, client: Any) -> None:
    account = f"Account@{_key()}"
    holder = client.schedule_new_orchestration("hold_lock", input=account)
    wait_until(lambda: (found := client.get_entity(account)) is not None and found.locked_by == holder, message="lock")
    client.signal_entity(account, "deposit", 5)
    held = wait_until(lambda: (found := client.get_entity(account)).waiting == 1 and found, message="deposit held")
    assert held.state is None  # not applied while another holds the lock
    empty = f"Account@empty-{_key()}"
    blocked = client.schedule_new_orchestration("transfer", input=[empty, account, 1])
    explained = wait_until(
        lambda: (found := client.explain(blocked)).reason == "waiting_for_entity" and found, message="explained"
    )
    first, second = sorted([account, empty], key=EntityId.of)  # every lock is taken in this order
    assert f"the lock on '{first}', '{second}'" in explained.message

    assert client.terminate_orchestration(holder)
    assert client.wait_for_orchestration_completion(blocked, timeout=30).output is False  # `empty` had nothing
    released = wait_until(
        lambda: (found := client.get_entity(account)).locked_by is None and found, message="all released"
    )
    assert released.state == 5 and released.waiting == 0

    async def through_the_async_client() -> Any:
        async_client = AsyncDurableClient(make_client(services, worker.taskhub).app)
        await async_client.signal_entity(account, "deposit", 1)
        return await async_client.list_entities(name="Account", key_prefix=account.split("@")[1])

    assert [str(found.entity_id) for found in asyncio.run(through_the_async_client())] == [account]
    wait_until(lambda: client.get_entity(account).state == 6, message="the async client's deposit")


def test_an_orchestration_that_ends_while_its_lock_is_on_the_way_leaves_nothing_locked(client: Any) -> None:
    key = _key()
    first, last = f"Account@a-{key}", f"Account@z-{key}"  # locks are taken in this order
    holder = client.schedule_new_orchestration("hold_lock", input=last)
    wait_until(lambda: (found := client.get_entity(last)) is not None and found.locked_by == holder, message="held")
    racer = client.schedule_new_orchestration("lock_or_give_up", input=[first, last])
    # It gets `first`, then waits at `last`, and its timer wins: it ends holding `first`.
    assert client.wait_for_orchestration_completion(racer, timeout=30).output == "gave up"
    wait_until(lambda: client.get_entity(first).locked_by is None, message="first released at its end")
    assert client.get_entity(last).waiting == 1  # its request still waits at `last`

    client.terminate_orchestration(holder)
    # `last` passes the lock on to the racer's request, sees it has ended, and stays free.
    released = wait_until(
        lambda: (found := client.get_entity(last)).locked_by is None and found.waiting == 0 and found,
        message="last free",
    )
    assert next(op.failure for op in released.recent_operations if op.kind == "lock") == {
        "message": "its holder has ended"
    }
