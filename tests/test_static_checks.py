"""The code standards are part of the test command: ruff and mypy --strict on src/ stay clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff() -> None:
    lint = run("ruff", "check", "src", "tests", "examples", "bench")
    assert lint.returncode == 0, lint.stdout
    formatting = run("ruff", "format", "--check", "src", "tests", "examples", "bench")
    assert formatting.returncode == 0, formatting.stdout


def test_mypy_strict() -> None:
    result = run("mypy", "src")
    assert result.returncode == 0, result.stdout
