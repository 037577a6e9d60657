"""What a due schedule does now: which fire times start a run, which wait, which are skipped; pure, no clock.

The rules are Temporal's. Each missed fire time still inside the catch-up window is taken in order, as
if it had come on time, and the overlap policy decides it: `allow` starts a run for each; `skip` starts
one only while no earlier run is running (so after an outage, the earliest fire time in the window
starts and the rest find it running); `buffer_one` keeps one fire time to start as soon as the running
run ends (later ones are skipped while one waits). Fire times older than the window are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, get_args

from .errors import InvalidScheduleError
from .recurrence import Recurrence

Overlap = Literal["skip", "buffer_one", "allow"]
OVERLAPS: tuple[str, ...] = get_args(Overlap)
#: Temporal's default: a schedule catches up on what it missed within a year.
DEFAULT_CATCHUP_WINDOW = timedelta(days=365)
#: Shorter than this, a fire time the sweeper meets a moment late would count as missed.
SHORTEST_CATCHUP_WINDOW = timedelta(seconds=1)
#: Fire times one schedule starts in one sweep, and fire times it looks at; the rest wait for the next
#: sweep (a long catch-up, or a minutely cron skipped for a week while a run ran).
MOST_PER_SWEEP = 100
MOST_LOOKED_AT_PER_SWEEP = 10_000


def checked_overlap(overlap: str) -> Overlap:
    if overlap not in OVERLAPS:
        raise InvalidScheduleError(f"overlap must be one of {', '.join(map(repr, OVERLAPS))}, not {overlap!r}")
    return overlap  # type: ignore[return-value]


def checked_catchup_window(window: timedelta) -> timedelta:
    if not isinstance(window, timedelta) or window < SHORTEST_CATCHUP_WINDOW:
        raise InvalidScheduleError(
            f"catchup_window must be a timedelta of at least {SHORTEST_CATCHUP_WINDOW.total_seconds():g} second, "
            f"not {window!r}"
        )
    return window


@dataclass
class Plan:
    """What one sweep does for one schedule."""

    #: Fire times to start a run for, oldest first.
    start: list[datetime] = field(default_factory=list)
    #: The fire time waiting for the running run to end (buffer_one), after this sweep.
    buffered: datetime | None = None
    #: Fire times passed over: older than the catch-up window, or refused by the overlap policy.
    skipped: int = 0
    #: The next fire time still to come after this sweep; None once the schedule has ended.
    next_fire_at: datetime | None = None


def plan(
    times: Recurrence,
    *,
    next_fire_at: datetime | None,
    buffered: datetime | None,
    running: bool,
    overlap: Overlap,
    catchup_window: timedelta,
    now: datetime,
) -> Plan:
    """The plan at `now` of a schedule whose next fire time is `next_fire_at`, with `buffered` waiting
    and its last run `running` or not."""
    result = Plan(buffered=buffered, next_fire_at=next_fire_at)
    if result.buffered is not None and not running:
        result.start.append(result.buffered)
        result.buffered, running = None, True
    moment = next_fire_at
    earliest = now - catchup_window
    if moment is not None and moment < earliest:
        result.skipped += times.count_before(moment, earliest)
        moment = times.at_or_after(earliest)
    for _ in range(MOST_LOOKED_AT_PER_SWEEP):
        if moment is None or moment > now or len(result.start) >= MOST_PER_SWEEP:
            break
        if overlap == "allow" or not running:
            result.start.append(moment)
            running = True
        elif overlap == "buffer_one" and result.buffered is None:
            result.buffered = moment
        else:
            result.skipped += 1
        moment = times.next_after(moment)
    result.next_fire_at = moment
    return result
