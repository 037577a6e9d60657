"""Retry policies for activities and sub-orchestrations; the waits between attempts are durable timers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a failed activity or sub-orchestration.

    The wait before attempt n (n >= 2) is `first_retry_interval * backoff_coefficient ** (n - 2)`,
    capped at `max_retry_interval`. No attempt starts after `retry_timeout` has passed since the
    first one.
    """

    first_retry_interval: timedelta
    max_number_of_attempts: int
    backoff_coefficient: float = 1.0
    max_retry_interval: timedelta | None = None
    retry_timeout: timedelta | None = None

    def __post_init__(self) -> None:
        if self.first_retry_interval <= timedelta(0):
            raise ValueError(f"first_retry_interval must be positive, got {self.first_retry_interval}")
        if self.max_number_of_attempts < 1:
            raise ValueError(
                f"max_number_of_attempts must be at least 1 (the first attempt counts), "
                f"got {self.max_number_of_attempts}"
            )
        if self.backoff_coefficient < 1.0:
            raise ValueError(f"backoff_coefficient must be >= 1.0, got {self.backoff_coefficient}")
        if self.max_retry_interval is not None and self.max_retry_interval < self.first_retry_interval:
            raise ValueError("max_retry_interval must not be shorter than first_retry_interval")

    def delay_before(self, attempt: int) -> timedelta:
        """The wait before attempt number `attempt` (2 for the first retry)."""
        seconds = self.first_retry_interval.total_seconds() * self.backoff_coefficient ** (attempt - 2)
        delay = timedelta(seconds=seconds)
        if self.max_retry_interval is not None:
            delay = min(delay, self.max_retry_interval)
        return delay
