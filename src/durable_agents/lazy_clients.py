"""Clients of a task hub built on first use, for the web front ends (the API and the dashboard).

Built lazily so a server starts, and its readiness check answers, while the database is down.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .agents.client import DurableAgentClient
    from .app import DurableApp
    from .client import DurableClient
    from .config import Settings


class LazyClients:
    """A `DurableClient` (of the user's app, when loaded) and a `DurableAgentClient` over it."""

    def __init__(self, durable_app: DurableApp | None, settings: Settings) -> None:
        self.durable_app = durable_app
        self.settings = settings
        self._client: DurableClient | None = None
        self._agents: DurableAgentClient | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> DurableClient:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    from .client import DurableClient

                    app = self.durable_app
                    if app is not None and app.settings is self.settings:
                        self._client = DurableClient(app)
                    else:
                        self._client = DurableClient(app, settings=self.settings)
        return self._client

    @property
    def agents(self) -> DurableAgentClient:
        if self._agents is None:  # cheap: at worst two threads each build one
            from .agents.client import DurableAgentClient

            self._agents = DurableAgentClient(self.client)
        return self._agents
