"""The Prometheus metrics of durable work, made on first use (after a worker has chosen multiprocess mode).

Counters and histograms only: under the prefork pool every process writes its own file in
`PROMETHEUS_MULTIPROC_DIR` and the parent's `/metrics` adds them up. What is a level rather than a
count (queue depth, instances by status) is read from Redis and PostgreSQL when scraped (`gauges`).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from functools import cache
from typing import Any

from prometheus_client import Counter, Histogram, values
from prometheus_client.metrics import MetricWrapperBase

PREFIX = "durable_agents"
#: Seconds: a step is milliseconds, an activity or a model call up to minutes.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, float("inf"))

_lock = threading.Lock()


@dataclass(frozen=True)
class Metrics:
    steps: Counter
    step_seconds: Histogram
    activities: Counter
    activity_seconds: Histogram
    turns: Counter
    model_calls: Counter
    model_call_seconds: Histogram
    model_tokens: Counter
    stream_chunks: Counter
    lease_expiries: Counter
    lease_reclaims: Counter
    redispatches: Counter


def metrics() -> Metrics:
    """The metrics of this process, made on first use."""
    return _made()


@cache
def _made() -> Metrics:
    with _lock:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR") and not getattr(values.ValueClass, "_multiprocess", False):
            # The directory was chosen after prometheus_client was imported (a worker's --metrics-port):
            # values made from now on go to its files.
            values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
        return Metrics(
            steps=Counter(f"{PREFIX}_steps", "Orchestration steps run, by orchestration and outcome.",
                          ["orchestration", "outcome"]),
            step_seconds=Histogram(f"{PREFIX}_step_seconds", "Time a step took, its transaction included.",
                                   ["orchestration"], buckets=LATENCY_BUCKETS),
            activities=Counter(f"{PREFIX}_activities", "Activities run, by activity and outcome.",
                               ["activity", "outcome"]),
            activity_seconds=Histogram(f"{PREFIX}_activity_seconds", "Time an activity's function took.",
                                       ["activity"], buckets=LATENCY_BUCKETS),
            turns=Counter(f"{PREFIX}_agent_turns", "Agent turns ended, by agent and outcome.", ["agent", "outcome"]),
            model_calls=Counter(f"{PREFIX}_model_calls", "Model calls, by agent, model and outcome.",
                                ["agent", "model", "outcome"]),
            model_call_seconds=Histogram(f"{PREFIX}_model_call_seconds", "Time a model call took.",
                                         ["agent", "model"], buckets=LATENCY_BUCKETS),
            model_tokens=Counter(f"{PREFIX}_model_tokens", "Tokens the model reported, by agent, model and type "
                                 "(input, output).", ["agent", "model", "type"]),
            stream_chunks=Counter(f"{PREFIX}_stream_chunks", "Chunks of agent replies streamed.", ["agent"]),
            lease_expiries=Counter(f"{PREFIX}_lease_expiries", "Leases the sweeper found expired."),
            lease_reclaims=Counter(f"{PREFIX}_lease_reclaims", "Leases freed because their holder died."),
            redispatches=Counter(f"{PREFIX}_sweeper_redispatches", "Messages the sweeper sent again, by kind "
                                 "(activity, step).", ["kind"]),
        )  # fmt: skip


@cache
def labelled(metric: MetricWrapperBase, *values: str) -> Any:
    """`metric.labels(*values)`, kept: a step counts in a dictionary lookup, not in the client's checks."""
    return metric.labels(*values)
