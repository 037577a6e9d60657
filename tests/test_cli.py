"""The command line on real workers: help everywhere, JSON for scripts, the timeline, agents, one-line errors."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import uuid
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import durable_agents
from durable_agents import DurableClient, OrchestrationStatus
from durable_agents.agents.proxy import AGENT_TURN, SESSION_ORCHESTRATION, session_entity
from durable_agents.cli import app as cli_app

from conftest import Services, WorkerProcess, new_taskhub, python_path, run_cli, wait_until


def cli(services: Services, taskhub: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`durable-agents ARGS` against the test database and Redis (always explicit: never the embedded default)."""
    base = {"DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url, "TASKHUB": taskhub}
    return run_cli(*args, env={**base, **env})


def ok_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cli_history_rows(output: str) -> list[str]:
    """The event rows of a `history` table (each starts with its time offset)."""
    return [line for line in output.splitlines() if re.search(r"\+\d", line)]


# -- help everywhere ------------------------------------------------------------------------------


def all_commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every command and group under `group` (Typer's Click objects), with its path of names."""
    found: list[tuple[tuple[str, ...], Any]] = []
    for name, command in group.commands.items():
        found.append(((*path, name), command))
        if hasattr(command, "commands"):
            found.extend(all_commands(command, (*path, name)))
    return found


def test_every_command_and_option_has_help() -> None:
    commands = all_commands(typer.main.get_command(cli_app))
    names = {" ".join(path) for path, _ in commands}
    expected = {
        "worker", "db", "db upgrade", "db check", "start", "status", "list", "history", "raise-event", "terminate",
        "suspend", "resume", "purge", "stream", "agents", "agents run", "agents session", "agents sessions",
        "agents reset", "agents delete", "explain", "workers", "approvals", "approvals list", "approvals show",
        "approvals approve", "approvals reject", "entities", "entities list", "entities show", "entities signal",
        "replay", "export", "rewind", "restart",
    }  # fmt: skip
    assert expected <= names
    runner = CliRunner()
    for path, command in commands:
        assert command.help, f"`{' '.join(path)}` has no help text"
        result = runner.invoke(cli_app, [*path, "--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
        assert result.exit_code == 0, (path, result.output)
        for param in command.params:
            if param.param_type_name == "option":
                assert param.help, f"option {param.opts} of `{' '.join(path)}` has no help text"
                assert param.opts[0] in result.output, (path, param.opts[0])
            else:
                assert getattr(param, "help", None), f"argument {param.name} of `{' '.join(path)}` has no help text"


def test_help_and_version_from_the_entry_point() -> None:
    shown = run_cli("--help", env={})
    assert shown.returncode == 0
    for command in ("worker", "start", "history", "raise-event", "stream", "agents"):
        assert command in shown.stdout
    assert run_cli("agents", "run", "--help", env={}).returncode == 0
    version = run_cli("--version", env={})
    assert version.returncode == 0 and version.stdout.strip() == f"durable-agents {durable_agents.__version__}"


# -- instances ------------------------------------------------------------------------------------


def test_start_raise_event_and_inspect_as_json(services: Services, client: DurableClient) -> None:
    hub = client.taskhub
    started = ok_json(cli(services, hub, "start", "approval", "--input", '{"timeout_seconds": 3600}', "--json"))
    assert started == {"instance_id": started["instance_id"], "name": "approval", "taskhub": hub}
    instance_id = started["instance_id"]
    client.wait_for_orchestration_start(instance_id)

    raised = ok_json(
        cli(services, hub, "raise-event", instance_id, "approval_received", "--data", '{"approved": 1}', "--json")
    )
    assert raised == {"instance_id": instance_id, "event": "approval_received", "data": {"approved": 1}}
    client.wait_for_orchestration_completion(instance_id)

    state = ok_json(cli(services, hub, "status", instance_id, "--json"))
    assert state["instance_id"] == instance_id and state["name"] == "approval" and state["taskhub"] == hub
    assert state["runtime_status"] == "COMPLETED"
    assert state["input"] == {"timeout_seconds": 3600}
    assert state["output"] == {"status": "approved", "data": {"approved": 1}}
    assert state["failure_details"] is None and state["completed_at"] is not None

    shown = cli(services, hub, "status", instance_id)
    assert shown.returncode == 0
    assert "COMPLETED" in shown.stdout and '"approved"' in shown.stdout

    listed = ok_json(cli(services, hub, "list", "--json", "--name", "approval", "--status", "completed"))
    mine = [s for s in listed if s["instance_id"] == instance_id]
    assert len(mine) == 1 and mine[0]["runtime_status"] == "COMPLETED"
    assert all(s["name"] == "approval" and s["runtime_status"] == "COMPLETED" for s in listed)
    table = cli(services, hub, "list", "--prefix", instance_id[:12])
    assert instance_id in table.stdout and "COMPLETED" in table.stdout

    events = ok_json(cli(services, hub, "history", instance_id, "--json"))
    types = [e["type"] for e in events]
    assert [t for t in types if t != "StepStarted"] == [
        "ExecutionStarted",
        "TimerCreated",
        "EventRaised",
        "ExecutionCompleted",
    ]
    assert all({"seq", "type", "recorded_at"} <= set(e) for e in events)
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)


def test_history_timeline_shows_activities_in_order(services: Services, client: DurableClient) -> None:
    final = ok_json(cli(services, client.taskhub, "start", "sequence", "--wait", "--json"))
    assert final["runtime_status"] == "COMPLETED"
    assert final["output"] == {"greetings": ["Hello, Tokyo!", "Hello, Seattle!", "Hello, London!"], "doubled": 42}

    shown = cli(services, client.taskhub, "history", final["instance_id"])
    assert shown.returncode == 0, shown.stderr
    assert final["instance_id"] in shown.stdout and "sequence" in shown.stdout
    rows = cli_history_rows(shown.stdout)
    scheduled = [re.search(r"TaskScheduled\W+(\w+)\W+(\d+)\W+(.*?)\s*[│|]", row) for row in rows]
    assert [(m.group(1), m.group(2)) for m in scheduled if m] == [
        ("hello", "1"),
        ("hello", "2"),
        ("hello", "3"),
        ("async_double", "4"),
    ]
    assert [m.group(3) for m in scheduled if m] == ["Tokyo", "Seattle", "London", "21"]
    # Each completion names its activity and says how long it took since it was scheduled.
    completed = [re.search(r"TaskCompleted\W+(\w+)\W+(\d+)\W+(\d+\.\d{3}s)\W+(.*?)\s*[│|]", row) for row in rows]
    assert [(m.group(1), m.group(4)) for m in completed if m] == [
        ("hello", "Hello, Tokyo!"),
        ("hello", "Hello, Seattle!"),
        ("hello", "Hello, London!"),
        ("async_double", "42"),
    ]
    assert "ExecutionStarted" in rows[0] and "ExecutionCompleted" in rows[-1] and "COMPLETED" in rows[-1]
    assert "StepStarted" not in shown.stdout
    assert "StepStarted" in cli(services, client.taskhub, "history", final["instance_id"], "--steps").stdout


def test_start_and_list_by_tag(services: Services, client: DurableClient) -> None:
    team = f"team-{uuid.uuid4().hex[:8]}"
    started = ok_json(cli(services, client.taskhub, "start", "plain_function", "--tag", f"team={team}", "--json"))
    cli(services, client.taskhub, "start", "plain_function", "--json")
    listed = ok_json(cli(services, client.taskhub, "list", "--tag", f"team={team}", "--json"))
    assert [state["instance_id"] for state in listed] == [started["instance_id"]]
    assert listed[0]["tags"] == {"team": team}
    assert_one_line_error(cli(services, client.taskhub, "list", "--tag", "team"), "name=value")


def test_failures_show_in_status_and_history(services: Services, client: DurableClient) -> None:
    failed = cli(services, client.taskhub, "start", "uncaught_failure", "--wait")
    assert failed.returncode == 1  # --wait exits non-zero unless the instance completed
    assert "FAILED" in failed.stdout and "nobody catches this" in failed.stdout
    instance_id = re.search(r"instance\s+(\S+)", failed.stdout).group(1)  # type: ignore[union-attr]
    timeline = cli(services, client.taskhub, "history", instance_id).stdout
    assert re.search(r"TaskFailed\W+boom\W+1\W+\d+\.\d{3}s\W+\w*Error: nobody catches this", timeline), timeline


def test_suspend_resume_terminate_and_purge(services: Services, client: DurableClient) -> None:
    hub = client.taskhub
    instance_id = ok_json(cli(services, hub, "start", "approval", "--input", '{"timeout_seconds": 3600}', "--json"))[
        "instance_id"
    ]
    client.wait_for_orchestration_start(instance_id)

    def status_is(status: OrchestrationStatus) -> bool:
        state = client.get_orchestration_state(instance_id)
        return state is not None and state.runtime_status == status

    assert ok_json(cli(services, hub, "suspend", instance_id, "--reason", "lunch", "--json")) == {
        "instance_id": instance_id,
        "requested": "suspend",
    }
    wait_until(lambda: status_is(OrchestrationStatus.SUSPENDED), message="the instance to suspend")
    assert "SUSPENDED" in cli(services, hub, "list", "--status", "suspended").stdout
    resumed = cli(services, hub, "resume", instance_id)
    assert resumed.returncode == 0 and f"asked {instance_id} to resume" in resumed.stdout
    wait_until(lambda: status_is(OrchestrationStatus.RUNNING), message="the instance to resume")

    purge_running = cli(services, hub, "purge", instance_id)
    assert_one_line_error(purge_running, "only COMPLETED, FAILED or TERMINATED instances can be purged")

    terminated = ok_json(cli(services, hub, "terminate", instance_id, "--output", '"stopped"', "--json"))
    assert terminated == {"instance_id": instance_id, "terminated": True}
    wait_until(lambda: status_is(OrchestrationStatus.TERMINATED), message="the instance to terminate")
    assert ok_json(cli(services, hub, "status", instance_id, "--json"))["output"] == "stopped"
    again = ok_json(cli(services, hub, "terminate", instance_id, "--json"))
    assert again == {"instance_id": instance_id, "terminated": False}

    assert ok_json(cli(services, hub, "purge", instance_id, "--json")) == {"purged": 1, "instance_id": instance_id}
    assert client.get_orchestration_state(instance_id) is None
    assert_one_line_error(cli(services, hub, "purge"), "name the instance to purge")


def test_explain_and_workers(services: Services, client: DurableClient, worker: WorkerProcess) -> None:
    hub = client.taskhub
    instance_id = client.schedule_new_orchestration("approval", input={"timeout_seconds": 3600})
    wait_until(lambda: client.explain(instance_id).reason == "waiting_for_event", message="the instance to wait")
    # With the app the code is replayed, so the event is named; without it, it cannot be.
    why = ok_json(cli(services, hub, "explain", instance_id, "--json", DURABLE_AGENTS_APP="workflows:app"))
    assert why["reason"] == "waiting_for_event" and why["needs_attention"] is False
    assert why["pending"][0]["kind"] == "event" and why["pending"][0]["name"] == "approval_received"
    blind = ok_json(cli(services, hub, "explain", instance_id, "--json"))
    assert blind["reason"] == "waiting_for_timer" and "approval_received" not in json.dumps(blind)
    assert any("does not have the code of 'approval'" in line for line in blind["notes"])
    shown = cli(services, hub, "explain", instance_id, "--app", "workflows:app")
    assert shown.returncode == 0, shown.stderr
    assert "waiting_for_event" in shown.stdout and "approval_received" in shown.stdout
    client.terminate_orchestration(instance_id)
    assert_one_line_error(cli(services, hub, "explain", "ghost"), "ghost")

    listed = ok_json(cli(services, hub, "workers", "--json"))
    [mine] = [w for w in listed if w["node_name"].startswith(f"{worker.name}@")]
    assert mine["live"] is True and "approval" in mine["orchestrations"] and mine["queues"]
    assert mine["worker_id"] in {w["worker_id"] for w in ok_json(cli(services, hub, "workers", "--all", "--json"))}
    table = cli(services, hub, "workers")
    assert table.returncode == 0 and worker.name in table.stdout
    assert re.search(r"orchestrations +.*\bapproval\b", table.stdout), table.stdout

    orphan_hub = new_taskhub("orphan")  # no worker serves it
    orphan = ok_json(cli(services, orphan_hub, "start", "approval", "--json"))["instance_id"]
    told = cli(services, orphan_hub, "explain", orphan)
    assert told.returncode == 0, told.stderr
    assert "no_worker" in told.stdout and "needs attention" in told.stdout and "no live worker" in told.stdout
    assert ok_json(cli(services, orphan_hub, "workers", "--json")) == []


def test_at_80_columns_ids_stay_whole_and_the_start_of_one_will_do(
    services: Services, client: DurableClient, worker: WorkerProcess
) -> None:
    hub = client.taskhub
    stem = f"narrow-{uuid.uuid4().hex[:6]}"
    ids = [
        client.schedule_new_orchestration(
            "approval", input={"timeout_seconds": 300}, instance_id=f"{stem}-{n}-{uuid.uuid4().hex}"
        )
        for n in range(2)
    ]
    narrow = cli(services, hub, "list", "--prefix", stem, COLUMNS="80")
    assert narrow.returncode == 0, narrow.stderr
    lines = narrow.stdout.splitlines()
    assert all(any(instance_id in line for line in lines) for instance_id in ids), narrow.stdout  # never cut
    assert max(len(line) for line in lines) <= 80
    workers = cli(services, hub, "workers", COLUMNS="80")
    assert workers.returncode == 0 and max(len(line) for line in workers.stdout.splitlines()) <= 80
    node = next(line for line in workers.stdout.splitlines() if worker.name in line)
    assert f"{worker.name}@" in node and "live" in node, workers.stdout  # the node name whole, on its own line

    # Wherever an id is taken, a unique start of one will do; an ambiguous start is refused in one line.
    first = ids[0][: len(stem) + 10]
    assert ok_json(cli(services, hub, "status", first, "--json"))["instance_id"] == ids[0]
    assert cli(services, hub, "history", first).returncode == 0
    assert ok_json(cli(services, hub, "raise-event", first, "approval_received", "--json"))["instance_id"] == ids[0]
    assert_one_line_error(cli(services, hub, "terminate", stem), f"'{stem}' is the start of several instance ids")
    assert ok_json(cli(services, hub, "terminate", ids[1][: len(stem) + 10], "--json"))["terminated"] is True
    assert client.wait_for_orchestration_completion(ids[0]).runtime_status == "COMPLETED"


# -- agents ---------------------------------------------------------------------------------------


@pytest.fixture
def agents_cli(services: Services, agents_worker: WorkerProcess, fresh_model: Any, effects_dir: Any) -> Any:
    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return cli(services, agents_worker.taskhub, *args, DA_TEST_EFFECTS_DIR=str(effects_dir), **env)

    return run


def test_agents_run_continues_a_session(agents_cli: Any, fresh_model: Any) -> None:
    session = new_taskhub("cli-session-")
    first = ok_json(agents_cli("agents", "run", "Joker", "Tell me a joke about clouds", "--session", session, "--json"))
    assert first["text"] == "Reply to: Tell me a joke about clouds (turn 1)"
    assert first["agent"] == "Joker" and first["session"] == session and first["correlation_id"]
    assert first["usage"]["total_tokens"] > 0

    second = agents_cli("agents", "run", "Joker", "Another one", "--session", session, "--app", "agents_app:app")
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "Reply to: Another one (turn 2)"
    assert f"session {session}" in second.stderr
    # The model was sent the first turn along with the second.
    sent = fresh_model.control.requests()[-1]["body"]["messages"]
    assert [(m["role"], m["content"]) for m in sent[1:]] == [
        ("user", "Tell me a joke about clouds"),
        ("assistant", first["text"]),
        ("user", "Another one"),
    ]

    stored = ok_json(agents_cli("agents", "session", "Joker", session, "--json"))
    assert stored["turn_count"] == 2 and stored["message_count"] == 4
    assert [m["content"] for m in stored["messages"]] == [
        "Tell me a joke about clouds",
        first["text"],
        "Another one",
        "Reply to: Another one (turn 2)",
    ]
    shown = agents_cli("agents", "session", "Joker", session)
    assert "2 turns" in shown.stdout and "Tell me a joke about clouds" in shown.stdout
    listed = ok_json(agents_cli("agents", "sessions", "Joker", "--json"))
    assert session in {s["session"] for s in listed}
    # The instances behind a session and its turns stay out of `list` unless asked for.
    everything = {s["instance_id"] for s in ok_json(agents_cli("list", "--all", "--limit", "500", "--json"))}
    entity = session_entity("Joker", session).instance_id
    assert entity in everything
    assert f"@turn:{first['correlation_id']}" in everything
    visible = ok_json(agents_cli("list", "--limit", "500", "--json"))
    # (A tool orchestration a turn started is the user's own and stays visible, whatever its id.)
    assert not any(s["name"] in {SESSION_ORCHESTRATION, AGENT_TURN} for s in visible)
    assert not {entity, f"@turn:{first['correlation_id']}"} & {s["instance_id"] for s in visible}
    turn = cli_history_rows(agents_cli("history", f"@turn:{first['correlation_id']}").stdout)
    assert any("durable_agents.agent_model_call" in row and "Tell me a joke about clouds" in row for row in turn)

    assert ok_json(agents_cli("agents", "reset", "Joker", session, "--json")) == {
        "agent": "Joker",
        "session": session,
        "reset": True,
    }
    fresh = agents_cli("agents", "run", "Joker", "Hello again", "--session", session)
    assert fresh.stdout.strip() == "Reply to: Hello again (turn 1)"


def test_agents_run_streams_tokens(agents_cli: Any) -> None:
    streamed = agents_cli("agents", "run", "Joker", "Stream me a story", "--new-session", "--stream")
    assert streamed.returncode == 0, streamed.stderr
    assert streamed.stdout.strip() == "Reply to: Stream me a story (turn 1)"

    lines = agents_cli("agents", "run", "Joker", "Stream me as JSON", "--new-session", "--stream", "--json")
    assert lines.returncode == 0, lines.stderr
    chunks = [json.loads(line) for line in lines.stdout.splitlines()]
    assert len(chunks) > 2 and chunks[-1]["kind"] == "complete"
    assert all(c["kind"] == "chunk" and c["cursor"] for c in chunks[:-1])
    assert "".join(c["text"] for c in chunks) == "Reply to: Stream me as JSON (turn 1)"


def test_agents_errors_are_one_line(agents_cli: Any) -> None:
    checked = agents_cli("agents", "run", "Nobody", "hello", "--app", "agents_app:app")
    assert_one_line_error(checked, "no agent named 'Nobody' is registered", "Joker")
    # Without the app the worker finds out, and the failed turn is reported the same way.
    unchecked = agents_cli("agents", "run", "Nobody", "hello", "--new-session", "--timeout", "50")
    assert_one_line_error(unchecked, "agent 'Nobody' could not answer", "no agent named 'Nobody'")
    assert_one_line_error(agents_cli("agents", "session", "Joker", "no-such-session"), "no session 'no-such-session'")


# -- errors ---------------------------------------------------------------------------------------


def test_errors_are_one_clear_line_and_non_zero(services: Services, client: DurableClient) -> None:
    hub = client.taskhub
    bad_json = cli(services, hub, "start", "approval", "--input", "{not json")
    assert_one_line_error(bad_json, "--input is not valid JSON")
    bare_word = cli(services, hub, "start", "approval", "--input", "hello")
    assert_one_line_error(bare_word, "a text is JSON in double quotes", """--input '"hello"'""")
    assert_one_line_error(cli(services, hub, "worker", "post.py:app"), "names a file", "instead: post:app")
    assert_one_line_error(cli(services, hub, "raise-event", "x", "e", "--data", "[1,"), "--data is not valid JSON")

    for command in (["status", "ghost"], ["history", "ghost"], ["raise-event", "ghost", "approval_received"]):
        assert_one_line_error(cli(services, hub, *command), "no orchestration instance 'ghost'", repr(hub))

    unknown = cli(services, hub, "start", "no_such_orchestration", "--app", "workflows:app")
    assert_one_line_error(unknown, "no orchestration named 'no_such_orchestration' is registered", "sequence")
    assert_one_line_error(cli(services, hub, "status", "x", "--app", "no_such_module:app"), "cannot import")
    assert_one_line_error(cli(services, hub, "list", "--status", "sleeping"), "unknown status 'sleeping'")
    assert_one_line_error(cli(services, "not a hub!", "list"), "task hub name 'not a hub!' is invalid")
    not_a_url = cli(services, hub, "list", DATABASE_URL="notaurl")
    assert_one_line_error(not_a_url, "DATABASE_URL: 'notaurl' is not a database URL; use postgresql://USER:PASSWORD@")
    secret = cli(services, hub, "list", DATABASE_URL="postgresql://app:hunter2@db:port/app")
    assert_one_line_error(secret, "DATABASE_URL", "not shown")
    assert "hunter2" not in secret.stderr
    too_old = cli(services, hub, "purge", "--older-than", "99999999w")
    assert_one_line_error(too_old, "--older-than '99999999w' reaches back before year 1")


def test_unreachable_services_are_one_line(services: Services) -> None:
    hub = new_taskhub("nowhere")
    port = closed_port()
    dead_database = f"postgresql+psycopg://postgres@127.0.0.1:{port}/test_cli"
    for command in (["status", "x"], ["list"], ["start", "approval"], ["db", "upgrade"], ["agents", "run", "A", "m"]):
        result = cli(services, hub, *command, DATABASE_URL=dead_database)
        assert_one_line_error(result, str(port), "DATABASE_URL")

    dead_redis = f"redis://127.0.0.1:{port}/0"
    assert_one_line_error(cli(services, hub, "stream", "abc", REDIS_URL=dead_redis), "Redis", "REDIS_URL")


def test_with_redis_down_every_command_says_so_in_one_line_and_changes_nothing(services: Services) -> None:
    hub = new_taskhub("noredis")
    port = closed_port()
    dead_redis = f"redis://:s3cret-pass@127.0.0.1:{port}/0"
    for command in (
        ["start", "plain_function", "--input", '"x"'],
        ["raise-event", "x", "approval_received"],
        ["terminate", "x"],
        ["suspend", "x"],
        ["resume", "x"],
        ["agents", "run", "Joker", "Hi"],
    ):  # a worker waits for Redis instead (tests/test_fast_recovery.py)
        result = cli(services, hub, *command, REDIS_URL=dead_redis)
        assert_one_line_error(result, f"cannot reach Redis at redis://:***@127.0.0.1:{port}/0", "Check REDIS_URL")
        assert "s3cret-pass" not in result.stdout + result.stderr, command
    assert ok_json(cli(services, hub, "list", "--json", REDIS_URL=dead_redis)) == []  # reading needs no Redis


def test_wrapped_connection_errors_are_named_by_their_cause() -> None:
    import redis.exceptions

    from durable_agents.commands.failure import describe

    refused = redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")
    try:
        try:
            raise refused
        except redis.exceptions.ConnectionError as error:
            # What Celery raises when its Redis result backend cannot be reached.
            raise RuntimeError("Retry limit exceeded while trying to reconnect to the Celery result store") from error
    except RuntimeError as wrapped:
        message = describe(wrapped)
    assert message.startswith("cannot use Redis: Error 111 connecting to 127.0.0.1:1") and "REDIS_URL" in message
    assert describe(KeyError("x")).startswith("unexpected KeyError")


def test_usage_mistakes_exit_non_zero_without_a_traceback(services: Services) -> None:
    missing = cli(services, "default", "status")
    assert missing.returncode == 2
    assert "Missing argument" in missing.stderr and "Traceback" not in missing.stderr


def test_in_embedded_mode_the_cli_starts_and_the_worker_command_serves_the_folder(tmp_path: Any) -> None:
    import os
    import signal
    import sys

    from durable_agents import DurableClient

    from conftest import TESTS_DIR, unconfigured_environment

    env = {**unconfigured_environment(), "PYTHONPATH": python_path(str(TESTS_DIR)), "COLUMNS": "200"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "durable_agents", *args]
        return subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)

    instance_id = run("start", "plain_function", "--input", '"embedded"', "--app", "workflows:app").stdout.strip()
    why = ok_json(run("explain", instance_id, "--app", "workflows:app", "--json"))
    # The CLI ran no worker of its own, so none is counted; and the advice works in this folder.
    assert why["reason"] == "no_worker" and "no worker of this task hub is live" in why["message"], why
    assert "start `durable-agents worker MODULE:app`" in why["message"]

    log = tmp_path / "worker.log"
    with log.open("wb") as output:
        worker = subprocess.Popen(
            [sys.executable, "-m", "durable_agents", "worker", "workflows:app"],
            env=env, cwd=tmp_path, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_until(lambda: "Ctrl-C stops" in log.read_text() or worker.poll() is not None, message="the worker")
        assert "serving workflows:app in embedded mode" in log.read_text(), log.read_text()
        store = DurableClient(database_url=f"sqlite:///{tmp_path / 'durable_agents.db'}")
        assert store.wait_for_orchestration_completion(instance_id, timeout=30).output == {"echo": "embedded"}
        waiting = run("start", "approval", "--input", '{"timeout_seconds": 300}', "--app", "workflows:app")
        waiting_id = waiting.stdout.strip()
        store.wait_for_orchestration_start(waiting_id, timeout=30)
        assert ok_json(run("explain", waiting_id, "--app", "workflows:app", "--json"))["reason"] == "waiting_for_event"
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
    assert worker.returncode == 0, log.read_text()
