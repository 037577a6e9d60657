"""The schedules page: each schedule's recurrence, next fire time and latest runs, with pause, resume and trigger."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .. import ids
from ..errors import DurableAgentsError, ScheduleNotFoundError
from .context import Dashboard, Form, page_route

#: Latest runs shown beside each schedule.
RUNS_SHOWN = 3
PAGE_SIZE = 200


def routes(dash: Dashboard) -> APIRouter:
    router = APIRouter(include_in_schema=False, route_class=page_route(dash))

    def listing() -> dict[str, Any]:
        client = dash.client
        schedules = client.list_schedules(limit=PAGE_SIZE)
        runs = {
            state.schedule_id: client.query_instances(tags={ids.SCHEDULE_TAG: state.schedule_id}, limit=RUNS_SHOWN)
            for state in schedules
        }
        return {"schedules": schedules, "runs": runs, "now": datetime.now(UTC)}

    @router.get("/schedules")
    def schedules_page(request: Request) -> Response:
        return dash.renderer.render(request, "schedules.html", nav="schedules", **listing())

    @router.get("/partials/schedules")
    def schedules_partial(request: Request) -> Response:
        return dash.renderer.render(request, "_schedules_table.html", **listing())

    def act(request: Request, schedule_id: str, action: str) -> Response:
        client = dash.client
        try:
            if action == "pause":
                client.pause_schedule(schedule_id, note="paused from the dashboard")
                toast = f"Schedule {schedule_id!r} paused"
            elif action == "resume":
                client.resume_schedule(schedule_id, note="")
                toast = f"Schedule {schedule_id!r} resumed"
            else:
                started = client.trigger_schedule(schedule_id)
                toast = (
                    f"Started {started}"
                    if started
                    else "Not started: the previous run still runs, and the overlap policy held this one back"
                )
        except ScheduleNotFoundError:
            return dash.message(request, f"There is no schedule {schedule_id!r} in this task hub.", 404)
        except (ValueError, DurableAgentsError) as error:
            return dash.message(request, str(error), 422)
        return dash.done(request, "/schedules", toast)

    def endpoint_for(action: str) -> Callable[[Request, str, dict[str, str]], Response]:
        def endpoint(request: Request, schedule_id: str, form: Form) -> Response:
            return act(request, schedule_id, action)

        return endpoint

    for action in ("pause", "resume", "trigger"):
        router.add_api_route(f"/schedules/{{schedule_id}}/{action}", endpoint_for(action), methods=["POST"])
    return router
