"""What Celery tools show of each message: a name saying what it runs, and arguments an operator can read.

Messages carry ids only (the store is the truth); Celery's `shadow` name and `argsrepr` header are what
Flower, `celery inspect active`, `celery events` and the worker log display instead of the task's own
name and raw arguments. They cost a few string operations per message.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: Instance ids and their orchestration names, as this process last saw them (bounded).
_NAMES: dict[str, str] = {}
_NAMES_KEPT = 10_000


def remember(instance_id: str, name: str) -> None:
    """Note the orchestration name of `instance_id`, for the steps this process wakes later."""
    if len(_NAMES) >= _NAMES_KEPT:
        _NAMES.clear()  # cheaper than an LRU: a name forgotten only makes a row less telling
    _NAMES[instance_id] = name


def known(instance_id: str) -> str | None:
    """The orchestration name of `instance_id`, if this process has seen it."""
    return _NAMES.get(instance_id)


def step(instance_id: str) -> dict[str, Any]:
    """A step's display: `orchestration:NAME` when this process knows the instance's name."""
    name = _NAMES.get(instance_id)
    shown: dict[str, Any] = {"argsrepr": f"instance={instance_id!r}"}
    if name is not None:
        shown["shadow"] = f"orchestration:{name}"
    return shown


def activity(name: str, item_id: int, instance_id: str | None) -> dict[str, Any]:
    """An activity message's display: `activity:NAME`, its instance and work item."""
    where = f"instance={instance_id!r} " if instance_id is not None else ""
    return {"shadow": f"activity:{name}", "argsrepr": f"{where}item={item_id}"}


def drainer(names: Iterable[str], count: int, share: int, shares: int, instance_id: str | None) -> dict[str, Any]:
    """A fan-out drainer's display: `drain:NAME[,NAME...]`, the activities it works through."""
    where = f"instance={instance_id!r} " if instance_id is not None else ""
    listed = ",".join(names)
    return {"shadow": f"drain:{listed}", "argsrepr": f"{where}items={count} share={share + 1}/{shares}"}
