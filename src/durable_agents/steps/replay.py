"""A fresh executor for an instance no cache holds: its code, replayed against its stored history."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ..errors import NotRegisteredError
from ..orchestrator.context import OrchestrationContext
from ..orchestrator.executor import ReplayExecutor
from ..registry import Registry
from ..store.locked import LockedInstance
from ..store.step_reads import read_history


def fresh_executor(
    session: Session, instance: LockedInstance, registry: Registry, max_payload_bytes: int
) -> ReplayExecutor:
    try:
        orchestrator = registry.orchestration(instance.name).fn
    except NotRegisteredError as error:
        missing = error

        # The instance fails at its next step with the registry's own message, as any code that raises.
        def orchestrator(context: OrchestrationContext) -> Any:
            raise missing

    executor = ReplayExecutor(
        orchestrator,
        instance.instance_id,
        max_payload_bytes=max_payload_bytes,
        result_type_of=registry.result_type_of,
        agent_factory=registry.agent_factory,
    )
    if instance.history_length:
        executor.replay(read_history(session, instance.taskhub, instance.instance_id))
    return executor
