"""Live executors of running instances, so a step replays only its new events (bounded cost)."""

from __future__ import annotations

import threading
from collections import OrderedDict

from ..orchestrator.executor import ReplayExecutor


class ExecutorCache:
    """Executors by instance, each valid for the execution and history length it has seen."""

    def __init__(self, capacity: int = 512) -> None:
        self._entries: OrderedDict[tuple[str, str], tuple[str, ReplayExecutor]] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def take(self, taskhub: str, instance_id: str, execution_id: str, history_length: int) -> ReplayExecutor | None:
        """Remove and return the executor if it has seen exactly the stored history."""
        with self._lock:
            entry = self._entries.pop((taskhub, instance_id), None)
        if entry is None:
            return None
        cached_execution, executor = entry
        if cached_execution != execution_id or executor.history_length != history_length:
            return None
        return executor

    def put(self, taskhub: str, instance_id: str, execution_id: str, executor: ReplayExecutor) -> None:
        if self._capacity == 0:
            return
        with self._lock:
            self._entries[(taskhub, instance_id)] = (execution_id, executor)
            self._entries.move_to_end((taskhub, instance_id))
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
