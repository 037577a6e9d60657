"""Graceful shutdown: a stopping worker lets its activities run for a grace period, then hands their leases back."""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import TYPE_CHECKING

from ..store import holders
from ..store.db import single_statement

if TYPE_CHECKING:
    from ..app import DurableApp

log = logging.getLogger(__name__)


class Handback:
    """Releases the leases of this worker and of the pool children it forked: the next sweep of any
    live worker frees them, and another worker starts their activities at once instead of waiting out
    the leases. An activity still running here is not interrupted; whichever run finishes first is
    recorded (every activity has an idempotency key for the effects it makes)."""

    def __init__(self, app: DurableApp) -> None:
        self._app = app
        self._timer: threading.Timer | None = None

    def after_grace(self) -> None:
        """Hand back once `shutdown_grace_seconds` have passed; a worker that finishes sooner just exits."""
        if self._timer is None:
            self._timer = threading.Timer(self._app.settings.shutdown_grace_seconds, self.now)
            self._timer.daemon = True
            self._timer.start()

    def now(self) -> None:
        settings = self._app.settings
        try:
            with single_statement(settings.database_url) as session:
                released = holders.release(session, settings.taskhub, socket.gethostname(), os.getpid())
        except Exception:
            log.warning("could not hand back this worker's leases; they are freed when its heartbeats stop")
            return
        if released:
            log.info("handed back the leases of %d process(es) of this worker to other workers", released)
