"""Rendering: the Jinja2 environment with the dashboard's filters, and its packaged static files."""

from __future__ import annotations

import hashlib
import json
import mimetypes
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from ..state import OrchestrationStatus
from .timeline import format_duration

_PACKAGE = "durable_agents.dashboard"

#: Status -> (badge style, words for a person).
STATUS_STYLES = {
    OrchestrationStatus.PENDING: ("pending", "Pending"),
    OrchestrationStatus.RUNNING: ("running", "Running"),
    OrchestrationStatus.COMPLETED: ("completed", "Completed"),
    OrchestrationStatus.FAILED: ("failed", "Failed"),
    OrchestrationStatus.TERMINATED: ("terminated", "Terminated"),
    OrchestrationStatus.SUSPENDED: ("suspended", "Suspended"),
    OrchestrationStatus.CONTINUED_AS_NEW: ("continued", "Continued as new"),
}


@dataclass(frozen=True)
class StaticFile:
    content: bytes
    media_type: str
    version: str


def load_static() -> dict[str, StaticFile]:
    """Every file under static/, read once; the version (a content hash) busts browser caches."""
    files: dict[str, StaticFile] = {}
    root = resources.files(_PACKAGE).joinpath("static")
    for entry in root.iterdir():
        if not entry.is_file() or entry.name.startswith("."):
            continue
        content = entry.read_bytes()
        media_type = mimetypes.guess_type(entry.name)[0] or "application/octet-stream"
        if media_type.startswith("text/") or media_type in ("application/javascript", "image/svg+xml"):
            media_type += "; charset=utf-8"
        files[entry.name] = StaticFile(content, media_type, hashlib.sha256(content).hexdigest()[:12])
    return files


def relative_time(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "—"
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    if abs(seconds) < 5:
        return "just now"
    if seconds < 0:
        return "in " + format_duration(-seconds)
    return format_duration(seconds) + " ago"


def pretty_json(value: Any) -> str:
    if isinstance(value, str) and "\n" in value:
        return value  # text with line breaks reads better as text than as one escaped JSON line
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def absolute_time(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def make_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader(_PACKAGE, "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["quote"] = lambda value: quote(str(value), safe="")
    env.filters["json"] = pretty_json
    env.filters["ago"] = relative_time
    env.filters["when"] = absolute_time
    env.filters["duration"] = lambda delta: format_duration(delta.total_seconds()) if delta is not None else "—"
    env.filters["status_class"] = lambda status: STATUS_STYLES[OrchestrationStatus(status)][0]
    env.filters["status_label"] = lambda status: STATUS_STYLES[OrchestrationStatus(status)][1]
    env.globals["statuses"] = list(OrchestrationStatus)
    return env


class Renderer:
    """Renders templates with what every page needs: links under the app's root path, the task hub."""

    def __init__(self, taskhub: str, auth_enabled: bool) -> None:
        self.env = make_environment()
        self.static = load_static()
        self.taskhub = taskhub
        self.auth_enabled = auth_enabled

    def url(self, request: Request, path: str) -> str:
        return str(request.scope.get("root_path", "")) + path

    def static_url(self, request: Request, name: str) -> str:
        return self.url(request, f"/static/{name}?v={self.static[name].version}")

    def render(self, request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("now", datetime.now(UTC))
        page = self.env.get_template(template).render(
            url=lambda path: self.url(request, path),
            static=lambda name: self.static_url(request, name),
            taskhub=self.taskhub,
            auth_enabled=self.auth_enabled,
            **context,
        )
        return HTMLResponse(page, status_code=status_code)
