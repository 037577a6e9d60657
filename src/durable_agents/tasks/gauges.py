"""Levels read when `/metrics` is scraped: instances by status (PostgreSQL) and queue depth (Redis)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from ..config import ROLES
from ..connections import redis_client
from ..state import OrchestrationStatus
from ..store.census import instances_by_status
from ..store.db import single_statement
from ..telemetry.metrics import PREFIX

if TYPE_CHECKING:
    from ..config import Settings

log = logging.getLogger(__name__)


class Levels(Collector):
    """Read at each scrape, so that every process serving `/metrics` reports the same levels; a service
    that does not answer leaves its family out of that scrape, never the scrape itself."""

    def __init__(self, settings: Settings, queues: Callable[[], Sequence[str]] | None = None) -> None:
        self._settings = settings
        #: The short names of the queues whose depth is reported (asked at each scrape: what the app's
        #: registry names by then); the three roles' without an app.
        self._queues = queues or (lambda: ROLES)

    def collect(self) -> Iterator[Metric]:
        settings = self._settings
        try:
            with single_statement(settings.database_url) as session:
                counts = instances_by_status(session, settings.taskhub)
        except Exception as error:
            log.warning("metrics: cannot count instances (%s)", error)
        else:
            family = GaugeMetricFamily(f"{PREFIX}_instances", "Instances of the task hub by status.", labels=["status"])
            for status in OrchestrationStatus:
                family.add_metric([status.value], counts.get(status.value, 0))
            yield family
        if settings.embedded:
            return  # the in-memory broker's queues live in the worker's process
        try:
            depths = _queue_depths(settings, self._queues())
        except Exception as error:
            log.warning("metrics: cannot read queue depths (%s)", error)
            return
        family = GaugeMetricFamily(f"{PREFIX}_queue_depth", "Messages waiting in each queue.", labels=["queue"])
        for queue, depth in depths.items():
            family.add_metric([queue], depth)
        yield family


def _queue_depths(settings: Settings, queues: Sequence[str]) -> dict[str, int]:
    """Kombu's Redis transport keeps a queue as a list under its name (and one per priority step)."""
    client = redis_client(settings, settings.effective_broker_url, socket_timeout=2)
    try:
        names = [settings.queue(queue) for queue in queues]
        pipe = client.pipeline(transaction=False)
        for name in names:
            pipe.llen(name)
        return dict(zip(names, (int(n) for n in pipe.execute()), strict=True))
    finally:
        client.close()
