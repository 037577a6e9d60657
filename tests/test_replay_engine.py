"""Pure unit tests of the replay engine: no database, no broker, no clock, no sleeps.

`Instance` plays the storage layer: it keeps the append-only `history` (every event goes through
the same JSON round trip the database applies), runs one step at a time, and either keeps one
executor between steps (the worker's replay cache) or builds a *fresh* executor that replays the
whole history first. Scenario tests run in both modes through the `fresh` fixture, so live and
replayed runs must agree.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from durable_agents.agents.proxy import TURN_AS_CHILD, OrchestrationAgent
from durable_agents.errors import ConfigurationError, EventTimeoutError, FailedTask, FailureDetails, TaskFailedError
from durable_agents.orchestrator import ReplayExecutor, RetryPolicy, StepResult
from durable_agents.orchestrator.context import StartIfMissing
from durable_agents.orchestrator.history import (
    EventRaised,
    EventSent,
    ExecutionCompleted,
    ExecutionStarted,
    FailureInfo,
    PatchMarker,
    StepStarted,
    SubOrchestrationCompleted,
    SubOrchestrationCreated,
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    TimerCreated,
    TimerFired,
    event_from_json,
    event_to_json,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TRACE = 'Traceback (most recent call last):\n  File "activities.py", line 7\nValueError: bad input\n'


def at(**delta: float) -> datetime:
    return T0 + timedelta(**delta)


def failure(message: str, error_type: str = "ValueError") -> FailureInfo:
    return FailureInfo(error_type=error_type, message=message, stack_trace=TRACE)


class Instance:
    """One orchestration instance as the storage layer sees it: its history and its steps."""

    def __init__(
        self,
        orchestrator: Any,
        *,
        instance_id: str = "inst-1",
        max_payload_bytes: int = 1 << 20,
        agent_factory: Any = None,
    ) -> None:
        self.orchestrator = orchestrator
        self.instance_id = instance_id
        self.max_payload_bytes = max_payload_bytes
        self.agent_factory = agent_factory
        self.history: list[Any] = []
        self.executor: ReplayExecutor | None = None

    def fresh(self) -> ReplayExecutor:
        """A new executor that has replayed the whole stored history."""
        executor = ReplayExecutor(
            self.orchestrator,
            self.instance_id,
            max_payload_bytes=self.max_payload_bytes,
            agent_factory=self.agent_factory,
        )
        executor.replay(self.history)
        return executor

    def step(self, *events: Any, at: datetime = T0, fresh: bool = False) -> StepResult:
        """Run one step; with `fresh`, on a new executor that replays the history first."""
        if fresh or self.executor is None:
            self.executor = self.fresh()
        started = StepStarted(timestamp=at)
        result = self.executor.execute([started, *events])
        stored = [started, *events, *result.new_events]
        self.history += [event_from_json(event_to_json(event)) for event in stored]
        return result

    def start(self, input: Any = None, *, at: datetime = T0, fresh: bool = False) -> StepResult:
        return self.step(ExecutionStarted(name="orch", input=input, execution_id="e1"), at=at, fresh=fresh)


@pytest.fixture(params=[False, True], ids=["cached-executor", "fresh-replay"])
def fresh(request: pytest.FixtureRequest) -> bool:
    """Run a scenario with one executor kept between steps, or a fresh replaying one per step."""
    return bool(request.param)


# -- 1. activity sequence: live and replayed runs agree ---------------------------------------


def pipeline(ctx: Any) -> Any:
    doubled = yield ctx.call_activity("double", input=ctx.get_input())
    child = yield ctx.call_sub_orchestrator("child", input=doubled)
    yield ctx.create_timer(timedelta(minutes=5))
    total = yield ctx.call_activity("add", input=[doubled, child])
    return {"doubled": doubled, "child": child, "total": total}


PIPELINE_STEPS: list[tuple[datetime, list[Any]]] = [
    (at(seconds=1), [TaskCompleted(task_id=1, result=8)]),
    (at(seconds=2), [SubOrchestrationCompleted(task_id=2, result=80)]),
    (at(minutes=5, seconds=2), [TimerFired(task_id=3, fire_at=at(minutes=5, seconds=2))]),
    (at(minutes=6), [TaskCompleted(task_id=4, result=88)]),
]
FINAL = {"doubled": 8, "child": 80, "total": 88}
PIPELINE_ACTIONS = [
    [TaskScheduled(task_id=1, name="double", input=4)],
    [SubOrchestrationCreated(task_id=2, name="child", instance_id="inst-1:e1:2", input=8)],
    [TimerCreated(task_id=3, fire_at=at(minutes=5, seconds=2), purpose="timer")],
    [TaskScheduled(task_id=4, name="add", input=[8, 80])],
    [ExecutionCompleted(status="COMPLETED", result=FINAL)],
]


def run_pipeline(*, fresh: bool) -> tuple[Instance, list[StepResult]]:
    instance = Instance(pipeline)
    results = [instance.start(4, fresh=fresh)]
    results += [instance.step(*events, at=when, fresh=fresh) for when, events in PIPELINE_STEPS]
    return instance, results


def test_activity_sequence_live_and_replayed_runs_agree() -> None:
    live, live_results = run_pipeline(fresh=False)
    replayed, replayed_results = run_pipeline(fresh=True)

    assert [r.new_events for r in live_results] == PIPELINE_ACTIONS
    assert [r.new_events for r in replayed_results] == PIPELINE_ACTIONS
    assert [r.outcome for r in live_results] == ["running"] * 4 + ["completed"]
    assert live_results[-1].result == replayed_results[-1].result == FINAL
    assert not any(r.waiting_on_all for r in live_results)
    assert live.history == replayed.history

    finished = live.fresh()  # replaying a finished instance is quiet and knows it has finished
    assert finished.is_finished
    assert finished.execute([StepStarted(timestamp=at(hours=1))]).new_events == []


# -- 2. task_all ------------------------------------------------------------------------------


def fan_out(ctx: Any) -> Any:
    return (yield [ctx.call_activity("square", input=n) for n in (3, 1, 2)])


def fan_out_catching(ctx: Any) -> Any:
    try:
        yield ctx.task_all([ctx.call_activity("square", input=n) for n in (3, 1, 2)])
    except TaskFailedError as error:
        return {"text": str(error), **error.details.to_json()}
    return "no failure"


def test_task_all_returns_results_in_order_and_reports_waiting_on_all(fresh: bool) -> None:
    instance = Instance(fan_out)
    started = instance.start(fresh=fresh)
    assert started.new_events == [
        TaskScheduled(task_id=i, name="square", input=n) for i, n in enumerate((3, 1, 2), start=1)
    ]
    assert started.waiting_on_all

    # Completion order (4, 9, 1) is neither the list order nor sorted order.
    partial = instance.step(TaskCompleted(task_id=3, result=4), TaskCompleted(task_id=1, result=9), fresh=fresh)
    assert (partial.outcome, partial.new_events, partial.waiting_on_all) == ("running", [], True)

    done = instance.step(TaskCompleted(task_id=2, result=1), fresh=fresh)
    assert (done.outcome, done.result, done.waiting_on_all) == ("completed", [9, 1, 4], False)


def test_waiting_on_all_is_false_for_a_single_task_list() -> None:
    def single(ctx: Any) -> Any:
        return (yield [ctx.call_activity("only")])

    instance = Instance(single)
    assert not instance.start().waiting_on_all
    assert instance.step(TaskCompleted(task_id=1, result="x")).result == ["x"]


def test_task_all_fails_fast_with_task_failed_error(fresh: bool) -> None:
    instance = Instance(fan_out_catching)
    instance.start(fresh=fresh)
    # Tasks 1 and 3 are still running: one failure is enough to resume the code.
    result = instance.step(TaskFailed(task_id=2, failure=failure("bad input 2")), fresh=fresh)
    assert result.outcome == "completed"
    assert result.result["error_type"] == "ValueError"
    assert result.result["message"] == "bad input 2"
    assert result.result["stack_trace"] == TRACE
    assert result.result["text"] == "activity 'square' (task #2) failed: ValueError: bad input 2"


def test_uncaught_task_failure_fails_the_orchestration_with_the_original_details() -> None:
    instance = Instance(fan_out)
    instance.start()
    result = instance.step(TaskFailed(task_id=2, failure=failure("bad input 2")))
    assert result.outcome == "failed"
    # The innermost error stays readable; the chain says which task it failed through.
    link = FailedTask("activity", "square", 2, "inst-1")
    assert result.failure == FailureDetails("ValueError", "bad input 2", TRACE, (link,))
    assert result.new_events == [ExecutionCompleted(status="FAILED", failure=FailureInfo.of(result.failure))]


# -- 3. task_any ------------------------------------------------------------------------------


def approval(ctx: Any) -> Any:
    event = ctx.wait_for_external_event("approval")
    timer = ctx.create_timer(timedelta(hours=1))
    winner = yield ctx.task_any([event, timer])
    if winner == event:
        assert winner is event and not timer.is_complete
        return {"winner": "event", "data": event.result}
    assert winner is timer and not event.is_complete
    return {"winner": "timer"}


APPROVED = EventRaised(name="approval", data={"by": "ann"})
TIMED_OUT = TimerFired(task_id=1, fire_at=at(hours=1))


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([APPROVED], {"winner": "event", "data": {"by": "ann"}}),
        ([TIMED_OUT], {"winner": "timer"}),
        ([APPROVED, TIMED_OUT], {"winner": "event", "data": {"by": "ann"}}),
        ([TIMED_OUT, APPROVED], {"winner": "timer"}),
    ],
    ids=["event", "timer", "event-then-timer", "timer-then-event"],
)
def test_task_any_returns_the_winning_task_itself(fresh: bool, events: list[Any], expected: Any) -> None:
    instance = Instance(approval)
    assert instance.start(fresh=fresh).new_events == [TimerCreated(task_id=1, fire_at=at(hours=1))]
    result = instance.step(*events, at=at(hours=1), fresh=fresh)
    assert (result.outcome, result.result) == ("completed", expected)


# -- 4. external events -----------------------------------------------------------------------


def collector(ctx: Any) -> Any:
    yield ctx.create_timer(timedelta(minutes=5))
    first = yield ctx.wait_for_external_event("Vote")
    second = yield ctx.wait_for_external_event("vote")
    third = yield ctx.wait_for_external_event("VOTE")
    return [first, second, third]


def test_events_raised_before_the_wait_are_buffered_in_order_and_match_case_insensitively(fresh: bool) -> None:
    instance = Instance(collector)
    instance.start(fresh=fresh)
    early = instance.step(EventRaised(name="vote", data="one"), EventRaised(name="VoTe", data="two"), fresh=fresh)
    assert (early.outcome, early.new_events) == ("running", [])

    after_timer = instance.step(TimerFired(task_id=1, fire_at=at(minutes=5)), at=at(minutes=5), fresh=fresh)
    assert (after_timer.outcome, after_timer.new_events) == ("running", [])  # two buffered, one to wait for

    done = instance.step(EventRaised(name="VOTE", data="three"), at=at(minutes=6), fresh=fresh)
    assert (done.outcome, done.result) == ("completed", ["one", "two", "three"])


# -- 5. event timeout -------------------------------------------------------------------------


def wait_for_reply(ctx: Any) -> Any:
    return (yield ctx.wait_for_external_event("reply", timeout=timedelta(minutes=10)))


def test_wait_for_external_event_times_out_when_its_timer_fires_first(fresh: bool) -> None:
    instance = Instance(wait_for_reply)
    started = instance.start(fresh=fresh)
    assert started.new_events == [TimerCreated(task_id=1, fire_at=at(minutes=10), purpose="event_timeout")]

    result = instance.step(
        TimerFired(task_id=1, fire_at=at(minutes=10)),
        EventRaised(name="reply", data="late"),
        at=at(minutes=10),
        fresh=fresh,
    )
    assert result.outcome == "failed"
    assert result.failure is not None
    assert result.failure.error_type == EventTimeoutError.__name__
    assert "'reply'" in result.failure.message


def test_event_arriving_before_its_timeout_wins(fresh: bool) -> None:
    instance = Instance(wait_for_reply)
    instance.start(fresh=fresh)
    result = instance.step(
        EventRaised(name="Reply", data="hi"),
        TimerFired(task_id=1, fire_at=at(minutes=10)),
        at=at(minutes=10),
        fresh=fresh,
    )
    assert (result.outcome, result.result) == ("completed", "hi")


# -- 6. retries -------------------------------------------------------------------------------

BACKOFF = RetryPolicy(first_retry_interval=timedelta(seconds=10), max_number_of_attempts=3, backoff_coefficient=2.0)


def retried(policy: RetryPolicy) -> Any:
    def orchestrator(ctx: Any) -> Any:
        try:
            return (yield ctx.call_activity("flaky", input="x", retry_policy=policy))
        except TaskFailedError as error:
            return {"gave_up": str(error), "error_type": error.details.error_type, "chain": error.details.chain}

    return orchestrator


def test_retry_waits_on_durable_backoff_timers_then_gives_up(fresh: bool) -> None:
    instance = Instance(retried(BACKOFF))
    assert instance.start(fresh=fresh).new_events == [TaskScheduled(task_id=1, name="flaky", input="x")]

    t1 = at(seconds=3)
    first = instance.step(TaskFailed(task_id=1, failure=failure("try 1")), at=t1, fresh=fresh)
    assert first.outcome == "running"
    assert first.new_events == [TimerCreated(task_id=2, fire_at=t1 + timedelta(seconds=10), purpose="retry")]

    again = instance.step(TimerFired(task_id=2, fire_at=t1 + timedelta(seconds=10)), at=at(seconds=13), fresh=fresh)
    assert again.new_events == [TaskScheduled(task_id=3, name="flaky", input="x")]

    t3 = at(seconds=20)
    second = instance.step(TaskFailed(task_id=3, failure=failure("try 2")), at=t3, fresh=fresh)
    assert second.new_events == [TimerCreated(task_id=4, fire_at=t3 + timedelta(seconds=20), purpose="retry")]

    third = instance.step(TimerFired(task_id=4, fire_at=t3 + timedelta(seconds=20)), at=at(seconds=40), fresh=fresh)
    assert third.new_events == [TaskScheduled(task_id=5, name="flaky", input="x")]

    result = instance.step(TaskFailed(task_id=5, failure=failure("try 3")), at=at(seconds=41), fresh=fresh)
    assert result.outcome == "completed"
    assert result.result["error_type"] == "ValueError"
    assert "after 3 attempts" in result.result["gave_up"]
    assert "try 3" in result.result["gave_up"]


def test_retry_delivers_the_result_of_a_later_attempt(fresh: bool) -> None:
    instance = Instance(retried(BACKOFF))
    instance.start(fresh=fresh)
    instance.step(TaskFailed(task_id=1, failure=failure("try 1")), fresh=fresh)
    instance.step(TimerFired(task_id=2, fire_at=at(seconds=10)), at=at(seconds=10), fresh=fresh)
    result = instance.step(TaskCompleted(task_id=3, result="ok"), at=at(seconds=11), fresh=fresh)
    assert (result.outcome, result.result) == ("completed", "ok")


def test_retry_timeout_stops_retrying_before_the_next_wait() -> None:
    policy = RetryPolicy(timedelta(seconds=10), max_number_of_attempts=5, retry_timeout=timedelta(seconds=5))
    instance = Instance(retried(policy))
    instance.start()
    result = instance.step(TaskFailed(task_id=1, failure=failure("nope")), at=at(seconds=1))
    assert result.outcome == "completed"
    assert result.result["chain"] == [FailedTask("activity", "flaky", 1, "inst-1", attempts=1).to_json()]
    assert result.result["gave_up"] == "activity 'flaky' (task #1) failed: ValueError: nope"


def test_retry_delay_grows_by_the_backoff_coefficient_up_to_its_cap() -> None:
    policy = RetryPolicy(timedelta(seconds=1), 10, backoff_coefficient=3.0, max_retry_interval=timedelta(seconds=5))
    assert [policy.delay_before(n).total_seconds() for n in (2, 3, 4)] == [1.0, 3.0, 5.0]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"first_retry_interval": timedelta(seconds=1), "max_number_of_attempts": 0}, "max_number_of_attempts"),
        ({"first_retry_interval": timedelta(0), "max_number_of_attempts": 3}, "first_retry_interval"),
        (
            {"first_retry_interval": timedelta(seconds=1), "max_number_of_attempts": 3, "backoff_coefficient": 0.5},
            "backoff_coefficient",
        ),
        (
            {
                "first_retry_interval": timedelta(seconds=10),
                "max_number_of_attempts": 3,
                "max_retry_interval": timedelta(seconds=1),
            },
            "max_retry_interval",
        ),
    ],
)
def test_retry_policy_rejects_invalid_settings(options: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        RetryPolicy(**options)


# -- 7. non-determinism -----------------------------------------------------------------------


def calls(name: str) -> Any:
    def orchestrator(ctx: Any) -> Any:
        return (yield ctx.call_activity(name))

    return orchestrator


def waits_for_an_event(ctx: Any) -> Any:
    return (yield ctx.wait_for_external_event("go"))


@pytest.mark.parametrize(
    ("new_code", "now_does"),
    [(calls("b"), "call_activity('b')"), (waits_for_an_event, "nothing")],
    ids=["b", "nothing"],
)
def test_replaying_history_against_changed_code_fails_with_non_determinism(new_code: Any, now_does: str) -> None:
    instance = Instance(calls("a"))
    instance.start()
    instance.orchestrator = new_code
    result = instance.step(TaskCompleted(task_id=1, result=1), fresh=True)

    assert result.outcome == "failed"
    assert result.failure is not None
    assert result.failure.error_type == "NonDeterminismError"
    assert "call_activity('a')" in result.failure.message
    assert f"now does {now_does}" in result.failure.message
    assert result.new_events == [ExecutionCompleted(status="FAILED", failure=FailureInfo.of(result.failure))]


# -- 8. determinism of ids, time and is_replaying ---------------------------------------------


def test_new_uuid_and_current_time_match_between_live_run_and_replay() -> None:
    seen: list[tuple[bool, str, datetime]] = []

    def stamped(ctx: Any) -> Any:
        for wait in (ctx.create_timer(timedelta(seconds=30)), ctx.call_activity("noop"), None):
            seen.append((ctx.is_replaying, ctx.new_uuid(), ctx.current_utc_datetime))
            if wait is not None:
                yield wait
        return [[u, now.isoformat()] for _, u, now in seen[-3:]]

    instance = Instance(stamped)
    instance.start(at=T0)
    instance.step(TimerFired(task_id=1, fire_at=at(seconds=30)), at=at(seconds=30))
    live = list(seen)
    seen.clear()
    result = instance.step(TaskCompleted(task_id=2), at=at(seconds=45), fresh=True)

    assert [flag for flag, _, _ in live] == [False, False]
    assert [flag for flag, _, _ in seen] == [True, True, False]
    assert [(u, now) for _, u, now in seen[:2]] == [(u, now) for _, u, now in live]
    assert [now for _, _, now in seen] == [T0, at(seconds=30), at(seconds=45)]
    ids = [u for _, u, _ in seen]
    assert len(set(ids)) == 3 and all(uuid.UUID(u) for u in ids)
    assert result.result == [[u, now.isoformat()] for _, u, now in seen]


# -- 9. continue_as_new -----------------------------------------------------------------------


def eternal(save_events: bool) -> Any:
    def orchestrator(ctx: Any) -> Any:
        yield ctx.create_timer(timedelta(minutes=1))
        ping = yield ctx.wait_for_external_event("ping")
        ctx.continue_as_new({"n": ctx.get_input()["n"] + 1, "ping": ping}, save_events=save_events)

    return orchestrator


@pytest.mark.parametrize("save_events", [True, False])
def test_continue_as_new_carries_over_unconsumed_events(fresh: bool, save_events: bool) -> None:
    instance = Instance(eternal(save_events))
    instance.start({"n": 1}, fresh=fresh)
    instance.step(
        EventRaised(name="ping", data=1),
        EventRaised(name="note", data="x"),
        EventRaised(name="Ping", data=2),
        fresh=fresh,
    )
    result = instance.step(TimerFired(task_id=1, fire_at=at(minutes=1)), at=at(minutes=1), fresh=fresh)

    assert result.outcome == "continued_as_new"
    assert result.continue_input == {"n": 2, "ping": 1}
    assert result.new_events == [ExecutionCompleted(status="CONTINUED_AS_NEW", result={"n": 2, "ping": 1})]
    expected = [EventRaised(name="note", data="x"), EventRaised(name="Ping", data=2)]  # in arrival order
    assert result.carryover_events == (expected if save_events else [])


@pytest.mark.parametrize("save_events", [True, False])
def test_events_arriving_in_the_step_that_continues_as_new_are_carried_over(fresh: bool, save_events: bool) -> None:
    instance = Instance(eternal(save_events))
    instance.start({"n": 1}, fresh=fresh)
    instance.step(EventRaised(name="ping", data=1), fresh=fresh)
    result = instance.step(
        TimerFired(task_id=1, fire_at=at(minutes=1)),
        EventRaised(name="ping", data=2),
        EventRaised(name="note", data="late"),
        at=at(minutes=1),
        fresh=fresh,
    )
    assert result.outcome == "continued_as_new"
    expected = [EventRaised(name="ping", data=2), EventRaised(name="note", data="late")]
    assert result.carryover_events == (expected if save_events else [])


# -- 10. failures of the orchestration itself -------------------------------------------------


class BoomError(Exception):
    pass


def yields_a_number(ctx: Any) -> Any:
    yield 42


def yields_a_list_with_a_number(ctx: Any) -> Any:
    yield [ctx.call_activity("a"), 42]


def raises_in_generator(ctx: Any) -> Any:
    raise BoomError("kaboom")
    yield  # a generator function


def raises_in_plain_function(ctx: Any) -> Any:
    raise BoomError("kaboom")


def sends_an_object(ctx: Any) -> Any:
    yield ctx.call_activity("a", input=object())


def returns_too_much(ctx: Any) -> Any:
    return "x" * 200


FAILURES = [
    (yields_a_number, "OrchestrationYieldError", ["yielded 42", "int"]),
    (yields_a_list_with_a_number, "OrchestrationYieldError", ["42", "int"]),
    (raises_in_generator, "BoomError", ["kaboom"]),
    (raises_in_plain_function, "BoomError", ["kaboom"]),
    (sends_an_object, "SerializationError", ["input of activity 'a'"]),
    (returns_too_much, "PayloadTooLargeError", ["output of orchestration 'orch'", "limit of 100 bytes"]),
]


@pytest.mark.parametrize(("orchestrator", "error_type", "fragments"), FAILURES, ids=[f.__name__ for f, *_ in FAILURES])
def test_orchestration_failures_are_reported_with_their_error(
    orchestrator: Any, error_type: str, fragments: list[str]
) -> None:
    result = Instance(orchestrator, max_payload_bytes=100).start()
    assert result.outcome == "failed"
    assert result.failure is not None
    assert result.failure.error_type == error_type
    for fragment in fragments:
        assert fragment in result.failure.message
    assert result.failure.stack_trace and error_type in result.failure.stack_trace
    assert result.new_events[-1] == ExecutionCompleted(status="FAILED", failure=FailureInfo.of(result.failure))


def test_error_raised_after_a_resume_fails_the_orchestration(fresh: bool) -> None:
    def fails_later(ctx: Any) -> Any:
        value = yield ctx.call_activity("a")
        raise BoomError(f"bad value {value}")

    instance = Instance(fails_later)
    instance.start(fresh=fresh)
    result = instance.step(TaskCompleted(task_id=1, result=7), fresh=fresh)
    assert result.outcome == "failed"
    assert result.failure is not None
    assert (result.failure.error_type, result.failure.message) == ("BoomError", "bad value 7")


# -- 11. custom status and plain functions ----------------------------------------------------


def with_status(ctx: Any) -> Any:
    ctx.set_custom_status({"stage": "fetching"})
    yield ctx.call_activity("fetch")
    yield ctx.create_timer(timedelta(minutes=1))
    ctx.set_custom_status({"stage": "done"})
    return "ok"


def test_custom_status_is_reported_with_each_step(fresh: bool) -> None:
    instance = Instance(with_status)
    started = instance.start(fresh=fresh)
    assert (started.custom_status, started.custom_status_changed) == ({"stage": "fetching"}, True)

    unchanged = instance.step(TaskCompleted(task_id=1), fresh=fresh)
    assert (unchanged.custom_status, unchanged.custom_status_changed) == ({"stage": "fetching"}, False)

    done = instance.step(TimerFired(task_id=2, fire_at=at(minutes=1)), at=at(minutes=1), fresh=fresh)
    assert (done.outcome, done.custom_status, done.custom_status_changed) == ("completed", {"stage": "done"}, True)


def test_plain_function_orchestration_completes_at_once() -> None:
    def plain(ctx: Any) -> Any:
        return {"got": ctx.get_input()}

    result = Instance(plain).start({"a": 1})
    assert (result.outcome, result.result) == ("completed", {"got": {"a": 1}})
    assert result.new_events == [ExecutionCompleted(status="COMPLETED", result={"got": {"a": 1}})]


# -- 12. events that start their target, and agents -------------------------------------------


def notifier(ctx: Any) -> Any:
    ctx.send_event("echo-1", "item", {"n": 1}, start=StartIfMissing("echo_back", ctx.instance_id))
    ctx.send_event("echo-2", "item")
    return (yield ctx.wait_for_external_event("answer"))


def test_send_event_with_start_records_what_to_start_in_the_stored_form(fresh: bool) -> None:
    instance = Instance(notifier)
    started = instance.start(fresh=fresh)
    assert started.new_events == [
        EventSent(
            task_id=1, instance_id="echo-1", name="item", data={"n": 1}, start_name="echo_back", start_input="inst-1"
        ),
        EventSent(task_id=2, instance_id="echo-2", name="item"),
    ]
    # Stored histories hold exactly this form; replaying them must keep matching it.
    assert event_to_json(started.new_events[0]) == {
        "type": "EventSent",
        "task_id": 1,
        "instance_id": "echo-1",
        "name": "item",
        "data": {"n": 1},
        "start_name": "echo_back",
        "start_input": "inst-1",
    }
    assert (started.new_events[1].start_name, started.new_events[1].start_input) == (None, None)

    done = instance.step(EventRaised(name="answer", data="pong"), fresh=fresh)
    assert (done.outcome, done.result) == ("completed", "pong")


def test_send_event_refuses_a_start_input_that_is_not_json() -> None:
    def starts_with_an_object(ctx: Any) -> Any:
        ctx.send_event("echo-1", "item", start=StartIfMissing("echo_back", object()))

    result = Instance(starts_with_an_object).start()
    assert result.outcome == "failed"
    assert result.failure is not None
    assert result.failure.error_type == "SerializationError"
    assert "input of 'echo_back' started by event 'item'" in result.failure.message


def classifies(ctx: Any) -> Any:
    response = yield ctx.get_agent("SpamDetector").run("Is this spam?")
    return response.text


def test_get_agent_without_an_agent_factory_fails_with_a_clear_error() -> None:
    result = Instance(classifies).start()
    assert result.outcome == "failed"
    assert result.failure is not None
    assert result.failure.error_type == "ConfigurationError"
    assert "app.get_agent(context, 'SpamDetector')" in result.failure.message

    executor = ReplayExecutor(classifies, "inst-1", max_payload_bytes=1024)
    with pytest.raises(ConfigurationError, match="DurableApp"):
        executor.context.get_agent("SpamDetector")


def test_get_agent_returns_what_the_agent_factory_builds() -> None:
    agent = object()
    asked: list[tuple[Any, str]] = []

    def factory(context: Any, name: str) -> Any:
        asked.append((context, name))
        return agent

    executor = ReplayExecutor(classifies, "inst-1", max_payload_bytes=1024, agent_factory=factory)
    assert executor.context.get_agent("SpamDetector") is agent
    assert asked == [(executor.context, "SpamDetector")]


def test_agent_turn_runs_as_a_child_holding_its_session_and_completes_with_the_reply(fresh: bool) -> None:
    instance = Instance(classifies, agent_factory=OrchestrationAgent)
    started = instance.start(fresh=fresh)
    [marker, child] = started.new_events
    assert isinstance(marker, PatchMarker) and marker.change_id == TURN_AS_CHILD
    assert isinstance(child, SubOrchestrationCreated) and child.name == "durable_agents.agent_turn"
    correlation_id = child.input["correlation_id"]
    assert child.instance_id == f"@turn:{correlation_id}"
    assert (child.input["agent"], child.input["session_lock"], child.input["reply_to"]) == (
        "SpamDetector",
        True,
        "inst-1",
    )
    assert "queue" not in child.input  # this proxy was not told the agent's queue: the worker's registry says
    reply = {"text": "not spam", "correlation_id": correlation_id, "agent": "SpamDetector", "session": "s"}
    done = instance.step(SubOrchestrationCompleted(task_id=child.task_id, result=reply), fresh=fresh)
    assert (done.outcome, done.result) == ("completed", "not spam")


def test_a_turn_recorded_before_turns_were_children_replays_through_the_session() -> None:
    # The ids the code makes are the same on either branch: learn them from a run of the new one.
    probe = Instance(classifies, agent_factory=OrchestrationAgent).start().new_events[1]
    correlation_id, session = probe.input["correlation_id"], probe.input["session"]
    instance = Instance(classifies, agent_factory=OrchestrationAgent)
    sent = EventSent(
        task_id=1, instance_id=f"@agent:SpamDetector:{session}", name="turn", data={"correlation_id": correlation_id},
        start_name="durable_agents.agent_session", start_input={"agent": "SpamDetector", "session": session},
    )  # fmt: skip
    instance.history = [StepStarted(timestamp=T0), ExecutionStarted(name="orch", input=None, execution_id="e1"), sent]
    reply = {"text": "not spam", "correlation_id": correlation_id, "agent": "SpamDetector", "session": session}
    done = instance.step(EventRaised(name=f"agent_response:{correlation_id}", data=reply), fresh=True)
    assert (done.outcome, done.result, done.new_events[-1].type) == ("completed", "not spam", "ExecutionCompleted")
    assert not any(isinstance(event, PatchMarker) for event in instance.history)
