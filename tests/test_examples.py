"""Every example runs as its own program in embedded mode and prints what it should; the quick start
also runs against Postgres and Redis with a separate worker process."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Services, WorkerProcess, new_taskhub, unconfigured_environment

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

#: Beyond conftest's CONFIGURATION_VARIABLES, what else could steer an example off its defaults.
MORE_CONFIGURATION = ("TASKHUB", "DURABLE_AGENTS_", "OPENAI_", "AZURE_OPENAI_")

EMBEDDED_BANNER = "durable-agents: embedded development mode, a single process."
OFFLINE_NOTICE = "agents answer with the bundled test model"
#: Examples with no agent, which say nothing about a model.
WITHOUT_AGENTS = ("quickstart.py", "recurring_schedule.py")

# The examples print instance ids, stream cursors and a deadline a day ahead; the rest is exact.
VARIABLE_PARTS = [
    (re.compile(r"\b[0-9a-f]{32}\b"), "<id>"),
    (re.compile(r"\b\d+-\d+\b(?=:)"), "<cursor>"),
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"), "<time>"),
]

EXPECTED = {
    "quickstart.py": """\
<id>: COMPLETED ['Hello, Tokyo!', 'Hello, Seattle!', 'Hello, London!']
""",
    "single_agent.py": """\
Joke 1: Reply to: Tell me a joke about clouds (turn 1)
Joke 2: Reply to: Tell me another one (turn 2)
Session <id>: 2 turns, 4 messages stored
""",
    "multi_agent.py": """\
Registered agents: Physicist, Chemist
Physicist: Reply to: Explain quantum entanglement (turn 1)
Chemist: Reply to: Explain chemical bonds (turn 1)
""",
    "sequential_chaining.py": """\
Started writer_orchestration: instance <id>
Status: COMPLETED
Refined text: Reply to: Improve this: Reply to: Write a sentence about learning. (turn 1) (turn 2)
""",
    "parallel_execution.py": """\
Started parallel_orchestration on 'entropy': instance <id>
Status: COMPLETED
Physics: Reply to: Explain entropy from a physics perspective (turn 1)

Chemistry: Reply to: Explain entropy from a chemistry perspective (turn 1)

Mathematics: Reply to: Explain entropy from a mathematics perspective (turn 1)
""",
    "conditional_routing.py": """\
E-mail: Hi, can we move tomorrow's design review to 3pm? Thanks, Ana
  conditional_orchestration: instance <id>
  Status: COMPLETED, action: replied
  Draft: Reply to: Draft a reply to: Hi, can we move tomorrow's design review to 3pm? Thanks, Ana (turn 1)
E-mail: CONGRATULATIONS!!! You have won a $1,000,000 prize. Send your bank details to claim it.
  conditional_orchestration: instance <id>
  Status: COMPLETED, action: blocked
  Reason: spam detected
""",
    "human_in_the_loop.py": """\
Started hitl_orchestration: instance <id>
  The draft is written; waiting for approval_received (or escalation at <time>)
  Raised approval_received: {'approved': True}
  Status: COMPLETED, result: published
  Content: Reply to: Write a blog post about AI (turn 1)
Started hitl_orchestration: instance <id>
  The draft is written; waiting for approval_received (or escalation at <time>)
  Raised approval_received: {'approved': False, 'feedback': 'Add more technical details'}
  Status: COMPLETED, result: revised
  Content: Reply to: Revise this based on feedback 'Add more technical details': \
Reply to: Write a blog post about AI (turn 1) (turn 1)
""",
    "long_running_tool.py": """\
Asked the Researcher for a report: turn instance @turn:<id>
  Checkpointed: the turn waits for the durable tool (activity tool.compile_report)
  Tool call: compile_report({"topic": "durable execution"})
  Tool result: Report on durable execution: 3 sources read, 12 findings, 2 open questions.
  Checkpointed steps of the turn: durable_agents.agent_model_call, tool.compile_report, \
durable_agents.agent_model_call, durable_agents.agent_commit_turn
Researcher: Reply to: Write a report on durable execution (turn 1)
""",
    "tool_approval.py": """\
Waiting for approval: delete_file({'path': 'old.log'}) for agent Janitor
  approved, with the path changed to old.log.1
Waiting for approval: delete_file({'path': 'notes.txt'}) for agent Janitor
  rejected: notes.txt is still in use
Tool result: deleted old.log.1
Tool result: The call to 'delete_file' was not run: a person rejected it. Reason: notes.txt is still in use
Janitor: Reply to: Tidy up the shared drive (turn 1)
""",
    "recurring_schedule.py": """\
Schedule team-digest: every second, overlap skip
Run at its fire time: COMPLETED digest sent to platform
Run at its fire time: COMPLETED digest sent to platform
Run by hand while paused: COMPLETED digest sent to platform
""",
    "reliable_streaming.py": """\
Asked the Storyteller for a story: correlation id <id>
Read 8 chunks, then disconnected: 'The lighthouse keeper wrote every passing ship into '
Resumed from cursor <cursor>: 'a ledger. One stormy night a ship sailed past that was already in it, \
dated a hundred years before. He lit the lamp anyway.'
Story: The lighthouse keeper wrote every passing ship into a ledger. One stormy night a ship sailed past \
that was already in it, dated a hundred years before. He lit the lamp anyway.
Streamed text equals the stored response: True
""",
}


def embedded_env() -> dict[str, str]:
    """No services and no model configured: embedded mode and the bundled test model."""
    return {key: value for key, value in unconfigured_environment().items() if not key.startswith(MORE_CONFIGURATION)}


def normalised(printed: str) -> str:
    for pattern, placeholder in VARIABLE_PARTS:
        printed = pattern.sub(placeholder, printed)
    return printed


def test_every_example_is_tested() -> None:
    assert sorted(path.name for path in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_runs_embedded(script: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        cwd=tmp_path,
        env=embedded_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert normalised(result.stdout) == EXPECTED[script], result.stderr
    assert EMBEDDED_BANNER in result.stderr
    assert (OFFLINE_NOTICE in result.stderr) == (script not in WITHOUT_AGENTS)
    assert (tmp_path / "durable_agents.db").is_file()  # the store is the SQLite file in the working directory


def test_quickstart_with_services_and_a_separate_worker(services: Services, effects_dir: Path) -> None:
    taskhub = new_taskhub("quickstart")
    worker = WorkerProcess(
        services, effects_dir, taskhub, module="quickstart:app", extra_env={"PYTHONPATH": str(EXAMPLES)}
    ).start()
    try:
        result = subprocess.run(
            [sys.executable, "quickstart.py"],
            cwd=EXAMPLES,
            env={
                **embedded_env(),
                "DATABASE_URL": services.database_url,
                "REDIS_URL": services.redis_url,
                "TASKHUB": taskhub,
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        worker.stop()
    assert result.returncode == 0, result.stderr
    assert normalised(result.stdout) == EXPECTED["quickstart.py"]
    assert EMBEDDED_BANNER not in result.stderr  # the client ran no worker of its own...
    log = worker.log_path.read_text()  # ...the separate worker ran the orchestration, named as Celery shows it
    assert re.search(r"Task orchestration:hello_cities\[[^]]+\] succeeded", log), log
    assert not (EXAMPLES / "durable_agents.db").exists()
