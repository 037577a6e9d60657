"""Serving the metrics: `/metrics` text for the API's route and a worker's port, under the prefork pool too."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from ..errors import ConfigurationError
from .metrics import _made

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess() -> str:
    """Make the processes this one forks count into one directory its `/metrics` adds up; the directory.
    Call before any metric is made (a worker does, before its pool forks): values made earlier would
    stay in this process."""
    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        directory = tempfile.mkdtemp(prefix="durable-agents-metrics-")
        os.environ[MULTIPROC_ENV] = directory
        # Removed when this process exits, after its pool: a child still writing keeps an open file.
        atexit.register(_remove_if_mine, directory, os.getpid())
    elif not os.path.isdir(directory):
        raise ConfigurationError(f"{MULTIPROC_ENV}={directory} is not a directory; create it or unset it")
    if _made.cache_info().currsize:
        raise ConfigurationError(
            f"metrics were counted before {MULTIPROC_ENV} was chosen; set it before the worker starts"
        )
    return directory


def _remove_if_mine(directory: str, creator: int) -> None:
    if os.getpid() == creator:  # not in a forked child that happens to run exit handlers
        shutil.rmtree(directory, ignore_errors=True)


class _Scrape(Collector):
    """What one scrape reads: this process's metrics (or, in multiprocess mode, every process's file)
    and the levels that `extra` collectors read when asked."""

    def __init__(self, extra: Iterable[Collector]) -> None:
        self._extra = list(extra)

    def collect(self) -> Iterator[Metric]:
        directory = os.environ.get(MULTIPROC_ENV)
        if directory:
            counted = CollectorRegistry(auto_describe=False)
            MultiProcessCollector(counted, path=directory)  # type: ignore[no-untyped-call]
            yield from counted.collect()
        else:
            yield from REGISTRY.collect()
        for collector in self._extra:
            yield from collector.collect()


def render(extra: Iterable[Collector] = ()) -> bytes:
    """The Prometheus text of one scrape."""
    return generate_latest(_Scrape(extra))


def serve(port: int, extra: Iterable[Collector] = (), host: str = "0.0.0.0") -> Any:
    """Serve `/metrics` on `port` from a thread of this process (a worker's parent, which outlives its children)."""
    _made()  # the families appear from the first scrape, at zero
    try:
        return start_http_server(port, addr=host, registry=_Scrape(extra))
    except OSError as error:
        raise ConfigurationError(
            f"cannot serve metrics on port {port} ({error}); choose another --metrics-port"
        ) from None
