"""Pure tests of what deploys rest on: patch markers, version rules, rewound histories, and the replay check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from durable_agents import DurableApp, NonDeterminismError, VersioningOptions
from durable_agents.orchestrator import ReplayExecutor
from durable_agents.orchestrator.history import (
    ExecutionRewound,
    PatchMarker,
    StepStarted,
    TaskCompleted,
    TaskFailed,
    event_to_json,
)
from durable_agents.orchestrator.versions import compare_versions, runs
from durable_agents.replays import RecordedHistory, read_histories, replay_history
from durable_agents.testing import replay
from test_replay_engine import T0, Instance, failure

LIVE_AND_REPLAYED = pytest.mark.parametrize("fresh", [False, True], ids=["cached-executor", "fresh-replay"])


def before_the_change(ctx: Any) -> Any:
    first = yield ctx.call_activity("old_step")
    approval = yield ctx.wait_for_external_event("approve")
    return [first, approval]


def with_the_patch(ctx: Any) -> Any:
    first = yield ctx.call_activity("new_step" if ctx.is_patched("new-step") else "old_step")
    again = ctx.is_patched("new-step")  # the first answer holds for the whole execution
    approval = yield ctx.wait_for_external_event("approve")
    return [first, approval, again]


def after_the_clean_up(ctx: Any) -> Any:
    ctx.deprecate_patch("new-step")
    first = yield ctx.call_activity("new_step")
    approval = yield ctx.wait_for_external_event("approve")
    return [first, approval, True]


def without_the_patch(ctx: Any) -> Any:
    first = yield ctx.call_activity("new_step")
    approval = yield ctx.wait_for_external_event("approve")
    return [first, approval]


@LIVE_AND_REPLAYED
def test_a_patch_keeps_old_histories_on_the_old_branch_and_new_ones_on_the_new(fresh: bool) -> None:
    old = Instance(before_the_change)
    old.start()
    old.step(TaskCompleted(task_id=1, result="old"))
    old.orchestrator = with_the_patch  # the deploy: the old instance replays under the patched code
    old.executor = None
    done = old.step(*_approval(), fresh=fresh)
    assert done.result == ["old", True, False]
    assert not [e for e in old.history if isinstance(e, PatchMarker)]

    new = Instance(with_the_patch)
    started = new.start(fresh=fresh)
    assert [type(e).__name__ for e in started.new_events] == ["PatchMarker", "TaskScheduled"]
    assert started.new_events[1].name == "new_step"
    new.step(TaskCompleted(task_id=1, result="new"), fresh=fresh)
    assert new.step(*_approval(), fresh=fresh).result == ["new", True, True]
    # The clean-up deploy replays both kinds of history where the new branch ran.
    for code in (after_the_clean_up, with_the_patch):
        assert replay_history(_registry(code), RecordedHistory("new", _exported(new))).compatible


def test_deprecate_patch_records_its_marker_and_an_unpatched_change_is_reported_where_it_diverges() -> None:
    new = Instance(after_the_clean_up)
    started = new.start()
    assert started.new_events[0] == PatchMarker(change_id="new-step", deprecated=True)

    old = Instance(before_the_change)
    old.start()
    old.step(TaskCompleted(task_id=1, result="old"))
    report = replay_history(_registry(without_the_patch), RecordedHistory("inst-1", _exported(old)))
    assert not report.compatible and report.divergence is not None
    assert (report.divergence.task_id, report.divergence.expected, report.divergence.actual) == (
        1,
        "call_activity('old_step')",
        "call_activity('new_step')",
    )
    assert report.divergence.location is not None and "test_patches_and_replays.py" in report.divergence.location
    assert report.describe().startswith("inst-1 (orch): diverges at task #1: history recorded call_activity")


def test_testing_replay_checks_exported_histories_in_a_test(tmp_path: Path) -> None:
    old = Instance(before_the_change)
    old.start()
    old.step(TaskCompleted(task_id=1, result="old"))
    # As `durable-agents history ID --json` prints it: the stored events with their numbers and times.
    printed = tmp_path / "checkout-42.json"
    printed.write_text(json.dumps([{"seq": n, **e, "recorded_at": "2024-05-01T12:00:00+00:00"}
                                   for n, e in enumerate(_exported(old))]))  # fmt: skip
    assert [h.instance_id for h in read_histories(printed)] == ["checkout-42"]

    patched, unpatched = DurableApp("replays"), DurableApp("replays")
    patched.orchestration(with_the_patch, name="orch")
    unpatched.orchestration(without_the_patch, name="orch")
    assert [report.compatible for report in replay(patched, printed)] == [True]
    with pytest.raises(NonDeterminismError, match=r"checkout-42 \(orch\): diverges at task #1"):
        replay(unpatched, printed)
    # The code scheduling more than a step recorded is a divergence too.
    extra = Instance(lambda ctx: (yield ctx.task_all([ctx.call_activity("a")])))
    extra.start()
    two = DurableApp("replays")
    two.orchestration(lambda ctx: (yield ctx.task_all([ctx.call_activity("a"), ctx.call_activity("b")])), name="orch")
    with pytest.raises(NonDeterminismError, match=r"task #2: history recorded nothing .* call_activity\('b'\)"):
        replay(two, _exported(extra))


@LIVE_AND_REPLAYED
def test_a_rewound_failure_is_taken_back_on_replay(fresh: bool) -> None:
    def charge_then_ship(ctx: Any) -> Any:
        charged = yield ctx.call_activity("charge")
        shipped = yield ctx.call_activity("ship")
        return [charged, shipped]

    order = Instance(charge_then_ship)
    order.start()
    assert order.step(TaskFailed(task_id=1, failure=failure("bug"))).outcome == "failed"
    assert order.executor is not None and list(order.executor.state.failed_tasks) == [1]
    # What the rewind step records; the charge runs again and succeeds.
    order.history.append(ExecutionRewound(reason="fixed", task_ids=(1,)))
    order.executor = None
    resumed = order.step(TaskCompleted(task_id=1, result="charged"), fresh=fresh)
    assert [e.name for e in resumed.new_events] == ["ship"]  # type: ignore[union-attr]
    assert order.step(TaskCompleted(task_id=2, result="shipped"), fresh=fresh).result == ["charged", "shipped"]


def test_versions_compare_as_dotted_numbers_else_as_strings() -> None:
    assert compare_versions("2.10", "2.9") == 1 and compare_versions("1.0", "1") == 0
    assert compare_versions("beta", "alpha") == 1 and compare_versions(None, "0.1") == -1
    assert runs("strict", "2", "2.0") and not runs("strict", "2", "1")
    assert runs("current_or_older", "2", "1.9") and runs("current_or_older", "2", None)
    assert not runs("current_or_older", "2", "2.1") and runs("none", "1", "9")
    with pytest.raises(ValueError, match="use 'none', 'strict' or 'current_or_older'"):
        VersioningOptions(match="newest")  # type: ignore[arg-type]
    with pytest.raises(Exception, match=r"needs the app's version: DurableApp\(version=...\)"):
        DurableApp("x", versioning=VersioningOptions(match="strict"))


def _approval() -> list[Any]:
    from durable_agents.orchestrator.history import EventRaised

    return [EventRaised(name="approve", data=True)]


def _exported(instance: Instance) -> list[dict[str, Any]]:
    return [event_to_json(event) for event in instance.history]


def _registry(code: Any) -> Any:
    app = DurableApp("replays")
    app.orchestration(code, name="orch")
    return app.registry


def test_an_instance_failed_by_an_unpatched_deploy_goes_on_when_rewound_on_the_patched_code() -> None:
    instance = Instance(before_the_change)
    instance.start()
    instance.step(TaskCompleted(task_id=1, result="old"))
    instance.orchestrator, instance.executor = without_the_patch, None
    failed = instance.step(*_approval(), fresh=True)
    assert failed.outcome == "failed" and failed.failure is not None
    assert failed.failure.error_type == "NonDeterminismError"
    # The patch is deployed and the instance rewound (what steps/rewind.py does, without the store).
    executor = ReplayExecutor(with_the_patch, "inst-1", max_payload_bytes=1 << 20)
    executor.replay([*instance.history, StepStarted(timestamp=T0), ExecutionRewound(reason="patched")])
    ended = executor.continue_replayed()
    assert (ended.outcome, ended.result) == ("completed", ["old", True, False])
    assert [type(e).__name__ for e in ended.new_events] == ["ExecutionCompleted"]
