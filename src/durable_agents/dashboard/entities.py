"""Entity pages: the task hub's entities by name and key, and one entity's state and last operations."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..ids import EntityId
from .context import Dashboard, page_route

PAGE_SIZE = 50


def routes(dash: Dashboard) -> APIRouter:
    router = APIRouter(include_in_schema=False, route_class=page_route(dash))
    render = dash.renderer.render

    @router.get("/entities")
    def entities_page(request: Request) -> Response:
        name = request.query_params.get("name", "").strip()[:256] or None
        try:
            offset = max(0, int(request.query_params.get("offset", "0")))
        except ValueError:
            offset = 0
        rows = dash.client.list_entities(name=name, limit=PAGE_SIZE + 1, offset=offset)
        return render(
            request,
            "entities.html",
            nav="entities",
            entities=rows[:PAGE_SIZE],
            more=len(rows) > PAGE_SIZE,
            offset=offset,
            page_size=PAGE_SIZE,
            name=name or "",
            entity_names=sorted({*dash.client.app.registry.entities, *(e.entity_id.name for e in rows)}),
        )

    @router.get("/entities/{entity_id:path}")
    def entity_page(request: Request, entity_id: str) -> Response:
        try:
            entity = EntityId.of(entity_id)
        except ValueError as error:
            return dash.not_found(request, f"{entity_id!r} is not an entity id: {error}")
        found = dash.client.get_entity(entity)
        if found is None:
            return dash.not_found(request, f"There is no entity {str(entity)!r} in this task hub yet.")
        return render(request, "entity.html", nav="entities", entity=found)

    return router
