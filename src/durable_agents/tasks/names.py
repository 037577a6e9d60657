"""What Celery tools show of each message: a name saying what it runs, and arguments an operator can read.

Messages carry ids only (the store is the truth); Celery's `shadow` name and `argsrepr` header are what
Flower, `celery inspect active`, `celery events` and the worker log display instead of the task's own
name and raw arguments. They cost a few string operations per message.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import ids

#: Instance ids and what their steps are shown as (`orchestration:NAME`, `agent:NAME`), as this process last
#: saw them (bounded), and the agent of each agent turn.
_SHOWN: dict[str, str] = {}
_AGENTS: dict[str, str] = {}
_NAMES: dict[str, str] = {}
_KEPT = 10_000


def remember(instance_id: str, name: str, agent: str | None = None) -> None:
    """Note the orchestration name of `instance_id` (and the agent, for an agent's turn or session), for the
    steps this process wakes later."""
    if len(_SHOWN) >= _KEPT:
        _SHOWN.clear()  # cheaper than an LRU: a name forgotten only makes a row less telling
        _NAMES.clear()
        _AGENTS.clear()
    agent = agent or _session_agent(instance_id)
    _NAMES[instance_id] = name
    if agent is not None:
        _AGENTS[instance_id] = agent
        _SHOWN[instance_id] = f"agent:{agent}"
    else:
        _SHOWN[instance_id] = f"orchestration:{name}"


def known(instance_id: str) -> str | None:
    """The orchestration name of `instance_id`, if this process has seen it."""
    return _NAMES.get(instance_id)


def step(instance_id: str) -> dict[str, Any]:
    """A step's display: `orchestration:NAME` (`agent:NAME` for an agent's) when this process knows the instance."""
    shown: dict[str, Any] = {"argsrepr": f"instance={instance_id!r}"}
    name = _SHOWN.get(instance_id)
    if name is None and (agent := _session_agent(instance_id)) is not None:
        name = f"agent:{agent}"  # a session's id names its agent: seen or not, its steps say whose they are
    if name is not None:
        shown["shadow"] = name
    return shown


def _session_agent(instance_id: str) -> str | None:
    if not instance_id.startswith(ids.AGENT_SESSION_PREFIX):
        return None
    return instance_id[len(ids.AGENT_SESSION_PREFIX) :].split(":", 1)[0]


def activity(name: str, item_id: int, instance_id: str | None) -> dict[str, Any]:
    """An activity message's display: `activity:NAME`, its instance (and agent) and work item."""
    return {"shadow": f"activity:{name}", "argsrepr": f"{_where(instance_id)}item={item_id}"}


def drainer(names: Iterable[str], count: int, share: int, shares: int, instance_id: str | None) -> dict[str, Any]:
    """A fan-out drainer's display: `drain:NAME[,NAME...]`, the activities it works through."""
    listed = ",".join(names)
    return {"shadow": f"drain:{listed}", "argsrepr": f"{_where(instance_id)}items={count} share={share + 1}/{shares}"}


def _where(instance_id: str | None) -> str:
    if instance_id is None:
        return ""
    agent = _AGENTS.get(instance_id)
    return f"agent={agent!r} instance={instance_id!r} " if agent is not None else f"instance={instance_id!r} "
