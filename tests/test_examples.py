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
