"""Lease renewal: one thread per process keeps the leases of the activities running in it alive."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ..store import work
from ..store.db import single_statement

log = logging.getLogger(__name__)


class LeaseRenewer:
    """Renews, every third of the lease, the lease of each activity this process runs.

    One thread serves them all: starting and joining a thread per activity cost more than a short
    activity itself. A lease found lost is dropped with a warning: another worker may run the item too,
    and its outcome is still recorded once.
    """

    def __init__(self, database_url: str, lease_seconds: float) -> None:
        self._url = database_url
        self._lease = lease_seconds
        self._lock = threading.Lock()
        self._held: dict[int, str] = {}  # work item id -> lease owner
        self._started_in = 0  # the process whose thread is running (a forked child inherits none)
        os.register_at_fork(after_in_child=self._forget_parent)

    @contextmanager
    def holding(self, item_id: int, owner: str) -> Iterator[None]:
        """Keep the lease `owner` holds on the item alive while the block runs."""
        with self._lock:
            self._held[item_id] = owner
            if self._started_in != os.getpid():
                self._started_in = os.getpid()
                threading.Thread(target=self._run, name="durable-agents-leases", daemon=True).start()
        try:
            yield
        finally:
            with self._lock:
                self._held.pop(item_id, None)

    def _run(self) -> None:
        while True:
            time.sleep(self._lease / 3)
            with self._lock:
                held = list(self._held.items())
            for item_id, owner in held:
                self._renew(item_id, owner)

    def _renew(self, item_id: int, owner: str) -> None:
        try:
            with single_statement(self._url) as session:
                if work.renew(session, item_id, owner, self._lease):
                    return
        except Exception:
            log.exception("renewing the lease of work item %s failed; will retry", item_id)
            return
        with self._lock:
            if self._held.get(item_id) != owner:
                return  # it finished meanwhile: its item is gone, not lost
            del self._held[item_id]
        log.warning("lost the lease of work item %s; another worker may run it too", item_id)

    def _forget_parent(self) -> None:
        self._lock = threading.Lock()  # the parent's thread may have held it at the fork
        self._held = {}
        self._started_in = 0
