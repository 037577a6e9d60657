"""Serving an app in the foreground: what `durable-agents worker` and `app.start()` (the reference's
`worker.start()`) run, in embedded mode or as a Celery worker on PostgreSQL and Redis."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from celery.signals import worker_shutdown, worker_shutting_down

from .celery_config import check_celery_config, resolve_queues
from .config import ROLES
from .embedded import serve
from .errors import ConfigurationError
from .logs import json_logs_wanted
from .startup import wait_for_services
from .telemetry.setup import configure_tracing

if TYPE_CHECKING:
    from .app import DurableApp

#: Celery's worker pools.
POOLS = ("prefork", "threads", "solo", "gevent", "eventlet", "processes")
#: Slots of the thread pool a worker gets by default when it serves agents: their turns wait on the model
#: most of the time, so many run at once on few cores.
AGENT_POOL_SLOTS = 64


def default_pool(app: DurableApp, roles: list[str], concurrency: int | None) -> tuple[str, int | None]:
    """The pool and slots of a worker given neither: a thread pool of AGENT_POOL_SLOTS for a worker that
    serves the agents queue of an app with agents (I/O-bound), else Celery's prefork (slots = cores)."""
    if app.agents and app.settings.queue("agents") in roles:
        return "threads", concurrency or AGENT_POOL_SLOTS
    return "prefork", concurrency


def run_worker(
    app: DurableApp,
    *,
    spec: str | None = None,
    queues: str | None = None,
    concurrency: int | None = None,
    pool: str | None = None,
    loglevel: str = "INFO",
    hostname: str | None = None,
    events: bool = False,
) -> int:
    """Serve `app` in the foreground until Ctrl-C or SIGTERM; returns the worker's exit status.

    Without DATABASE_URL and REDIS_URL this serves the SQLite file of the working directory (embedded
    mode; `queues`, `pool` and `events` then do not apply)."""
    configure_tracing()  # here, so that a wrong OTEL_TRACES_EXPORTER is one line, not a worker's traceback
    if app.settings.embedded:
        serve(app, spec or os.path.basename(sys.argv[0] or "app"), concurrency=concurrency)
        return 0
    if pool is not None and pool not in POOLS:
        raise ConfigurationError(f"--pool {pool!r} is not a Celery pool; use one of {', '.join(POOLS)}")
    names = [q.strip() for q in (queues or ",".join(ROLES)).split(",") if q.strip()]
    if not names:
        raise ConfigurationError(f"--queues names no queue; use roles ({', '.join(ROLES)}) or queue names")
    check_celery_config(app)  # here too, for a one-line error before Celery starts
    resolved = resolve_queues(app, names)
    # While PostgreSQL or Redis does not answer: one line per attempt naming it, with backoff, then start.
    wait_for_services(app.settings)
    if pool is None:
        pool, concurrency = default_pool(app, resolved, concurrency)
    argv = ["worker", "-Q", ",".join(resolved), "--pool", pool, "--loglevel", loglevel]
    if json_logs_wanted():  # a misspelt DURABLE_AGENTS_LOG_FORMAT is refused here
        argv.insert(0, "--quiet")  # no banner: every line is a JSON object
    if events:
        argv.append("-E")
    if concurrency:
        argv += ["--concurrency", str(concurrency)]
    if hostname:
        argv += ["--hostname", hostname]
    # Celery's worker_main drops the worker's exit status; a worker that cannot start must not exit 0,
    # or a supervisor takes it for a clean stop. The worker reports it with its shutdown signal.
    # Celery exits 1 after the warm shutdown that Ctrl-C asks for; it is a clean stop, and says 0.
    exit_codes: list[int] = []
    stopped_by: list[str] = []

    def remember(sender: Any, **_: Any) -> None:
        exit_codes.append(getattr(sender, "exitcode", None) or 0)

    def remember_signal(sig: str = "", how: str = "", **_: Any) -> None:
        stopped_by.append(f"{how} {sig}")

    worker_shutdown.connect(remember, weak=False)
    worker_shutting_down.connect(remember_signal, weak=False)
    try:
        app.worker_main(argv)
    finally:
        worker_shutdown.disconnect(remember)
        worker_shutting_down.disconnect(remember_signal)
    if stopped_by == ["Warm SIGINT"]:
        return 0
    return exit_codes[-1] if exit_codes else 0
