"""Routing steps by version: each versioned worker's own step queue, and where a rejected step goes."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from ..config import Settings
from ..orchestrator.versions import compare_versions, runs
from ..store import workers
from ..store.db import single_statement

if TYPE_CHECKING:
    from ..app import DurableApp

log = logging.getLogger(__name__)


def version_queue(settings: Settings, version: str) -> str:
    """The step queue only workers of `version` consume, beside the task hub's orchestrator queue."""
    return f"{settings.queue('orchestrator')}@{version}"


class VersionRouter:
    """Where a step this worker will not run goes: the version queue of a live worker that runs the
    instance's version, read from the worker registry at most once per heartbeat interval. None while
    no such worker is live: the step is then left in the database, and the sweeper's wake-up (once per
    `redispatch_after`) brings it back until one is, so nothing piles up in a queue nobody reads."""

    def __init__(self, app: DurableApp) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._live: list[tuple[str | None, str, tuple[str, ...]]] = []
        self._read_at = -float("inf")

    def queue_for(self, version: str | None) -> str | None:
        queue = self._choose(version, self._read(self._app.settings.heartbeat_interval))
        if queue is None:  # a worker that has just started is wanted at once: read again, if not just read
            queue = self._choose(version, self._read(min(self._app.settings.heartbeat_interval, 1.0)))
        return queue

    def _read(self, fresh_for: float) -> list[tuple[str | None, str, tuple[str, ...]]]:
        settings = self._app.settings
        with self._lock:
            if time.monotonic() - self._read_at >= fresh_for:
                try:
                    with single_statement(settings.database_url) as session:
                        self._live = workers.live_versions(session, settings.taskhub)
                except Exception:
                    log.warning("could not read the worker registry; a rejected step waits for the sweeper")
                    self._live = []
                self._read_at = time.monotonic()
            return list(self._live)

    def _choose(self, version: str | None, live: list[tuple[str | None, str, tuple[str, ...]]]) -> str | None:
        settings = self._app.settings
        # The closest version first: the worker of the instance's own version, when there is one.
        candidates = sorted(
            (worker_version for worker_version, match, queues in live if worker_version is not None
             and runs(match, worker_version, version) and version_queue(settings, worker_version) in queues),
            key=lambda worker_version: abs(compare_versions(worker_version, version)),
        )  # fmt: skip
        return version_queue(settings, candidates[0]) if candidates else None
