"""Celery settings: the engine's defaults (the user's settings win), the values it refuses, and queue names."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from kombu.entity import Queue

from .config import ROLES, Settings
from .errors import ConfigurationError
from .tasks.dispatch import SWEEP_TASK

if TYPE_CHECKING:
    from .app import DurableApp

#: What the engine needs of Celery unless the user says otherwise (README, "Celery settings").
ENGINE_DEFAULTS: dict[str, Any] = {
    "task_serializer": "json",
    "result_serializer": "json",
    "accept_content": ["json"],
    "result_accept_content": ["json"],
    "task_ignore_result": True,
    "result_expires": 3600,
    # One message at a time per slot: a step or a drainer can run for a while, and a prefetched message
    # waits behind it while another worker is idle. Raise it for many short activities.
    "worker_prefetch_multiplier": 1,
    "broker_connection_retry_on_startup": True,
}

#: Settings that must not name pickle: messages and results are JSON only (README, "Guarantees").
JSON_ONLY = ("task_serializer", "result_serializer", "event_serializer", "accept_content", "result_accept_content")
_PICKLE = {"pickle", "application/x-python-serialize"}

_SHORT_QUEUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def engine_defaults(settings: Settings) -> dict[str, Any]:
    """The engine's Celery defaults for this task hub: its role queues, the sweep schedule, JSON only."""
    defaults = {
        **ENGINE_DEFAULTS,
        "task_default_queue": settings.queue("orchestrator"),
        "task_queues": [Queue(settings.queue(role)) for role in ROLES],  # type: ignore[no-untyped-call]
        "beat_schedule": {"durable-agents-sweep": {"task": SWEEP_TASK, "schedule": settings.sweep_interval}},
    }
    if settings.embedded:
        # The in-memory transport polls its queues; its default second would be a second per step.
        defaults["broker_transport_options"] = {"polling_interval": 0.01}
    return defaults


def under_user_settings(conf: Any, defaults: dict[str, Any]) -> None:
    """Put `defaults` just above Celery's own: below DurableApp(...) options and config_from_object's source
    (Celery's `add_defaults` would put them above the latter)."""
    conf.defaults.insert(len(conf.defaults) - 1, defaults)
    conf.maps.insert(len(conf.maps) - 1, defaults)


def check_celery_config(app: DurableApp) -> None:
    """ConfigurationError if a Celery setting would break a guarantee (pickle: code execution from the broker)."""
    for key in JSON_ONLY:
        value = app.conf.get(key)
        values = {value} if isinstance(value, str) else set(value or ())
        if values & _PICKLE:
            raise ConfigurationError(
                f"Celery setting {key}={value!r} allows pickle, which durable-agents refuses: messages and "
                "results are JSON only (a pickled message runs code on the worker). Remove the setting or use 'json'"
            )


def check_queue_name(queue: str) -> str:
    """`queue` if it is a valid short queue name (gpu, emails), else a ValueError saying what is."""
    if not isinstance(queue, str) or not _SHORT_QUEUE.match(queue):
        raise ValueError(
            f"queue {queue!r} is not a short queue name: use 1-64 letters, digits, '_' or '-' (e.g. queue='gpu'); "
            "the task hub's prefix is added to it"
        )
    return queue


def hub_queue_names(app: DurableApp) -> list[str]:
    """The short names of this task hub's queues: the three roles, then the queues activities and
    orchestrations name."""
    registry = app.registry
    named = [spec.queue_role for spec in registry.activities.values()]
    named += [spec.queue_role for spec in registry.orchestrations.values()]
    return list(dict.fromkeys([*ROLES, *sorted(set(named) - set(ROLES))]))


def resolve_queues(app: DurableApp, names: list[str]) -> list[str]:
    """Full queue names for `-Q`: a short name of this hub's queues gets the hub's prefix, a name with a dot
    or declared in `task_queues` is taken as it is; any other name is refused with the hub's queues."""
    known = hub_queue_names(app)
    declared = {queue.name for queue in app.conf.task_queues or ()}
    resolved: list[str] = []
    for name in names:
        if name in known:
            resolved.append(app.settings.queue(name))
        elif "." in name or name in declared:
            resolved.append(name)
        else:
            raise ConfigurationError(
                f"-Q {name!r} is not a queue of task hub {app.settings.taskhub!r}; its queues are "
                f"{', '.join(known)} (full names: {app.settings.queue('NAME')}), or declare {name!r} in task_queues"
            )
    return resolved


def check_rate_limit(rate_limit: str | None) -> str | None:
    """`rate_limit` if Celery reads it ("10/s", "100/m", "1000/h" or a number per second), else a ValueError."""
    if rate_limit is None:
        return None
    from celery.utils.time import rate

    try:
        per_second = rate(rate_limit)
    except (ValueError, TypeError, KeyError):
        per_second = 0
    if not per_second or per_second < 0:
        raise ValueError(f"rate_limit {rate_limit!r} is not a rate: use e.g. '10/s', '100/m' or '1000/h'")
    return str(rate_limit)


def check_priority(priority: int | None) -> int | None:
    """`priority` if it is a message priority (0-255; Redis serves 0 first), else a ValueError."""
    if priority is not None and (
        isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 255
    ):
        raise ValueError(f"priority {priority!r} is not a message priority: use an integer from 0 to 255 (Redis: 0-9)")
    return priority
