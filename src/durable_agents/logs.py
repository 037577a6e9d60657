"""Structured logs: every logger is under `durable_agents`, and DURABLE_AGENTS_LOG_FORMAT=json makes each
line one JSON object with the instance, name, attempt, Celery task and trace id of the work it is about."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

#: The variable that picks the format: `json`, or unset (Celery's plain lines).
LOG_FORMAT_ENV = "DURABLE_AGENTS_LOG_FORMAT"
#: The root of every logger of the package.
NAMESPACE = "durable_agents"

_work: ContextVar[dict[str, Any] | None] = ContextVar("durable_agents_log_fields", default=None)


@contextmanager
def work_fields(**fields: Any) -> Iterator[None]:
    """Lines logged inside carry `fields` (instance_id, name, attempt), over those of the work around it."""
    outer = _work.get()
    token = _work.set({**outer, **fields} if outer else fields)
    try:
        yield
    finally:
        _work.reset(token)


def json_logs_wanted() -> bool:
    value = os.environ.get(LOG_FORMAT_ENV, "").strip().lower()
    if value not in ("", "json", "text"):
        from .errors import ConfigurationError

        raise ConfigurationError(f"{LOG_FORMAT_ENV}={value!r} is not a log format; use 'json', or 'text' (the default)")
    return value == "json"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and what the line is about."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        _add_task(entry, record)
        entry.update(_work.get() or {})
        trace_id = _trace_id()
        if trace_id is not None:
            entry["trace_id"] = trace_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def _add_task(entry: dict[str, Any], record: logging.LogRecord) -> None:
    """The Celery task (`task`: its name as Flower shows it, `task_id`): the one running in this thread,
    or the one a line of the worker's own is about."""
    data = getattr(record, "data", None)  # Celery's own lines ("received", "succeeded") carry it
    if isinstance(data, dict) and "id" in data:
        entry["task"], entry["task_id"] = data.get("name"), data["id"]
        if data.get("args"):
            entry["args"] = data["args"]  # what the message is about: `instance='...' item=7`
        return
    from celery import current_task

    request = getattr(current_task, "request", None) if current_task else None
    task_id = getattr(request, "id", None)
    if task_id:
        entry["task"], entry["task_id"] = getattr(request, "shadow", None) or current_task.name, task_id


def _trace_id() -> str | None:
    """The current OpenTelemetry trace id (32 hex digits), when a span is recording or propagated."""
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def use_json(logger: logging.Logger) -> None:
    """Make every handler of `logger` write JSON lines."""
    formatter = JsonFormatter()
    for handler in logger.handlers:
        handler.setFormatter(formatter)


def install_in_celery() -> None:
    """With DURABLE_AGENTS_LOG_FORMAT=json, the worker's loggers (its own and its tasks') write JSON lines."""
    from celery.signals import after_setup_logger, after_setup_task_logger

    def to_json(logger: logging.Logger, **_: Any) -> None:
        if json_logs_wanted():
            use_json(logger)
            logging.captureWarnings(True)  # Python's warnings as log records, so as JSON lines too

    after_setup_logger.connect(to_json, weak=False, dispatch_uid="durable_agents.logs")
    after_setup_task_logger.connect(to_json, weak=False, dispatch_uid="durable_agents.task_logs")
