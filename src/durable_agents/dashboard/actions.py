"""The buttons of an instance page: raise an event (and its Approve shortcut), terminate, suspend, resume;
on a finished one, rewind (a failed one) and restart."""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..agents.proxy import AGENT_TURN, SESSION_ORCHESTRATION
from ..errors import DurableAgentsError, InstanceNotFoundError, InvalidInstanceStateError
from ..explanation import Explanation
from ..state import OrchestrationState
from .context import Dashboard, Form, page_route

#: What the Approve shortcut sends with the event.
APPROVAL = {"approved": True}
DEFAULT_EVENT = "approval_received"


def awaited_events(dash: Dashboard, state: OrchestrationState, why: Explanation | None) -> list[str] | None:
    """The events the instance waits for now; None when this dashboard cannot tell (it lacks the code).

    The engine's own instances for agents take their events from the engine: none is offered."""
    if why is None or state.name in (SESSION_ORCHESTRATION, AGENT_TURN):
        return []
    if state.name not in dash.client.app.registry.orchestrations:
        return None
    return [item.name for item in why.pending if item.kind == "event" and item.name]


def _awaited(dash: Dashboard, instance_id: str) -> list[str] | None:
    state = dash.client.get_orchestration_state(instance_id)
    if state is None:
        raise InstanceNotFoundError(instance_id, dash.client.taskhub)
    why = None if state.runtime_status.is_terminal else dash.client.explain(instance_id)
    return awaited_events(dash, state, why)


def routes(dash: Dashboard) -> APIRouter:
    router = APIRouter(include_in_schema=False, route_class=page_route(dash))

    def act(request: Request, instance_id: str, action: str, form: dict[str, str]) -> Response:
        client = dash.client
        try:
            if action in ("events", "approve"):
                name = (form.get("name") or DEFAULT_EVENT).strip()
                awaited = _awaited(dash, instance_id)
                waits = awaited is None or name.lower() in {event.lower() for event in awaited}
                if action == "approve" and not waits:
                    # An approval nobody waits for would be kept unread while the page said "Approved".
                    wanted = ", ".join(repr(event) for event in awaited or []) or "no event"
                    text = f"The instance does not wait for {name!r} now (it waits for {wanted}); nothing was sent."
                    return dash.message(request, text, 409)
                if action == "approve":
                    data: object = APPROVAL
                else:
                    text = form.get("data", "").strip()
                    try:
                        data = json.loads(text) if text else None
                    except json.JSONDecodeError as error:
                        where = f"line {error.lineno}, column {error.colno}"
                        return dash.message(request, f"The event data is not valid JSON: {error.msg} ({where}).", 422)
                client.raise_event(instance_id, name, data=data)
                toast = "Approved" if action == "approve" else f"Event {name!r} raised"
                if not waits:
                    toast = f"Event {name!r} kept: the instance does not wait for it now, and will read it when it does"
            elif action == "terminate":
                reason = form.get("reason", "").strip() or "terminated from the dashboard"
                if not client.terminate(instance_id, output=reason):
                    return dash.message(request, "The instance had already finished.", 409)
                toast = "Termination requested"
            elif action == "rewind":
                client.rewind(instance_id, reason=form.get("reason") or "rewound from the dashboard")
                toast = "Rewind requested: the failed tasks run again"
            elif action == "restart":
                client.restart(instance_id)
                toast = "Restarted with its original input"
            elif action == "suspend":
                client.suspend(instance_id, reason=form.get("reason") or "suspended from the dashboard")
                toast = "Suspension requested"
            else:
                client.resume(instance_id, reason=form.get("reason") or "resumed from the dashboard")
                toast = "Resumption requested"
        except InstanceNotFoundError:
            return dash.message(request, f"There is no instance {instance_id!r} in this task hub.", 404)
        except InvalidInstanceStateError as error:
            return dash.message(request, str(error), 409)
        except (ValueError, DurableAgentsError) as error:  # a bad event name, a payload over the limit
            return dash.message(request, str(error), 422)
        return dash.done(request, f"/instances/{quote(instance_id, safe='')}", toast)

    def endpoint_for(action: str) -> Callable[[Request, str, dict[str, str]], Response]:
        def endpoint(request: Request, instance_id: str, form: Form) -> Response:
            return act(request, instance_id, action, form)

        return endpoint

    for action in ("events", "approve", "terminate", "suspend", "resume", "rewind", "restart"):
        router.add_api_route(f"/instances/{{instance_id:path}}/{action}", endpoint_for(action), methods=["POST"])
    return router
