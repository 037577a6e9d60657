"""Embedded mode: the worker as a thread of your own program, on the in-memory broker and a SQLite file.

It is what runs when neither DATABASE_URL nor REDIS_URL is set. The engine, the history and the
guarantees are the same as with separate workers; what one process cannot give is scale and a second
host. Instances left unfinished when the program exits continue the next time it runs.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import sys
import threading
from typing import TYPE_CHECKING, Any

from .celery_config import hub_queue_names
from .errors import ConfigurationError
from .store.schema import upgrade

if TYPE_CHECKING:
    from .app import DurableApp

#: Worker slots of the embedded worker: enough for fan-out and a few slow tools at once.
EMBEDDED_CONCURRENCY = 8
#: How long a program's exit waits for the embedded worker's running tasks before leaving them to
#: their leases (they run again next time).
STOP_TIMEOUT_SECONDS = 5.0

#: How long work written by another process waits for a served embedded worker's sweeper to find it.
SERVE_PICKUP_SECONDS = 1.0

#: The embedded worker of this process, by task hub (one at most: see `ensure_worker`).
_workers: dict[str, EmbeddedWorker] = {}
_lock = threading.Lock()


def banner(database_url: str) -> str:
    from sqlalchemy.engine import make_url

    path = make_url(database_url).database or database_url
    return (
        "durable-agents: embedded development mode, a single process.\n"
        f"  store: SQLite file {path}; broker and streams: in memory; worker: a thread of this program.\n"
        "  For production, set DATABASE_URL (PostgreSQL) and REDIS_URL (Redis) and run "
        "`durable-agents worker MODULE:app`."
    )


class EmbeddedWorker:
    """A Celery worker (threads pool) consuming this task hub's queues inside the current process."""

    def __init__(self, app: DurableApp, concurrency: int = EMBEDDED_CONCURRENCY) -> None:
        self.app = app
        self._ready = threading.Event()
        self._controller: Any = app.WorkController(
            hostname=f"embedded-{os.getpid()}@{socket.gethostname()}",
            pool_cls="threads",
            concurrency=concurrency,
            # Every queue of the hub, those activities name too: one process serves it all.
            queues=[app.settings.queue(name) for name in hub_queue_names(app)],
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
            ready_callback=lambda _consumer: self._ready.set(),
        )
        self._controller.durable_agents_embedded = True  # lets the worker start-up step know it is allowed
        self._thread = threading.Thread(target=self._run, name="durable-agents-embedded-worker", daemon=True)
        self._failure: BaseException | None = None
        self._stopped = False

    def _run(self) -> None:
        try:
            self._controller.start()
        except BaseException as error:  # reported by start(); a daemon thread has nobody else to tell
            self._failure = error
        finally:
            self._stopped = True
            self._ready.set()  # a worker that stopped before it was ready must not leave start() waiting

    def start(self, timeout: float = 60.0) -> None:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise ConfigurationError(f"the embedded worker did not start within {timeout:g}s")
        if self._stopped:
            reason = self._failure or "see the log above"
            raise ConfigurationError(f"the embedded worker could not start: {reason}") from self._failure

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        # Stopping waits for running tasks; a long tool must not hold the program's exit for good.
        stopper = threading.Thread(target=self._controller.stop, kwargs={"in_sighandler": False}, daemon=True)
        stopper.start()
        stopper.join(STOP_TIMEOUT_SECONDS)


def separate_worker_refused() -> ConfigurationError:
    """The error for `celery -A module worker` started with embedded settings: its broker is in memory."""
    return ConfigurationError(
        "a Celery worker needs a shared broker, and none is configured: without DATABASE_URL and REDIS_URL, "
        "run `durable-agents worker MODULE:app`, which serves the SQLite file of this folder, or set "
        "DATABASE_URL (PostgreSQL) and REDIS_URL (Redis) to run Celery workers."
    )


def serve(app: DurableApp, spec: str, *, concurrency: int | None = None) -> None:
    """`durable-agents worker MODULE:app` in embedded mode: run the app's worker in the foreground on the
    SQLite file until Ctrl-C or SIGTERM, for instances that other processes (the CLI) start or signal."""
    settings = app.settings
    if "redispatch_after" not in settings.model_fields_set:
        # Other processes cannot wake this one through its in-memory broker; its sweeper finds their
        # work instead, as soon as it has waited this long.
        settings.redispatch_after = SERVE_PICKUP_SECONDS
    with _lock:
        if _workers:
            raise ConfigurationError("this process already runs an embedded worker")
        upgrade(settings.database_url)
        app.set_default()
        worker = EmbeddedWorker(app, concurrency or EMBEDDED_CONCURRENCY)
        worker.start()
        _workers[settings.taskhub] = worker
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(serving_banner(settings.database_url, spec), file=sys.stderr, flush=True)
    try:
        while worker.running and not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        worker.stop()
        _workers.pop(settings.taskhub, None)


def serving_banner(database_url: str, spec: str) -> str:
    from sqlalchemy.engine import make_url

    path = make_url(database_url).database or database_url
    return (
        f"durable-agents: serving {spec} in embedded mode, on the SQLite file {path}.\n"
        f"  Instances that `durable-agents start` and your programs create in this folder run here "
        f"(picked up within {SERVE_PICKUP_SECONDS + 1:g} s). Ctrl-C stops.\n"
        "  For production, set DATABASE_URL (PostgreSQL) and REDIS_URL (Redis)."
    )


def ensure_worker(app: DurableApp, *, quiet: bool = False) -> EmbeddedWorker:
    """Start the embedded worker of `app`'s task hub once per process (migrating the SQLite file first)."""
    settings = app.settings
    if not settings.embedded:
        raise ConfigurationError(
            "an embedded worker needs embedded mode: unset DATABASE_URL and REDIS_URL, "
            "or run workers with `durable-agents worker MODULE:app`"
        )
    with _lock:
        worker = _workers.get(settings.taskhub)
        if worker is not None and worker.app.registry is app.registry:
            return worker
        if _workers:
            (running,) = _workers.values()
            raise ConfigurationError(
                f"this process already runs the embedded worker of another app (task hub "
                f"{running.app.settings.taskhub!r}); embedded mode runs one app per process: pass the same "
                "DurableApp to every client, or set DATABASE_URL and REDIS_URL to run separate workers"
            )
        upgrade(settings.database_url)
        if not quiet:
            print(banner(settings.database_url), file=sys.stderr, flush=True)
        # Celery's thread pool finds tasks through the default app; here there is only this one.
        app.set_default()
        worker = EmbeddedWorker(app)
        worker.start()
        _workers[settings.taskhub] = worker
        atexit.register(worker.stop)
        return worker
