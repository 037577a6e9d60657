"""Tool approvals end to end: a turn waits (durably, across a worker restart) for a person's decisions."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from durable_agents import (
    ApprovalDecidedError,
    ApprovalNotFoundError,
    AsyncDurableClient,
    DurableAgentClient,
    DurableClient,
    Settings,
)
from durable_agents.agents.proxy import session_entity
from durable_agents.api import create_app
from durable_agents.ids import agent_turn_instance_id, tool_approval_id
from durable_agents.testing import TestModelServer

from conftest import Services, WorkerProcess, client_for, new_taskhub, run_cli, start_agents_worker, wait_until

pytestmark = pytest.mark.usefixtures("fresh_model")


def tool_results(messages: list[dict[str, Any]]) -> dict[str, str]:
    calls = {c["id"]: c for m in messages if m["role"] == "assistant" for c in m.get("tool_calls") or []}
    return {calls[m["tool_call_id"]]["function"]["arguments"]: m["content"] for m in messages if m["role"] == "tool"}


def test_approve_edit_and_reject_while_the_worker_restarts(
    services: Services, effects_dir: Path, model_server: TestModelServer
) -> None:
    control = model_server.control
    control.add_rule(
        match={"last_user_contains": "Tidy up", "last_message_role": "user"},
        reply={
            "tool_calls": [
                {"name": "delete_file", "arguments": {"path": "old.log"}},
                {"name": "delete_file", "arguments": {"path": "all-of-home"}},
                {"name": "delete_file", "arguments": {"path": "notes.txt"}},
                {"name": "weather", "arguments": {"city": "Bergen"}},
                {"name": "delete_file", "arguments": {"file": "x"}},  # not asked about: it does not fit
            ]
        },
    )
    control.add_rule(match={"last_message_role": "tool"}, reply={"content": "Tidied up."})
    hub = new_taskhub("approve")
    first = start_agents_worker(services, effects_dir, model_server, hub).start()
    client = client_for(services, hub)
    janitor = DurableAgentClient(client).get_agent("Janitor")
    correlation_id = janitor.run_sync("Tidy up my files", session="desk", wait_for_response=False)
    pending = wait_until(lambda: len(client.list_pending_approvals()) == 3 and client.list_pending_approvals())
    first.stop()  # the turn waits as rows in PostgreSQL: no worker holds it

    by_path = {p.arguments["path"]: p for p in pending}
    assert set(by_path) == {"old.log", "all-of-home", "notes.txt"}  # weather needs no approval
    request = by_path["old.log"]
    assert (request.agent, request.session, request.correlation_id, request.tool, request.status) == (
        "Janitor",
        "desk",
        correlation_id,
        "delete_file",
        "pending",
    )
    assert request.requested_at is not None and request.expires_at is None
    assert client.list_pending_approvals(agent="Joker") == []

    client.approve_tool_call(by_path["old.log"].approval_id)
    with pytest.raises(ValueError, match="invalid arguments for tool 'delete_file'"):
        client.approve_tool_call(by_path["all-of-home"].approval_id, arguments={"paths": 3})
    client.approve_tool_call(by_path["all-of-home"].approval_id, arguments={"path": "tmp-cache"})
    # The async client decides as well, and refuses a decision twice.
    async_client = AsyncDurableClient(taskhub=hub, database_url=services.database_url, redis_url=services.redis_url)
    asyncio.run(async_client.reject_tool_call(by_path["notes.txt"].approval_id, reason="keep my notes"))
    with pytest.raises(ApprovalDecidedError, match="was rejected already"):
        client.approve_tool_call(by_path["notes.txt"].approval_id)
    with pytest.raises(ApprovalNotFoundError, match="no tool approval request 'nope'"):
        client.reject_tool_call("nope")

    second = start_agents_worker(services, effects_dir, model_server, hub).start()
    try:
        response = janitor.wait(correlation_id, timeout=60)
    finally:
        second.stop()
    assert response.text == "Tidied up."
    results = tool_results(response.messages)
    assert results['{"path": "old.log"}'] == "deleted old.log"
    assert results['{"path": "all-of-home"}'] == "deleted tmp-cache"  # ran with the edited arguments
    assert results['{"path": "notes.txt"}'] == (
        "The call to 'delete_file' was not run: a person rejected it. Reason: keep my notes"
    )
    assert results['{"city": "Bergen"}'] == "It is 21 degrees celsius in Bergen."
    assert results['{"file": "x"}'].startswith("error: invalid arguments for tool 'delete_file'")
    assert (effects_dir / "deleted-old.log").exists() and (effects_dir / "deleted-tmp-cache").exists()
    assert not (effects_dir / "deleted-notes.txt").exists() and not (effects_dir / "deleted-all-of-home").exists()
    follow_up = [r["body"] for r in control.requests()][-1]
    assert any("keep my notes" in (m.get("content") or "") for m in follow_up["messages"] if m["role"] == "tool")
    assert client.list_pending_approvals() == []
    decided = client.get_approval(by_path["all-of-home"].approval_id)
    assert (decided.status, decided.approved_arguments) == ("approved", {"path": "tmp-cache"})


def test_an_unanswered_request_times_out_as_configured(
    agents_client: DurableClient, model_server: TestModelServer
) -> None:
    control = model_server.control
    control.add_rule(
        match={"last_message_role": "user"},
        reply={
            "tool_calls": [
                {"name": "weather", "arguments": {"city": "Tromso"}},
                {"name": "ping_host", "arguments": {"host": "tromso.example"}},
            ]
        },
    )
    control.add_rule(match={"last_message_role": "tool"}, reply={"content": "No weather for you."})
    hasty = DurableAgentClient(agents_client).get_agent("Hasty")
    response = hasty.run_sync("Weather in Tromso?", session="timeout", timeout=60)
    assert response.text == "No weather for you."
    assert tool_results(response.messages) == {
        # The agent's policy rejects when its time is up; the tool's own approves.
        '{"city": "Tromso"}': "The call to 'weather' was not run: its approval timed out. "
        "Reason: nobody answered within a second",
        '{"host": "tromso.example"}': "tromso.example answered",
    }
    assert agents_client.list_pending_approvals(agent="Hasty") == []
    call_id = next(m["tool_call_id"] for m in response.messages if m["role"] == "tool")
    decided = agents_client.get_approval(tool_approval_id(response.correlation_id, call_id))
    assert (decided.status, decided.timed_out, decided.decided_at is not None) == ("rejected", True, True)


def test_the_api_the_cli_and_the_dashboard_list_and_decide(
    services: Services, agents_worker: WorkerProcess, agents_client: DurableClient, model_server: TestModelServer
) -> None:
    import agents_app
    from test_api import ApiServer

    control = model_server.control
    paths = ["by-api", "by-dashboard", "by-cli"]
    control.add_rule(
        match={"last_message_role": "user"},
        reply={"tool_calls": [{"name": "delete_file", "arguments": {"path": p}} for p in paths]},
    )
    control.add_rule(match={"last_message_role": "tool"}, reply={"content": "Done."})
    janitor = DurableAgentClient(agents_client).get_agent("Janitor")
    session = f"surfaces-{new_taskhub('')}"
    correlation_id = janitor.run_sync("Tidy up everything", session=session, wait_for_response=False)
    pending = wait_until(lambda: len(found := agents_client.list_pending_approvals(session=session)) == 3 and found)
    ids_by_path = {p.arguments["path"]: p.approval_id for p in pending}
    settings = Settings(
        database_url=services.database_url,
        redis_url=services.redis_url,
        taskhub=agents_worker.taskhub,
        api_auth="disabled",
    )
    with ApiServer(create_app(agents_app.app, settings)) as server, server.client(key=None) as http:
        listed = http.get("/api/approvals", params={"session": session}).json()["items"]
        assert sorted(item["arguments"]["path"] for item in listed) == sorted(paths)
        assert {item["agent"] for item in listed} == {"Janitor"} and listed[0]["correlation_id"] == correlation_id
        by_api = ids_by_path["by-api"]
        bad = http.post(f"/api/approvals/{by_api}/approve", json={"arguments": {"path": 7, "extra": 1}})
        assert bad.status_code == 422 and "invalid arguments for tool 'delete_file'" in bad.json()["error"]["message"]
        assert http.post("/api/approvals/unknown-id/reject", json={}).status_code == 404
        approved = http.post(f"/api/approvals/{by_api}/approve", json={"arguments": {"path": "by-api-edited"}})
        assert approved.status_code == 200 and approved.json()["status"] == "approved"
        again = http.post(f"/api/approvals/{by_api}/reject", json={"reason": "changed my mind"})
        assert again.status_code == 409 and again.json()["error"]["code"] == "approval_decided"

        page = http.get("/approvals")
        assert page.status_code == 200 and ids_by_path["by-dashboard"] in page.text and by_api not in page.text
        form = http.post(
            f"/approvals/{ids_by_path['by-dashboard']}/reject",
            data={"reason": "not from the dashboard"},
            headers={"Origin": server.url},
        )
        assert form.status_code == 303

    cli = run_cli(
        "approvals", "reject", ids_by_path["by-cli"], "--reason", "the CLI says no", "--json",
        env={"DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url, "TASKHUB": agents_worker.taskhub},
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["status"] == "rejected"

    response = janitor.wait(correlation_id, timeout=60)
    results = tool_results(response.messages)
    assert results['{"path": "by-api"}'] == "deleted by-api-edited"
    assert results['{"path": "by-dashboard"}'].endswith("Reason: not from the dashboard")
    assert results['{"path": "by-cli"}'].endswith("Reason: the CLI says no")


def test_a_sessions_turns_take_turns_and_a_terminated_turn_lets_the_next_one_run(
    services: Services, effects_dir: Path, model_server: TestModelServer
) -> None:
    control = model_server.control
    control.add_rule(
        match={"last_user_contains": "Tidy up", "last_message_role": "user"},
        reply={"tool_calls": [{"name": "delete_file", "arguments": {"path": "old.log"}}]},
    )
    hub = new_taskhub("taketurns")
    worker = start_agents_worker(services, effects_dir, model_server, hub).start()
    try:
        client = client_for(services, hub)
        janitor = DurableAgentClient(client).get_agent("Janitor")
        holding = janitor.run_sync("Tidy up my files", session="desk", wait_for_response=False)
        wait_until(lambda: client.list_pending_approvals())  # the turn holds the session while it waits
        later = janitor.run_sync("What is left?", session="desk", wait_for_response=False)

        # The later turn asked for the session, and the session's entity holds its request back.
        session = session_entity("Janitor", "desk")
        wait_until(lambda: client.get_entity(session).waiting == 1)
        assert client.get_entity(session).locked_by == agent_turn_instance_id(holding)
        assert [e["type"] for e in client.get_history(agent_turn_instance_id(later))][-1] == "EntityLockRequested"
        assert not any("What is left?" in json.dumps(r) for r in control.requests())

        client.terminate_orchestration(agent_turn_instance_id(holding))
        assert "What is left?" in janitor.wait(later, timeout=60).text
        assert client.get_entity(session).locked_by is None
    finally:
        worker.stop()
