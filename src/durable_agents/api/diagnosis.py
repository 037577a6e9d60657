"""Diagnosis routes: why an instance is not progressing, and which workers serve the task hub."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from .context import ApiContext
from .schemas import ExplanationBody, InstanceId, Worker, WorkerList, errors


def diagnosis_routes(context: ApiContext) -> APIRouter:
    api = APIRouter(route_class=context.route_class)

    @api.get(
        "/instances/{instance_id}/explain",
        response_model=ExplanationBody,
        tags=["instances"],
        summary="Why an instance is not progressing",
        responses=errors(404, 422),
    )
    def explain_instance(instance_id: InstanceId) -> ExplanationBody:
        """Finished, suspended, scheduled, no live worker serves what it needs (`no_worker`, with
        `needs_attention`), or what it waits for and since when. Event names are listed when the API
        was started with the app (`durable-agents api MODULE:app`)."""
        return ExplanationBody.model_validate(context.client.explain(instance_id).to_json())

    @api.get(
        "/workers", response_model=WorkerList, tags=["workers"], summary="The task hub's workers", responses=errors(422)
    )
    def list_workers(
        include_dead: Annotated[
            bool, Query(description="Also workers whose heartbeats stopped within the last hour.")
        ] = False,
    ) -> WorkerList:
        """Live workers first, with the queues they consume and the names they serve."""
        workers = context.client.list_workers(include_dead=include_dead)
        return WorkerList(items=[Worker.model_validate(w.to_json()) for w in workers])

    return api
