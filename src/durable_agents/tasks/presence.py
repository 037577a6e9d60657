"""Worker presence: a worker registers what it serves, heartbeats while it runs, and leaves on a clean stop."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Collection
from typing import TYPE_CHECKING

from .. import __version__, ids
from ..startup import when_reachable
from ..store import workers
from ..store.db import single_statement, transaction
from ..store.workers import WorkerRecord

if TYPE_CHECKING:
    from ..app import DurableApp

log = logging.getLogger(__name__)


def worker_record(app: DurableApp, queues: Collection[str], node_name: str, concurrency: int) -> WorkerRecord:
    """The worker's record: a name counts as served only if the worker consumes the queue it runs on."""
    settings = app.settings
    orchestrations = sorted(
        name for name, spec in app.registry.orchestrations.items() if settings.queue(spec.queue_role) in queues
    )
    activities = sorted(
        name for name, spec in app.registry.activities.items() if settings.queue(spec.queue_role) in queues
    )
    agents = sorted(name for name, agent in app.agents.items() if settings.queue(agent.queue_role) in queues)
    return WorkerRecord(
        worker_id=ids.new_worker_id(),
        node_name=node_name,
        host=socket.gethostname(),
        pid=os.getpid(),
        version=__version__,
        queues=tuple(sorted(queues)),
        orchestrations=tuple(orchestrations),
        activities=tuple(activities),
        agents=tuple(agents),
        runs_sweeper=app.run_sweeper,
        concurrency=concurrency,
        code_version=app.version,
        version_match=app.versioning.match,
    )


class PresenceThread(threading.Thread):
    """Registers the worker at once, then heartbeats (and forgets long-dead workers) every interval."""

    def __init__(self, app: DurableApp, record: WorkerRecord) -> None:
        super().__init__(name="durable-agents-presence", daemon=True)
        self._app = app
        self.record = record
        self._stop_event = threading.Event()

    def start(self) -> None:
        # Synchronously, so a worker that says it is ready is already listed; a database blip at start-up
        # delays the worker instead of killing it.
        when_reachable("registering the worker", self._register)
        super().start()

    def _register(self) -> None:
        settings = self._app.settings
        with transaction(settings.database_url) as session:
            workers.register(session, settings.taskhub, self.record, settings.worker_timeout)

    def run(self) -> None:
        settings = self._app.settings
        while not self._stop_event.wait(settings.heartbeat_interval):
            try:
                with transaction(settings.database_url) as session:
                    workers.heartbeat(session, settings.taskhub, self.record, settings.worker_timeout)
                    workers.forget_dead(session, settings.taskhub)
            except Exception:
                log.exception("worker heartbeat failed; retrying in %ss", settings.heartbeat_interval)

    def stop(self) -> None:
        """Stop heartbeating and remove the worker's row (a crashed worker's row expires instead)."""
        self._stop_event.set()
        self.join(timeout=5)
        try:
            with transaction(self._app.settings.database_url) as session:
                workers.deregister(session, self._app.settings.taskhub, self.record.worker_id)
        except Exception:
            log.exception("could not remove this worker's row; it expires by itself")


class SlotCensus:
    """Live worker slots per queue, read from the registry at most once per heartbeat interval (the
    registry changes no faster), to size a fan-out's drainers."""

    def __init__(self, app: DurableApp) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._slots: dict[str, int] = {}
        self._read_at = -float("inf")

    def slots(self, queue: str) -> int:
        """How many tasks the live workers consuming `queue` run at once (0 when none is known)."""
        settings = self._app.settings
        with self._lock:
            if time.monotonic() - self._read_at >= settings.heartbeat_interval:
                try:
                    with single_statement(settings.database_url) as session:
                        self._slots = workers.slots_by_queue(session, settings.taskhub)
                except Exception:
                    log.warning("could not read the worker registry; sizing fan-outs without it", exc_info=True)
                    self._slots = {}
                self._read_at = time.monotonic()
            return self._slots.get(queue, 0)
