"""Replay tests: recorded histories replayed against the code in hand, in process, running no activity.

What `durable-agents replay` and `durable_agents.testing.replay` share. Only the pure engine runs: no
activity, no database write, no message; a divergence is reported with its task number, what history
recorded, what the code does instead and the line the code was at.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import NonDeterminismError, NotRegisteredError
from .orchestrator.executor import Divergence, ReplayExecutor, describe_action
from .orchestrator.history import ExecutionCompleted, ExecutionStarted, HistoryEvent, event_from_json
from .registry import Registry
from .serialization import DEFAULT_MAX_PAYLOAD_BYTES


@dataclass(frozen=True)
class RecordedHistory:
    """One instance's recorded history, as `durable-agents history ID --json` or `export` prints it."""

    instance_id: str
    events: Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class ReplayReport:
    """The outcome of replaying one history: compatible, or where it diverged (or why it could not run)."""

    instance_id: str
    name: str
    divergence: Divergence | None = None
    problem: str | None = None

    @property
    def compatible(self) -> bool:
        return self.divergence is None and self.problem is None

    def describe(self) -> str:
        if self.divergence is not None:
            return f"{self.instance_id} ({self.name}): diverges at {self.divergence.describe()}"
        if self.problem is not None:
            return f"{self.instance_id} ({self.name}): {self.problem}"
        return f"{self.instance_id} ({self.name}): compatible"

    def to_json(self) -> dict[str, Any]:
        divergence = self.divergence
        return {
            "instance_id": self.instance_id,
            "name": self.name,
            "compatible": self.compatible,
            "divergence": None
            if divergence is None
            else {
                "task_id": divergence.task_id,
                "expected": divergence.expected,
                "actual": divergence.actual,
                "location": divergence.location,
            },
            "problem": self.problem,
        }


def replay_history(
    registry: Registry,
    history: RecordedHistory,
    *,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
) -> ReplayReport:
    """Replay `history` against the orchestrations in `registry`."""
    try:
        events: list[HistoryEvent] = [event_from_json(dict(event)) for event in history.events]
    except Exception as error:
        return ReplayReport(history.instance_id, "?", problem=f"not a history this release reads ({error})")
    started = next((event for event in events if isinstance(event, ExecutionStarted)), None)
    if not events:  # not started yet: nothing recorded, nothing to disagree with
        return ReplayReport(history.instance_id, "?")
    if started is None:
        return ReplayReport(history.instance_id, "?", problem="the history has no ExecutionStarted: nothing to replay")
    try:
        orchestrator = registry.orchestration(started.name).fn
    except NotRegisteredError as error:
        return ReplayReport(history.instance_id, started.name, problem=str(error))
    executor = ReplayExecutor(
        orchestrator,
        history.instance_id,
        max_payload_bytes=max_payload_bytes,
        result_type_of=registry.result_type_of,
        agent_factory=registry.agent_factory,
    )
    executor.replay(events)
    if executor.divergence is not None:
        return ReplayReport(history.instance_id, started.name, divergence=executor.divergence)
    extra = sorted(executor.state.new_actions.items())
    if extra:  # the code scheduled more in a step than history recorded for it
        task_id, action = extra[0]
        divergence = Divergence(task_id, "nothing more in that step", describe_action(action), executor.location())
        return ReplayReport(history.instance_id, started.name, divergence=divergence)
    ended = any(isinstance(event, ExecutionCompleted) for event in events)
    if executor.is_finished and not ended:
        return ReplayReport(
            history.instance_id,
            started.name,
            problem="the code now ends (returns or raises) where the recorded execution went on waiting",
        )
    return ReplayReport(history.instance_id, started.name)


def replay_all(
    registry: Registry, histories: Iterable[RecordedHistory], *, max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
) -> list[ReplayReport]:
    return [replay_history(registry, history, max_payload_bytes=max_payload_bytes) for history in histories]


def read_histories(path: Path) -> list[RecordedHistory]:
    """The histories in a file: the list `history ID --json` prints (its instance named after the file), or
    what `export` writes (a list of objects with `instance_id` and `history`)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read a history from {str(path)!r}: {error}") from error
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise ValueError(f"{str(path)!r} holds no history: expected the JSON of `durable-agents history ID --json`")
    if all(isinstance(item, dict) and "type" in item for item in data):
        return [RecordedHistory(path.stem, data)]
    histories = []
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("history"), list):
            raise ValueError(
                f"{str(path)!r} is neither `history ID --json` output nor `export` output "
                "(objects with 'instance_id' and 'history')"
            )
        histories.append(RecordedHistory(str(item.get("instance_id", path.stem)), item["history"]))
    return histories


def raise_on_divergence(reports: Iterable[ReplayReport]) -> None:
    """Raise NonDeterminismError naming every history that no longer replays (for tests)."""
    failed = [report.describe() for report in reports if not report.compatible]
    if failed:
        raise NonDeterminismError("recorded histories no longer replay: " + "; ".join(failed))
