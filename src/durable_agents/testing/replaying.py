"""`replay(app, history)`: a pytest check that recorded histories still replay against the app's code."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..app import DurableApp
from ..replays import RecordedHistory, ReplayReport, raise_on_divergence, read_histories, replay_all


def replay(app: DurableApp, history: str | Path | RecordedHistory | Sequence[Mapping[str, Any]]) -> list[ReplayReport]:
    """Replay `history` (a file written by `durable-agents history ID --json` or `export`, a list of its
    events, or a `RecordedHistory`) against `app`'s orchestrations, in process and running no activity.

    Raises NonDeterminismError naming the first divergence of each history that no longer replays;
    returns the reports (all compatible) otherwise.
    """
    if isinstance(history, (str, Path)):
        histories = read_histories(Path(history))
    elif isinstance(history, RecordedHistory):
        histories = [history]
    else:
        histories = [RecordedHistory("history", list(history))]
    reports = replay_all(app.registry, histories, max_payload_bytes=app.settings.max_payload_bytes)
    raise_on_divergence(reports)
    return reports
