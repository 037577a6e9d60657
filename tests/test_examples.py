"""Every example runs, against the real services, and prints what the README says it prints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import Services, new_taskhub

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(services: Services, script: str, *, timeout: float, without: tuple[str, ...] = ()) -> str:
    """Run an example on a fresh task hub with the real services; return what it printed."""
    env = {
        **{key: value for key, value in os.environ.items() if key not in without},
        "DATABASE_URL": services.database_url,
        "REDIS_URL": services.redis_url,
        "TASKHUB": new_taskhub(script.removesuffix(".py").replace("_", "")),
    }
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script)], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_quickstart(services: Services) -> None:
    printed = run_example(services, "quickstart.py", timeout=120)
    assert "COMPLETED ['Hello, Tokyo!', 'Hello, Seattle!', 'Hello, London!']" in printed


def test_agents_quickstart_offline(services: Services) -> None:
    printed = run_example(services, "agents_quickstart.py", timeout=180, without=("OPENAI_API_KEY", "MODEL_SERVER_URL"))
    lines = [line for line in printed.splitlines() if line.split(":")[0] in {"Joke 1", "Joke 2", "Writer"}]
    assert lines == [
        "Joke 1: Reply to: Tell me a joke about clouds (turn 1)",
        "Joke 2: Reply to: Tell me another one (turn 2)",
        "Writer: Reply to: Improve this: Reply to: Write a sentence about learning. (turn 1) (turn 2)",
    ]
