"""The engine's side of entities, pure: calls, signals and critical sections as actions, replayed alike."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from durable_agents import EntityId, EntityLockError
from durable_agents.entity_specs import EntitySpec
from durable_agents.errors import EntityOperationNotFoundError, NonDeterminismError
from durable_agents.orchestrator.history import (
    EntityCalled,
    EntityLockRequested,
    EntitySignaled,
    EntityUnlockSent,
    ExecutionCompleted,
    FailureInfo,
    TaskCompleted,
    TaskFailed,
)
from test_replay_engine import Instance

LOCK = "inst-1:e1:1"


@pytest.fixture(params=[False, True], ids=["cached-executor", "fresh-replay"])
def fresh(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def transfer(ctx: Any) -> Any:
    with (yield ctx.lock_entities("account@b", EntityId("account", "a"))):
        taken = yield ctx.call_entity("account@a", "withdraw", 5)
        ctx.signal_entity("account@b", "deposit", 5)
        ctx.signal_entity("audit@log", "note", "moved")
    return taken


def test_a_critical_section_locks_in_sorted_order_and_releases_on_leaving(fresh: bool) -> None:
    instance = Instance(transfer)
    assert instance.start(fresh=fresh).new_events == [
        EntityLockRequested(task_id=1, entities=("account@a", "account@b"), lock_id=LOCK)
    ]
    assert instance.step(TaskCompleted(task_id=1), fresh=fresh).new_events == [
        EntityCalled(task_id=2, entity="account@a", operation="withdraw", input=5, lock_id=LOCK)
    ]
    done = instance.step(TaskCompleted(task_id=2, result=95), fresh=fresh)
    assert done.new_events == [
        EntitySignaled(task_id=3, entity="account@b", operation="deposit", input=5, lock_id=LOCK),
        # A signal may leave the section's entities; it is not part of the section then.
        EntitySignaled(task_id=4, entity="audit@log", operation="note", input="moved", lock_id=None),
        EntityUnlockSent(task_id=5, entities=("account@a", "account@b"), lock_id=LOCK),
        ExecutionCompleted(status="COMPLETED", result=95),
    ]


def test_an_orchestration_that_fails_inside_a_section_still_releases_it(fresh: bool) -> None:
    def failing(ctx: Any) -> Any:
        lock = yield ctx.lock_entities("account@a")
        yield ctx.call_entity("account@a", "withdraw", 5)
        lock.release()  # never reached

    instance = Instance(failing)
    instance.start(fresh=fresh)
    instance.step(TaskCompleted(task_id=1), fresh=fresh)
    boom = FailureInfo(error_type="ValueError", message="balance 0 is less than 5")
    failed = instance.step(TaskFailed(task_id=2, failure=boom), fresh=fresh)
    unlock, end = failed.new_events
    assert unlock == EntityUnlockSent(task_id=3, entities=("account@a",), lock_id=LOCK)
    assert isinstance(end, ExecutionCompleted) and end.failure is not None
    assert end.failure.message == "balance 0 is less than 5"
    assert end.failure.chain[0].kind == "entity operation" and end.failure.chain[0].name == "account@a.withdraw"


def test_calls_outside_the_locked_set_and_nested_locks_are_refused() -> None:
    def outside(ctx: Any) -> Any:
        with (yield ctx.lock_entities("account@a")):
            yield ctx.call_entity("account@b", "balance")

    def nested(ctx: Any) -> Any:
        with (yield ctx.lock_entities("account@a")):
            yield ctx.lock_entities("account@b")

    for orchestration, expected in [(outside, "call_entity('account@b', 'balance') inside a critical section"),
                                    (nested, "lock_entities inside a critical section")]:  # fmt: skip
        instance = Instance(orchestration)
        instance.start()
        result = instance.step(TaskCompleted(task_id=1))
        assert result.outcome == "failed" and result.failure is not None
        assert result.failure.error_type == EntityLockError.__name__ and expected in result.failure.message
        # Failing released the section it held.
        assert isinstance(result.new_events[0], EntityUnlockSent)


def test_a_changed_operation_is_a_nondeterminism_error() -> None:
    def v1(ctx: Any) -> Any:
        return (yield ctx.call_entity("counter@x", "add", 1))

    def v2(ctx: Any) -> Any:
        return (yield ctx.call_entity("counter@x", "subtract", 1))

    instance = Instance(v1)
    instance.start()
    instance.orchestrator = v2
    result = instance.step(TaskCompleted(task_id=1, result=1), fresh=True)
    assert result.failure is not None and result.failure.error_type == NonDeterminismError.__name__
    assert "call_entity('counter@x', 'add')" in result.failure.message
    assert "call_entity('counter@x', 'subtract')" in result.failure.message


def test_entity_ids_and_specs_refuse_bad_names() -> None:
    assert str(EntityId.of("counter@a@b")) == "counter@a@b" and EntityId.of("counter@a@b").key == "a@b"
    for bad, message in [("counter", "'name@key'"), ("@x", "non-empty"), ("counter@", "non-empty key")]:
        with pytest.raises(ValueError, match=message):
            EntityId.of(bad)

    class Empty:
        state = 0

    with pytest.raises(ValueError, match="no operations"):
        EntitySpec.of("Empty", Empty)

    class Configured:
        def __init__(self, rate: float) -> None:
            self.rate = rate

        def apply(self) -> None: ...

    with pytest.raises(ValueError, match="constructible without arguments"):
        EntitySpec.of("Configured", Configured)

    class Thermostat:
        state: ClassVar[dict[str, int]] = {"target": 20}

        def set(self, target: int) -> None:
            self.state["target"] = target

        def read(self) -> Any:
            return self.state

    spec = EntitySpec.of("Thermostat", Thermostat)
    with pytest.raises(EntityOperationNotFoundError, match="no operation 'sett' \\(its operations: read, set\\)"):
        spec.apply(EntityId("Thermostat", "k"), None, "sett", 1)
    state, result = spec.apply(EntityId("Thermostat", "k"), None, "set", 25)
    assert state == {"target": 25} and result is None
    assert Thermostat.state == {"target": 20}  # the class's initial state is copied, never changed
