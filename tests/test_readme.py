"""The README's first example runs as written: embedded with no services, and on PostgreSQL, Redis and a worker."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import Services, new_taskhub, python_path, unconfigured_environment

README = Path(__file__).resolve().parent.parent / "README.md"
EXPECTED = "Reply to: Write about durable agents (turn 1)"


def first_example(folder: Path) -> Path:
    block = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[0]
    assert len(block.strip().splitlines()) <= 17, "the first screen's example stays short"
    script = folder / "post.py"
    script.write_text(block)
    return script


def run(script: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = unconfigured_environment()
    return subprocess.run(
        [sys.executable, script.name],
        cwd=script.parent,
        env={**base, "PYTHONPATH": python_path(), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_readme_example_runs_embedded_with_no_services(tmp_path: Path) -> None:
    result = run(first_example(tmp_path))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == EXPECTED
    assert "embedded development mode" in result.stderr
    assert (tmp_path / "durable_agents.db").exists()


def test_readme_example_runs_on_services_with_a_worker(services: Services, tmp_path: Path, start_worker: Any) -> None:
    script = first_example(tmp_path)
    hub = new_taskhub("readme")
    start_worker(hub, extra_env={"PYTHONPATH": str(tmp_path)}, module="post:app")

    result = run(script, DATABASE_URL=services.database_url, REDIS_URL=services.redis_url, TASKHUB=hub)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == EXPECTED
    assert "embedded" not in result.stderr
    assert not (tmp_path / "durable_agents.db").exists()


def test_every_install_in_the_readme_installs_from_the_clone() -> None:
    # The package is not on a public index: `pip install durable-agents[...]` would fail for a reader.
    installs = re.findall(r"pip install [^\n`&]*", README.read_text())
    assert installs and all(re.fullmatch(r'pip install (-e )?"?\.(\[[a-z,]+\])?"?\s*(#.*)?', i) for i in installs), (
        installs
    )
    assert "cd durable-agents" in README.read_text()  # clone, then work in its folder
