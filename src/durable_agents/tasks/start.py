"""Starting an instance: check the request, write the instance and its start, wake a worker."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError

from .. import ids
from ..errors import InstanceExistsError
from ..moments import bounded_or_none
from ..orchestrator.versions import checked_version
from ..serialization import encode
from ..store import instances
from ..store.db import transaction
from ..tags import checked_tags
from .dispatch import wake

if TYPE_CHECKING:
    from ..app import DurableApp


def start_instance(
    app: DurableApp,
    name: str,
    *,
    input: Any,
    instance_id: str | None,
    start_at: datetime | None,
    reuse_id: bool,
    check_name: bool,
    tags: Mapping[str, str] | None = None,
    version: str | None = None,
) -> str:
    """Start orchestration `name` and return the instance's id (see `DurableClient.schedule_new_orchestration`).
    With `check_name`, a name the app's registry lacks is refused here rather than failing the instance."""
    if check_name:
        app.registry.orchestration(name)  # a clear error for a misspelt name
    instance_id = instance_id or ids.new_instance_id()
    if len(instance_id) > 256:
        raise ValueError("instance_id must be 1 to 256 characters long")
    start_at = bounded_or_none(start_at, "start_at")
    checked = checked_tags(tags)
    settings = app.settings
    encoded = encode(input, what=f"input of orchestration {name!r}", limit=settings.max_payload_bytes)
    try:
        with transaction(settings.database_url) as session:
            scheduled = instances.create(
                session,
                taskhub=settings.taskhub,
                instance_id=instance_id,
                name=name,
                input=encoded,
                start_at=start_at,
                reuse_id=reuse_id,
                tags=checked,
                version=checked_version(version),
            )
    except IntegrityError as error:  # a concurrent start with the same id won the race
        raise InstanceExistsError(instance_id, "just created by another client") from error
    if not scheduled:  # a start time already past starts now, not when the sweeper next looks
        wake(app, instance_id)
    return instance_id
