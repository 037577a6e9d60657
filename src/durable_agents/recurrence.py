"""When a schedule fires: a cron expression in a time zone (cronsim), or a fixed interval; pure, no clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from .errors import InvalidScheduleError

#: Where intervals count from when the schedule has no `start_at`: `every=timedelta(hours=1)` fires on the hour.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: The shortest interval: the sweeper looks for due schedules about once a second.
SHORTEST_INTERVAL = timedelta(seconds=1)
#: The nicknames cron itself knows, spelled out.
NICKNAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
CRON_FIELDS = "minute hour day-of-month month day-of-week"
_TICK = timedelta(microseconds=1)


def time_zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`, or InvalidScheduleError saying how to name one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidScheduleError(
            f"unknown time zone {name!r}: give an IANA name like 'UTC', 'Europe/Oslo' or 'America/New_York'"
        ) from None


def checked_cron(expression: str) -> str:
    """`expression` as cronsim reads it (nicknames spelled out), or InvalidScheduleError saying what is wrong."""
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidScheduleError(f"cron must be a cron expression like '0 9 * * MON-FRI', not {expression!r}")
    text = NICKNAMES.get(expression.strip().lower(), expression.strip())
    if len(text.split()) != 5:
        raise InvalidScheduleError(
            f"cron expression {expression!r} has {len(text.split())} fields; it takes 5 ({CRON_FIELDS}), like "
            "'0 9 * * MON-FRI'. For periods under a minute use an interval (every=timedelta(seconds=...), --every 30s)"
        )
    try:
        next(CronSim(text, EPOCH))
    except (CronSimError, StopIteration) as error:
        reason = str(error) or "it never matches"
        raise InvalidScheduleError(
            f"cron expression {expression!r} is not valid ({reason}); the 5 fields are {CRON_FIELDS}, "
            "like '0 9 * * MON-FRI'"
        ) from None
    return text


def checked_interval(every: timedelta) -> timedelta:
    if not isinstance(every, timedelta) or every < SHORTEST_INTERVAL:
        raise InvalidScheduleError(
            f"every must be a timedelta of at least {SHORTEST_INTERVAL.total_seconds():g} second, not {every!r}"
        )
    return every


@dataclass(frozen=True)
class Recurrence:
    """The fire times of a schedule: those of `cron` in `timezone`, or every `every` from `start_at`
    (else from 1970-01-01 UTC); none before `start_at` nor after `end_at`. Times are aware, in UTC."""

    cron: str | None = None
    every: timedelta | None = None
    timezone: str = "UTC"
    start_at: datetime | None = None
    end_at: datetime | None = None

    @classmethod
    def checked(
        cls,
        *,
        cron: str | None,
        every: timedelta | None,
        timezone: str,
        start_at: datetime | None,
        end_at: datetime | None,
    ) -> Recurrence:
        """A recurrence of exactly one of `cron` and `every`, or InvalidScheduleError saying what is wrong."""
        if (cron is None) == (every is None):
            given = "both cron and every" if cron is not None else "neither cron nor every"
            raise InvalidScheduleError(
                f"a schedule takes exactly one of cron= (like '0 9 * * MON-FRI') and every= (a timedelta); "
                f"{given} given"
            )
        time_zone(timezone)
        if start_at is not None and end_at is not None and end_at <= start_at:
            raise InvalidScheduleError(f"end_at {end_at.isoformat()} must be after start_at {start_at.isoformat()}")
        return cls(
            cron=checked_cron(cron) if cron is not None else None,
            every=checked_interval(every) if every is not None else None,
            timezone=timezone,
            start_at=start_at,
            end_at=end_at,
        )

    def next_after(self, moment: datetime) -> datetime | None:
        """The first fire time strictly after `moment`; None when the schedule has ended by then."""
        if self.start_at is not None and moment < self.start_at:
            moment = self.start_at - _TICK
        found = self._cron_after(moment) if self.cron is not None else self._interval_after(moment)
        if found is None or (self.end_at is not None and found > self.end_at):
            return None
        return found

    def at_or_after(self, moment: datetime) -> datetime | None:
        return self.next_after(moment - _TICK)

    def _interval_after(self, moment: datetime) -> datetime:
        assert self.every is not None
        anchor = self.start_at or EPOCH
        if moment < anchor:
            return anchor
        return anchor + ((moment - anchor) // self.every + 1) * self.every

    def _cron_after(self, moment: datetime) -> datetime | None:
        assert self.cron is not None
        local = moment.astimezone(time_zone(self.timezone))
        try:
            return next(CronSim(self.cron, local)).astimezone(UTC)
        except StopIteration:  # an expression that matches no date any more
            return None

    def count_before(self, first: datetime, bound: datetime, cap: int = 10_000) -> int:
        """How many fire times from `first` (one itself) come before `bound`, counting at most `cap`."""
        if self.every is not None:
            return min(cap, max(0, -((first - bound) // self.every)))
        count, moment = 0, first
        while count < cap and moment < bound:
            count += 1
            following = self.next_after(moment)
            if following is None:
                break
            moment = following
        return count

    def describe(self) -> str:
        """The recurrence in words, for people."""
        if self.every is not None:
            return f"every {_duration(self.every)}"
        assert self.cron is not None
        try:
            words = CronSim(self.cron, EPOCH).explain()
        except Exception:  # explaining is a courtesy: an expression it cannot put in words is shown as is
            words = self.cron
        return words if self.timezone == "UTC" else f"{words} ({self.timezone})"


def _duration(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}" if count != 1 else unit
    return f"{seconds:g} seconds" if seconds != 1 else "second"
