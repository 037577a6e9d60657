"""The worker's start-up step: checks settings and queues, registers the worker, runs the sweeper, hands back leases."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from celery import bootsteps
from sqlalchemy.orm import configure_mappers

from .celery_config import check_celery_config, hub_queue_names, resolve_queues
from .embedded import separate_worker_refused
from .errors import ConfigurationError
from .startup import wait_for_services
from .tasks.handback import Handback
from .tasks.observability import WorkerTelemetry
from .tasks.presence import PresenceThread, worker_record
from .tasks.sweeper import SweeperThread
from .tasks.versions import version_queue

if TYPE_CHECKING:
    from .app import DurableApp

log = logging.getLogger(__name__)


class DurableWorkerStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """Refuses to start against a wrong schema; registers the worker (with heartbeats) and runs the
    sweeper thread inside it; on shutdown, hands back the leases of what it will not finish."""

    #: After the pool: its threads start only once the pool has forked its children, and it stops
    #: before the pool does, so the grace period runs while the pool waits for its tasks.
    requires = ("celery.worker.components:Pool",)

    def __init__(self, worker: Any, **options: Any) -> None:
        super().__init__(worker, **options)
        self.sweeper: SweeperThread | None = None
        self.presence: PresenceThread | None = None
        self.handback = Handback(worker.app)
        self.telemetry = WorkerTelemetry(worker.app.settings, lambda: hub_queue_names(worker.app))
        # Configured here, in the parent, so that no forked child has to configure them: a child forked
        # while another thread held SQLAlchemy's configure lock would wait for it forever.
        configure_mappers()
        # Here, not in start(): the prefork pool may fork its children before this step starts,
        # and they must inherit the queues to run work eagerly.
        app: DurableApp = worker.app
        try:
            check_celery_config(app)
            chosen = app.amqp.queues.consume_from
            if chosen:  # `-Q`: short names of this hub's queues get its prefix (`celery worker -Q gpu` too)
                resolved = resolve_queues(app, list(chosen))
                if resolved != list(chosen):
                    app.amqp.queues.select(resolved)
        except ConfigurationError as error:  # `celery worker` would print a traceback: one line instead
            raise SystemExit(f"error: {error}") from None
        consumed = app.amqp.queues.consume_from or app.amqp.queues
        if app.version is not None and app.settings.queue("orchestrator") in consumed:
            # Steps another worker's versioning turned away reach a worker of this version here.
            app.amqp.queues.select_add(version_queue(app.settings, app.version))
            consumed = app.amqp.queues.consume_from
        app.local_queues = set(consumed)

    def start(self, worker: Any) -> None:
        app: DurableApp = worker.app
        if app.settings.embedded and not getattr(worker, "durable_agents_embedded", False):
            raise separate_worker_refused()  # `celery -A module worker` with embedded settings
        # Again here (the CLI waited already): `celery -A` starts here, and a database blip between the two
        # must not kill a worker that is starting.
        wait_for_services(app.settings)
        assert app.local_queues is not None
        self.presence = PresenceThread(app, worker_record(app, app.local_queues, worker.hostname, worker.concurrency))
        self.presence.start()
        self.telemetry.start()
        if app.run_sweeper:
            self.sweeper = SweeperThread(app)
            self.sweeper.start()
        log.info(
            "durable-agents worker for task hub %r: %d orchestrations, %d activities, version %s (match %s)",
            app.settings.taskhub,
            len(app.registry.orchestrations),
            len(app.registry.activities),
            app.version or "none",
            app.versioning.match,
        )

    def stop(self, worker: Any) -> None:
        self.handback.after_grace()
        self.telemetry.stop()
        if self.sweeper is not None:
            self.sweeper.stop()
            self.sweeper = None
        if self.presence is not None:
            self.presence.stop()
            self.presence = None

    def terminate(self, worker: Any) -> None:
        # A cold shutdown (a second SIGTERM, SIGQUIT) ends the running tasks: their leases go back now,
        # and the registry is left tidy.
        self.handback.now()
        self.stop(worker)
