"""Worker presence: a worker registers what it serves, heartbeats while it runs, and leaves on a clean stop."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Collection
from typing import TYPE_CHECKING

from ..store import workers
from ..store.db import transaction
from ..store.workers import WorkerRecord

if TYPE_CHECKING:
    from ..app import DurableApp

log = logging.getLogger(__name__)


def worker_record(app: DurableApp, queues: Collection[str], node_name: str) -> WorkerRecord:
    """The worker's record: a name counts as served only if the worker consumes the queue it runs on."""
    from .. import __version__

    settings = app.settings
    orchestrations = sorted(app.registry.orchestrations) if settings.queue("orchestrator") in queues else []
    activities = sorted(
        name for name, spec in app.registry.activities.items() if settings.queue(spec.queue_role) in queues
    )
    agents = sorted(app.agents) if settings.queue("agents") in queues else []
    return WorkerRecord(
        worker_id=uuid.uuid4().hex,
        node_name=node_name,
        host=socket.gethostname(),
        pid=os.getpid(),
        version=__version__,
        queues=tuple(sorted(queues)),
        orchestrations=tuple(orchestrations),
        activities=tuple(activities),
        agents=tuple(agents),
        runs_sweeper=app.run_sweeper,
    )


class PresenceThread(threading.Thread):
    """Registers the worker at once, then heartbeats (and forgets long-dead workers) every interval."""

    def __init__(self, app: DurableApp, record: WorkerRecord) -> None:
        super().__init__(name="durable-agents-presence", daemon=True)
        self._app = app
        self.record = record
        self._stop_event = threading.Event()

    def start(self) -> None:
        # Synchronously, so a worker that says it is ready is already listed.
        with transaction(self._app.settings.database_url) as session:
            workers.register(session, self._app.settings.taskhub, self.record, self._app.settings.worker_timeout)
        super().start()

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
