"""DurableAIAgentWorker: the reference's way to host agents on a worker, `add_agent` then `start()`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..app import DurableApp
    from .agent import Agent


class DurableAIAgentWorker:
    """Hosts agents on the worker of `worker` (a DurableApp; a new one from the environment if omitted).

    `callback` hears every agent's replies; `add_agent(agent, callback=...)` one agent's. `start()`, or the
    app's own `start()`, serves in the foreground until Ctrl-C.
    """

    def __init__(self, worker: DurableApp | None = None, *, callback: Any = None) -> None:
        if worker is None:
            from ..app import DurableApp

            worker = DurableApp()
        self.app = worker
        if callback is not None:
            worker.add_response_callback(callback)

    def add_agent(self, agent: Agent, *, callback: Any = None) -> Agent:
        """Host `agent`: its turns run on this worker's agents queue."""
        self.app.add_agent(agent)
        if callback is not None:
            self.app.add_response_callback(callback, agent=agent.name)
        return agent

    @property
    def registered_agent_names(self) -> list[str]:
        return list(self.app.agents)

    def start(self) -> None:
        """Serve in the foreground until Ctrl-C or SIGTERM."""
        self.app.start()
