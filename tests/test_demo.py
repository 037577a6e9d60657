"""`pip install .` then `durable-agents demo`, in a fresh virtual environment, with no services reachable."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import unconfigured_environment

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the project installed the way a user installs it."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", str(ROOT)],
        check=True,
        timeout=600,
    )
    return venv / "bin" / "durable-agents"


def offline(command: list[str]) -> list[str]:
    """`command` in a network namespace of its own: only a loopback with nothing listening on it, so
    PostgreSQL and Redis are unreachable. Needs root (CI has it); elsewhere the services stay
    reachable but unconfigured."""
    if os.geteuid() == 0 and shutil.which("unshare"):
        return ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "offline", *command]
    return command


def run_demo(executable: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = unconfigured_environment()
    return subprocess.run(
        offline([str(executable), "demo", *args]),
        cwd=cwd,
        env={**env, "COLUMNS": "120"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_demo_runs_every_pattern_with_no_services(installed: Path, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        probe = subprocess.run(offline(["pg_isready", "-h", "127.0.0.1"]), capture_output=True, text=True)
        assert probe.returncode != 0, "PostgreSQL must be unreachable inside the demo's namespace"

    result = run_demo(installed, tmp_path, "--json")

    assert result.returncode == 0, result.stderr
    assert "embedded development mode" in result.stderr
    assert "bundled test model" in result.stderr
    by_pattern = {entry["pattern"]: entry for entry in json.loads(result.stdout)}
    assert list(by_pattern) == [
        "Single agent, multi-turn",
        "Two agents",
        "Sequential chaining",
        "Parallel agents",
        "Conditional routing",
        "Human in the loop",
        "Long-running durable tool",
        "Resumed stream",
    ]
    assert all(entry["steps"] > 0 and entry["instance_id"] for entry in by_pattern.values())
    assert "Joke 2: Clouds never pay" in by_pattern["Single agent, multi-turn"]["text"]
    assert "the session holds 2 turns" in by_pattern["Single agent, multi-turn"]["what_happened"]
    assert "Chemist: Reply to: Explain chemical bonds (turn 1)" in by_pattern["Two agents"]["text"]
    assert by_pattern["Sequential chaining"]["text"].startswith("Learning is the quiet habit")
    assert by_pattern["Parallel agents"]["text"].count("perspective") == 3
    assert "spam was blocked, the real e-mail was replied" in by_pattern["Conditional routing"]["what_happened"]
    assert "published" in by_pattern["Human in the loop"]["what_happened"]
    assert "'status': 'escalated'" in by_pattern["Human in the loop"]["text"]
    assert "FLIGHT-LISBON-2" in by_pattern["Long-running durable tool"]["text"]
    assert by_pattern["Resumed stream"]["text"] == "Learning turns mistakes into maps."
    assert "took 3 chunks" in by_pattern["Resumed stream"]["what_happened"]
    assert (tmp_path / "durable_agents.db").exists()  # the store is a file in the working directory


def test_demo_prints_for_people(installed: Path, tmp_path: Path) -> None:
    result = run_demo(installed, tmp_path, "chaining")

    assert result.returncode == 0, result.stderr
    assert "Sequential chaining" in result.stdout
    assert "checkpointed" in result.stdout
    assert "1 of 8 patterns completed" in result.stdout


def test_demo_refuses_an_unknown_pattern_in_one_line(installed: Path, tmp_path: Path) -> None:
    result = run_demo(installed, tmp_path, "teleport")

    assert result.returncode != 0
    assert "unknown pattern(s) teleport" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_demo_introduces_itself_once_in_plain_words_at_80_columns(tmp_path: Path) -> None:
    from conftest import python_path

    env = {**unconfigured_environment(), "COLUMNS": "80", "PYTHONPATH": python_path()}
    result = subprocess.run(
        [sys.executable, "-m", "durable_agents", "demo", "chaining", "routing"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    printed = result.stdout + result.stderr
    first = printed.splitlines()[0]
    assert first == "durable-agents demo: 2 patterns, in embedded development mode: one process, no services"
    assert "[bold]" not in printed and "on embedded mode" not in printed
    assert f"SQLite file {tmp_path / 'durable_agents.db'};" in printed  # the path whole, on one line
    assert printed.count("embedded development mode") == 1  # the embedded worker's banner is not repeated
    assert "2 of 8 patterns completed" in result.stdout and "Every pattern" not in result.stdout
