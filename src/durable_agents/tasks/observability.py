"""A worker's telemetry: tracing set up from the environment, and its `/metrics` port, in the pool's parent."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..telemetry.exposition import prepare_multiprocess, serve
from ..telemetry.setup import configure_tracing
from .gauges import Levels

if TYPE_CHECKING:
    from ..config import Settings

log = logging.getLogger(__name__)


class WorkerTelemetry:
    """Prepared before the pool forks (its children inherit the tracer and the metrics directory), served
    once the worker starts, closed when it stops."""

    def __init__(self, settings: Settings, queues: Callable[[], Sequence[str]] | None = None) -> None:
        self._settings = settings
        self._queues = queues
        self._server: Any = None
        configure_tracing()
        if settings.metrics_port is not None:
            prepare_multiprocess()

    def start(self) -> None:
        port = self._settings.metrics_port
        if port is None:
            return
        self._server, _thread = serve(port, [Levels(self._settings, self._queues)])
        log.info("metrics at http://0.0.0.0:%d/metrics", port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
