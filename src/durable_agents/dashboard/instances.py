"""Instance pages: the live list with filters and search, and one instance with its timeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .. import ids
from ..agents.proxy import AGENT_TURN, INTERNAL_ORCHESTRATIONS, SESSION_ORCHESTRATION
from ..errors import InstanceNotFoundError
from ..state import OrchestrationState, OrchestrationStatus
from ..tags import parse_tag
from .actions import awaited_events
from .context import Dashboard, page_route
from .timeline import build_timeline, history_lines, overlapping

PAGE_SIZE = 50
#: Raw history rows shown under the timeline; the rest are summarised.
MAX_HISTORY_ROWS = 500


#: The engine's own orchestrations for agents: a session entity and a turn instance per agent call.
INTERNAL = INTERNAL_ORCHESTRATIONS


@dataclass(frozen=True)
class Filters:
    status: str = ""
    name: str = ""
    q: str = ""
    offset: int = 0
    #: Show the engine's own instances for agents too (they are two of every three rows an agent makes).
    internal: bool = False
    #: A tag as name=value.
    tag: str = ""

    @classmethod
    def of(cls, request: Request) -> Filters:
        params = request.query_params
        status = params.get("status", "").upper()
        if status not in OrchestrationStatus.__members__:
            status = ""
        try:
            offset = max(0, int(params.get("offset", "0")))
        except ValueError:
            offset = 0
        internal = params.get("internal") == "1"
        text = {key: params.get(key, "").strip()[:256] for key in ("name", "q")}
        return cls(status, text["name"], text["q"], offset, internal, params.get("tag", "").strip()[:1200])

    @property
    def active(self) -> bool:
        return bool(self.status or self.name or self.q or self.tag)

    @property
    def tags(self) -> dict[str, str] | None:
        """The tag filter, or None; ValueError saying how to write it if it is not name=value."""
        return dict([parse_tag(self.tag)]) if self.tag else None

    @property
    def shows_internal(self) -> bool:
        """Asked for by the toggle, or by naming them: an internal name, or an id starting as theirs."""
        return self.internal or self.name in INTERNAL or self.q.startswith(ids.AGENT_ID_PREFIX)

    def query(self, **changes: Any) -> str:
        values = {"status": self.status, "name": self.name, "q": self.q, "tag": self.tag, "offset": self.offset}
        values.update(changes)
        values["internal"] = "1" if changes.get("internal", self.internal) else ""
        return urlencode({k: v for k, v in values.items() if v})


def kind_of(state: OrchestrationState) -> str:
    if state.name == AGENT_TURN:
        return "agent turn"
    if state.name == SESSION_ORCHESTRATION:
        return "agent session"
    if state.parent_instance_id:
        return "sub-orchestration"
    return ""


def routes(dash: Dashboard) -> APIRouter:
    router = APIRouter(include_in_schema=False, route_class=page_route(dash))
    render = dash.renderer.render

    def listing(filters: Filters) -> dict[str, Any]:
        try:
            tags, filter_error = filters.tags, None
        except ValueError as error:
            tags, filter_error = None, str(error)
        rows = (
            dash.client.query_instances(
                statuses=[filters.status] if filters.status else None,
                name=filters.name or None,
                instance_id_prefix=filters.q or None,
                tags=tags,
                exclude_names=None if filters.shows_internal else INTERNAL,
                exclude_id_prefix=None if filters.shows_internal else ids.AGENT_ID_PREFIX,
                limit=PAGE_SIZE + 1,
                offset=filters.offset,
            )
            if filter_error is None
            else []
        )
        names = sorted({*dash.client.app.registry.orchestrations, *(r.name for r in rows)} - set(INTERNAL))
        entities = [
            r.instance_id
            for r in rows[:PAGE_SIZE]
            if r.name == SESSION_ORCHESTRATION and not r.runtime_status.is_terminal
        ]
        return {
            "instances": rows[:PAGE_SIZE],
            "idle": dash.agents.idle_sessions(entities) if entities else set(),
            "more": len(rows) > PAGE_SIZE,
            "filters": filters,
            "filter_error": filter_error,
            "names": names,
            "kind_of": kind_of,
            "page_size": PAGE_SIZE,
        }

    @router.get("/")
    def instances_page(request: Request) -> Response:
        return render(request, "instances.html", nav="instances", **listing(Filters.of(request)))

    @router.get("/partials/instances")
    def instances_rows(request: Request) -> Response:
        filters = Filters.of(request)
        response = render(request, "_instances_table.html", **listing(filters))
        if request.headers.get("hx-trigger-name") == "filters":
            # The address bar follows the filters, so a filtered view can be bookmarked and shared.
            query = filters.query()
            response.headers["HX-Push-Url"] = dash.renderer.url(request, "/" + (f"?{query}" if query else ""))
        return response

    def instance_context(instance_id: str) -> dict[str, Any] | None:
        state = dash.client.get_orchestration_state(instance_id)
        if state is None:
            return None
        try:
            history = dash.client.get_history(instance_id)
        except InstanceNotFoundError:  # purged between the two reads
            return None
        now = datetime.now(UTC)
        timeline = build_timeline(history, now=now)
        why = None
        if not state.runtime_status.is_terminal:
            try:
                why = dash.client.explain(instance_id)
            except InstanceNotFoundError:
                return None
        return {
            "state": state,
            "kind": kind_of(state),
            "timeline": timeline,
            "parallel": overlapping(timeline.spans),
            "history": history[-MAX_HISTORY_ROWS:],
            "history_total": len(history),
            "history_lines": history_lines,
            "turn": state.input if state.name == AGENT_TURN and isinstance(state.input, dict) else None,
            "entity": state.input if state.name == SESSION_ORCHESTRATION and isinstance(state.input, dict) else None,
            "terminal": state.runtime_status.is_terminal,
            "why": why,
            "awaited": awaited_events(dash, state, why),
            "internal": state.name in INTERNAL,
            "now": now,
        }

    @router.get("/instances/{instance_id:path}/live")
    def instance_live(request: Request, instance_id: str) -> Response:
        context = instance_context(instance_id)
        if context is None:
            return Response("This instance no longer exists (it was purged).", status_code=404)
        return render(request, "_instance_live.html", **context)

    @router.get("/instances/{instance_id:path}")
    def instance_page(request: Request, instance_id: str) -> Response:
        context = instance_context(instance_id)
        if context is None:
            return dash.not_found(request, f"There is no instance {instance_id!r} in task hub {dash.client.taskhub!r}.")
        return render(request, "instance.html", nav="instances", **context)

    return router
