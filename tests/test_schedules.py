"""Recurring schedules on real workers: one run per fire time across workers, pause and resume, catch-up
after an outage of every worker, the overlap policies, and clear errors for bad definitions.

The soaks (a minute under SIGKILLs, a 30 s outage) are `python -m bench.schedules`."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from durable_agents import (
    AsyncDurableClient,
    DurableApp,
    DurableClient,
    InvalidScheduleError,
    OrchestrationNotRegisteredError,
    OrchestrationStatus,
    ScheduleExistsError,
    ScheduleNotFoundError,
)
from durable_agents.recurrence import Recurrence
from durable_agents.schedule_policy import plan
from durable_agents.tasks.schedules import fire_schedules

from conftest import Services, WorkerProcess, make_client, new_taskhub, wait_until

SECOND = timedelta(seconds=1)


def runs(client: DurableClient, schedule_id: str) -> dict[datetime, Any]:
    """The schedule's runs started for fire times (not by a trigger), by fire time."""
    found = client.query_instances(tags={"schedule": schedule_id}, limit=1000)
    return {
        datetime.strptime(state.instance_id.split("@")[1], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC): state
        for state in found
        if "@manual-" not in state.instance_id
    }


def consecutive(times: list[datetime]) -> bool:
    return all(later - earlier == SECOND for earlier, later in itertools.pairwise(times))


# -- the policies, on their own ------------------------------------------------------------------------

T0 = datetime(2026, 1, 1, tzinfo=UTC)
EVERY_SECOND = Recurrence(every=SECOND)


def test_after_an_outage_fire_times_inside_the_window_are_caught_up_as_the_overlap_says() -> None:
    # Down from T0 to T0+10s; the window is 3 s: T0+7 .. T0+10 are inside it, T0 .. T0+6 are skipped.
    common = {"next_fire_at": T0, "buffered": None, "catchup_window": 3 * SECOND, "now": T0 + 10 * SECOND}
    allow = plan(EVERY_SECOND, running=False, overlap="allow", **common)  # type: ignore[arg-type]
    assert allow.start == [T0 + n * SECOND for n in (7, 8, 9, 10)]
    assert allow.skipped == 7 and allow.next_fire_at == T0 + 11 * SECOND
    skip = plan(EVERY_SECOND, running=False, overlap="skip", **common)  # type: ignore[arg-type]
    assert skip.start == [T0 + 7 * SECOND] and skip.skipped == 7 + 3
    buffer_one = plan(EVERY_SECOND, running=False, overlap="buffer_one", **common)  # type: ignore[arg-type]
    assert buffer_one.start == [T0 + 7 * SECOND] and buffer_one.buffered == T0 + 8 * SECOND
    busy = plan(EVERY_SECOND, running=True, overlap="skip", **common)  # type: ignore[arg-type]
    assert busy.start == [] and busy.skipped == 11


def test_a_long_catch_up_is_spread_over_sweeps() -> None:
    behind = {"buffered": None, "catchup_window": 3600 * SECOND, "now": T0 + 1000 * SECOND, "running": False}
    first = plan(EVERY_SECOND, next_fire_at=T0, overlap="allow", **behind)  # type: ignore[arg-type]
    assert first.start == [T0 + n * SECOND for n in range(100)] and first.next_fire_at == T0 + 100 * SECOND
    skipping = plan(EVERY_SECOND, next_fire_at=T0, overlap="skip", **behind)  # type: ignore[arg-type]
    assert skipping.start == [T0] and skipping.skipped == 1000 and skipping.next_fire_at == T0 + 1001 * SECOND


def test_a_buffered_fire_time_starts_once_the_running_run_ends() -> None:
    waiting = {"next_fire_at": T0 + 5 * SECOND, "buffered": T0 + 2 * SECOND, "overlap": "buffer_one"}
    held = plan(EVERY_SECOND, running=True, catchup_window=60 * SECOND, now=T0 + 4 * SECOND, **waiting)  # type: ignore[arg-type]
    assert held.start == [] and held.buffered == T0 + 2 * SECOND
    freed = plan(EVERY_SECOND, running=False, catchup_window=60 * SECOND, now=T0 + 4 * SECOND, **waiting)  # type: ignore[arg-type]
    assert freed.start == [T0 + 2 * SECOND] and freed.buffered is None


def test_cron_fire_times_follow_the_time_zone_across_daylight_saving() -> None:
    oslo = Recurrence.checked(cron="0 9 * * MON-FRI", every=None, timezone="Europe/Oslo", start_at=None, end_at=None)
    friday = datetime(2026, 3, 27, 12, tzinfo=UTC)  # the clocks go forward on Sunday 29 March
    monday = oslo.next_after(friday)
    assert monday == datetime(2026, 3, 30, 7, tzinfo=UTC)  # 09:00 CEST
    assert oslo.next_after(datetime(2026, 3, 20, 12, tzinfo=UTC)) == datetime(2026, 3, 23, 8, tzinfo=UTC)  # CET
    ends = Recurrence.checked(cron="@daily", every=None, timezone="UTC", start_at=None, end_at=T0 + 36 * 3600 * SECOND)
    assert ends.next_after(T0) == T0 + 24 * 3600 * SECOND and ends.next_after(T0 + 24 * 3600 * SECOND) is None


# -- bad input -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"cron": "61 9 * * *"}, "cron expression '61 9 \\* \\* \\*' is not valid \\(Bad minute\\)"),
        ({"cron": "* * * * * *"}, "has 6 fields; it takes 5"),
        ({"cron": "0 9 * * *", "timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"cron": "0 9 * * *", "every": SECOND}, "exactly one of cron= .* and every=.*; both cron and every given"),
        ({}, "neither cron nor every given"),
        ({"every": timedelta(milliseconds=10)}, "every must be a timedelta of at least 1 second"),
        ({"every": SECOND, "overlap": "queue"}, "overlap must be one of 'skip', 'buffer_one', 'allow', not 'queue'"),
        ({"every": SECOND, "catchup_window": timedelta(0)}, "catchup_window must be .* at least 1 second"),
        ({"every": SECOND, "start_at": T0, "end_at": T0}, "end_at .* must be after start_at"),
    ],
)
def test_a_bad_definition_is_refused_with_what_to_do(
    services: Services, options: dict[str, Any], expected: str
) -> None:
    client = make_client(services, new_taskhub("sbad"))
    with pytest.raises(InvalidScheduleError, match=expected):
        client.create_schedule("nightly", "plain_function", **options)
    assert client.get_schedule("nightly") is None


def test_unknown_names_and_ids_are_refused(services: Services) -> None:
    client = make_client(services, new_taskhub("sbad"))
    with pytest.raises(OrchestrationNotRegisteredError, match="no orchestration named 'plain_funcion'"):
        client.create_schedule("nightly", "plain_funcion", cron="@daily")
    with pytest.raises(InvalidScheduleError, match="schedule id 'a/b' is not allowed"):
        client.create_schedule("a/b", "plain_function", cron="@daily")
    client.create_schedule("nightly", "plain_function", cron="@daily")
    with pytest.raises(ScheduleExistsError, match="'nightly' is already in use"):
        client.create_schedule("nightly", "plain_function", every=SECOND)
    for act in (client.pause_schedule, client.resume_schedule, client.delete_schedule, client.trigger_schedule):
        with pytest.raises(ScheduleNotFoundError, match="no schedule 'weekly' in task hub"):
            act("weekly")
    with pytest.raises(InvalidScheduleError, match="not both"):
        client.update_schedule("nightly", cron="@hourly", every=SECOND)


# -- on real workers -----------------------------------------------------------------------------------


@pytest.fixture
def client(services: Services, worker: WorkerProcess) -> Iterator[DurableClient]:
    """A client of the shared worker's task hub; the schedules a test leaves (a failed one) are deleted."""
    hub_client = make_client(services, worker.taskhub)
    yield hub_client
    for schedule in hub_client.list_schedules():
        hub_client.delete_schedule(schedule.schedule_id)


def test_every_second_across_two_workers_one_run_per_fire_time_then_pause_resume_and_an_outage(
    client: DurableClient, worker: WorkerProcess, start_worker: Any
) -> None:
    second_worker = start_worker(worker.taskhub)
    schedule = client.create_schedule(
        "tick", "plain_function", input="tick", every=SECOND, overlap="allow", catchup_window=2 * SECOND
    )
    first = schedule.next_fire_at
    assert first is not None
    wait_until(lambda: len(runs(client, "tick")) >= 2, message="two fire times")

    paused = client.pause_schedule("tick")
    fired_before_pause = sorted(runs(client, "tick"))
    assert fired_before_pause[0] == first and consecutive(fired_before_pause), fired_before_pause
    # Nothing fires while paused (the observation window is the point here, not a synchronisation).
    wait_until(lambda: datetime.now(UTC) > paused.updated_at + 2 * SECOND, message="time to pass")
    assert sorted(runs(client, "tick")) == fired_before_pause
    resumed = client.resume_schedule("tick")
    assert resumed.next_fire_at is not None and resumed.next_fire_at >= fired_before_pause[-1] + 2 * SECOND
    wait_until(lambda: len(runs(client, "tick")) >= len(fired_before_pause) + 2, message="runs after resuming")

    # Every worker is stopped (SIGSTOP) for 5 s, then the sweepers catch up as the 2 s window says.
    outage_start = datetime.now(UTC)
    for process in (worker, second_worker):
        process.pause()
    try:
        wait_until(lambda: datetime.now(UTC) > outage_start + 5 * SECOND, message="the outage")
    finally:
        for process in (worker, second_worker):
            process.resume()
    outage_end = datetime.now(UTC)
    wait_until(lambda: max(runs(client, "tick")) > outage_end + SECOND, message="firing after the outage")

    fired = runs(client, "tick")
    after_resume = sorted(t for t in fired if t >= resumed.next_fire_at)
    delays = {t: fired[t].created_at - t for t in after_resume}
    # Nothing older than the window starts (run created at most 2 s after its fire time), and some fire
    # time missed in the outage was caught up (started late, inside the window).
    assert max(delays.values()) <= 2.2 * SECOND, delays
    caught_up = [t for t, delay in delays.items() if delay >= 0.9 * SECOND and fired[t].created_at > outage_end]
    assert caught_up, delays
    # Those older than the window when the sweepers came back are skipped...
    assert not [t for t in fired if outage_start + SECOND < t < outage_end - 2.5 * SECOND]
    assert client.get_schedule("tick").skipped_count >= 1  # type: ignore[union-attr]
    # ...and none is missing before the outage, nor from the first caught-up fire time on.
    assert consecutive([t for t in after_resume if t <= outage_start])
    assert consecutive([t for t in after_resume if t >= min(caught_up)])
    states = wait_until(
        lambda: (s := list(runs(client, "tick").values())) and all(x.runtime_status.is_terminal for x in s) and s,
        message="every run to finish",
    )
    assert {state.runtime_status for state in states} == {OrchestrationStatus.COMPLETED}
    assert {state.output["echo"] for state in states} == {"tick"}
    client.delete_schedule("tick")


def test_overlap_skip_and_buffer_one_wait_for_the_running_run(client: DurableClient) -> None:
    client.create_schedule("skipper", "long_waiter", every=SECOND, overlap="skip")
    client.create_schedule("buffered", "long_waiter", every=SECOND, overlap="buffer_one")
    wait_until(
        lambda: (s := client.get_schedule("skipper")) is not None and s.skipped_count >= 2, message="skipped fires"
    )
    buffered = wait_until(lambda: client.get_schedule("buffered").buffered_fire_at, message="a buffered fire")  # type: ignore[union-attr]
    for schedule_id in ("skipper", "buffered"):
        assert len(runs(client, schedule_id)) == 1  # the first run still waits: no second one started
    client.pause_schedule("skipper")
    for schedule_id in ("skipper", "buffered"):
        client.terminate(next(iter(runs(client, schedule_id).values())).instance_id)
    # The buffered fire time starts once its predecessor ended, however long ago it was due.
    wait_until(lambda: buffered in runs(client, "buffered"), message="the buffered run")
    assert len(runs(client, "buffered")) == 2
    # Paused, the skipper started nothing. A trigger follows the policy: it starts a run while none runs,
    # and is skipped while the run it started runs.
    wait_until(lambda: all(s.runtime_status.is_terminal for s in runs(client, "skipper").values()))
    assert len(runs(client, "skipper")) == 1
    started = client.trigger_schedule("skipper")
    assert started is not None and started.startswith("skipper@manual-")
    assert client.trigger_schedule("skipper") is None
    for schedule_id in ("skipper", "buffered"):
        client.delete_schedule(schedule_id)
    for state in client.query_instances(statuses=["RUNNING", "PENDING"], name="long_waiter", limit=100):
        client.terminate(state.instance_id)


def test_update_trigger_and_the_async_client(services: Services, worker: WorkerProcess) -> None:
    import workflows

    async def scenario() -> None:
        client = AsyncDurableClient(
            workflows.app, taskhub=worker.taskhub, database_url=services.database_url, redis_url=services.redis_url
        )
        created = await client.create_schedule(
            "yearly", "plain_function", input=1, cron="0 0 1 1 *", timezone="Asia/Tokyo"
        )
        assert created.next_fire_at is not None and created.next_fire_at.astimezone(UTC).hour == 15  # 00:00 JST
        assert created.description.endswith("(Asia/Tokyo)")
        updated = await client.update_schedule("yearly", every=timedelta(hours=6), input={"n": 2})
        assert updated.cron is None and updated.every == timedelta(hours=6) and updated.input == {"n": 2}
        assert updated.next_fire_at is not None and updated.next_fire_at.hour % 6 == 0
        run = await client.trigger_schedule("yearly")
        state = await client.wait_for_orchestration_completion(run, timeout=30)
        assert state.output == {"echo": {"n": 2}} and state.tags == {"schedule": "yearly"}
        assert [s.schedule_id for s in await client.list_schedules()].count("yearly") == 1
        await client.delete_schedule("yearly")
        assert await client.get_schedule("yearly") is None

    asyncio.run(scenario())


def test_a_sqlite_store_keeps_and_fires_schedules_and_one_that_cannot_fire_holds_up_no_other(
    sqlite_services: Services,
) -> None:
    from sqlalchemy import update

    from durable_agents.models import ScheduleRow
    from durable_agents.store.db import transaction

    import workflows

    app = DurableApp("sqlite_schedules", database_url=sqlite_services.database_url, redis_url=sqlite_services.redis_url)
    app.registry = workflows.app.registry
    client = DurableClient(app, taskhub=new_taskhub("sqlite"))
    client.create_schedule("broken", "plain_function", cron="* * * * *", timezone="Europe/Oslo")
    client.create_schedule("often", "plain_function", every=SECOND, overlap="allow")
    with transaction(sqlite_services.database_url) as session:  # as if the zone vanished from the system
        session.execute(
            update(ScheduleRow)
            .where(ScheduleRow.schedule_id == "broken")
            .values(timezone="Mars/Olympus", next_fire_at=datetime.now(UTC) - SECOND)
        )
    wait_until(lambda: fire_schedules(client.app) > 0, message="a due fire time")
    fired = runs(client, "often")
    assert len(fired) >= 1 and client.get_schedule("often").last_fire_at == max(fired)  # type: ignore[union-attr]
    assert client.get_schedule("broken").fired_count == 0  # type: ignore[union-attr]
