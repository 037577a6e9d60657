"""Every example runs, against the real services, and prints what the README says it prints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import Services, new_taskhub

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_quickstart(services: Services) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": services.database_url,
        "REDIS_URL": services.redis_url,
        "TASKHUB": new_taskhub("quickstart"),
    }
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py")], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "COMPLETED ['Hello, Tokyo!', 'Hello, Seattle!', 'Hello, London!']" in result.stdout


def test_agents_quickstart_offline(services: Services) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"OPENAI_API_KEY", "MODEL_SERVER_URL"}},
        "DATABASE_URL": services.database_url,
        "REDIS_URL": services.redis_url,
        "TASKHUB": new_taskhub("agentsquick"),
    }
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "agents_quickstart.py")], env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.split(":")[0] in {"Joke 1", "Joke 2", "Writer"}]
    assert lines == [
        "Joke 1: Reply to: Tell me a joke about clouds (turn 1)",
        "Joke 2: Reply to: Tell me another one (turn 2)",
        "Writer: Reply to: Improve this: Reply to: Write a sentence about learning. (turn 1) (turn 2)",
    ]
