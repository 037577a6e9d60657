"""Entity routes: list entities, read one (its state and last operations), signal an operation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from ..ids import EntityId
from ..store.entities import EntityState
from .context import ApiContext
from .problems import ApiError
from .schemas import PRINTABLE, Entity, EntityPage, Limit, Offset, SignalAccepted, SignalRequest, errors

ENTITY_ROUTE = "durable_agents.get_entity"

#: "name@key"; the key may hold '/' (the route takes the rest of the path).
EntityIdText = Annotated[str, Path(min_length=3, max_length=248, pattern=PRINTABLE, description='"name@key".')]


def _entity_id(text: str) -> EntityId:
    try:
        return EntityId.of(text)
    except ValueError as error:
        raise ApiError(422, "invalid_input", f"invalid entity id: {error}") from None


def _entity(found: EntityState) -> Entity:
    return Entity.model_validate(found.to_json())


def entity_routes(context: ApiContext) -> APIRouter:
    api = APIRouter(route_class=context.route_class, tags=["entities"])

    @api.get("/entities", response_model=EntityPage, summary="List entities by name and key", responses=errors(422))
    def list_entities(
        name: Annotated[str | None, Query(max_length=256, pattern=PRINTABLE, description="Only this name.")] = None,
        prefix: Annotated[str | None, Query(max_length=256, pattern=PRINTABLE, description="Key prefix.")] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> EntityPage:
        found = context.client.list_entities(name=name, key_prefix=prefix, limit=limit, offset=offset)
        return EntityPage(
            items=[_entity(entity) for entity in found],
            limit=limit,
            offset=offset,
            next_offset=offset + len(found) if len(found) == limit else None,
        )

    @api.get(
        "/entities/{entity_id:path}",
        name=context.route_name(ENTITY_ROUTE),
        operation_id="get_entity",
        response_model=Entity,
        summary="An entity's state, lock and last operations",
        responses=errors(404, 422),
    )
    def get_entity(entity_id: EntityIdText) -> Entity:
        found = context.client.get_entity(_entity_id(entity_id))
        if found is None:
            raise ApiError(404, "entity_not_found", f"no entity {entity_id!r}: an entity exists once it is signalled")
        return _entity(found)

    @api.post(
        "/entities/{entity_id:path}/signal",
        status_code=202,
        response_model=SignalAccepted,
        summary="Signal an operation to an entity (applied once, in order, without waiting)",
        responses=errors(404, 413, 422),
    )
    def signal_entity(
        entity_id: EntityIdText, body: SignalRequest, request: Request, response: Response
    ) -> SignalAccepted:
        """Answers 202 at once; with the app loaded, an unknown entity name or operation answers 404."""
        entity = _entity_id(entity_id)
        context.client.signal_entity(entity, body.operation, body.input)
        status_url = context.url(request, ENTITY_ROUTE, entity_id=str(entity))
        response.headers["Location"] = status_url
        return SignalAccepted(entity_id=str(entity), operation=body.operation, status_url=status_url)

    return api
