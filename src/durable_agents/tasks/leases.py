"""Leases of one process: who holds them (a heartbeat that says the process lives) and their renewal."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .. import ids
from ..config import Settings
from ..store import holders, work
from ..store.db import single_statement

log = logging.getLogger(__name__)


class LeaseRenewer:
    """The process's lease holder: registered before it claims anything, then heartbeating, so the
    sweeper frees its leases within `lease_holder_timeout` once it dies, whatever their length. It also
    renews, every third of the lease, the lease of each activity the process runs.

    One thread serves them all: starting and joining a thread per activity cost more than a short
    activity itself. A lease found lost is dropped with a warning: another worker may run the item too,
    and its outcome is still recorded once.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._held: dict[int, str] = {}  # work item id -> lease owner
        self._holder: str | None = None  # registered in this process (a forked child registers its own)
        self._silenced = False
        os.register_at_fork(after_in_child=self._forget_parent)

    def owner(self) -> str:
        """The lease owner of the calling thread; the first call in a process registers its holder."""
        with self._lock:
            if self._holder is None:
                self._holder = self._register()
                threading.Thread(target=self._run, name="durable-agents-leases", daemon=True).start()
            return f"{self._holder}:{threading.get_ident()}"

    @contextmanager
    def holding(self, item_id: int, owner: str) -> Iterator[None]:
        """Keep the lease `owner` holds on the item alive while the block runs."""
        with self._lock:
            self._held[item_id] = owner
        try:
            yield
        finally:
            with self._lock:
                self._held.pop(item_id, None)

    def silence(self, hung: bool) -> None:
        """While `hung`, send no heartbeat and renew no lease: the process is taken for dead, its leases go
        to other workers, and the healthcheck fails. When it recovers, it holds new leases under a new name."""
        self._silenced = hung

    def _register(self) -> str:
        holder = f"{socket.gethostname()}:{os.getpid()}:{ids.new_worker_id()[:8]}"
        settings = self._settings
        with single_statement(settings.database_url) as session:
            holders.register(
                session,
                settings.taskhub,
                holder,
                socket.gethostname(),
                os.getpid(),
                os.getppid(),  # a prefork child's worker; a stopping worker releases its children's holders
                settings.lease_holder_timeout,
            )
        return holder

    def _run(self) -> None:
        settings = self._settings
        renew_every = settings.lease_seconds / 3
        renewed_at = time.monotonic()
        while True:
            time.sleep(min(settings.lease_heartbeat_interval, renew_every))
            if self._silenced:
                continue
            self._heartbeat()
            if time.monotonic() - renewed_at >= renew_every:
                renewed_at = time.monotonic()
                with self._lock:
                    held = list(self._held.items())
                for item_id, owner in held:
                    self._renew(item_id, owner)

    def _heartbeat(self) -> None:
        settings = self._settings
        with self._lock:
            holder = self._holder
        assert holder is not None
        try:
            with single_statement(settings.database_url) as session:
                if holders.heartbeat(session, settings.taskhub, holder, settings.lease_holder_timeout):
                    return
        except Exception:
            log.warning("lease holder heartbeat failed; will retry", exc_info=True)
            return
        # Taken for dead (a heartbeat gap) or released by a stopping worker: what it held belongs to
        # others now. New claims go under a new holder; the leases it still runs under are lost.
        log.warning("this process's leases were handed to other workers; it holds new ones under a new name")
        with self._lock:
            self._holder = self._register()

    def _renew(self, item_id: int, owner: str) -> None:
        settings = self._settings
        try:
            with single_statement(settings.database_url) as session:
                if work.renew(session, item_id, owner, settings.lease_seconds):
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
        self._holder = None
        self._silenced = False
