"""Durable agents on real workers, real Postgres and Redis, and the real openai SDK against the bundled model server."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from durable_agents import (
    AgentNotRegisteredError,
    AgentRunError,
    DurableAgentClient,
    DurableClient,
    OrchestrationStatus,
    SessionNotFoundError,
)
from durable_agents.agents.limits import ModelSlots
from durable_agents.agents.proxy import SESSION_ORCHESTRATION, turn_request
from durable_agents.ids import agent_session_instance_id
from durable_agents.models import Timer
from durable_agents.store.db import transaction
from durable_agents.testing import TestModelServer

from conftest import Services, client_for, new_taskhub, start_agents_worker, wait_until

pytestmark = pytest.mark.usefixtures("fresh_model")


def run(agents_client: DurableClient, name: str, input: Any = None, timeout: float = 60) -> Any:
    state = agents_client.wait_for_orchestration_completion(
        agents_client.schedule_new_orchestration(name, input=input), timeout=timeout
    )
    assert state.runtime_status == OrchestrationStatus.COMPLETED, state.failure_details
    return state.output


def chat_requests(model_server: TestModelServer) -> list[dict[str, Any]]:
    return [r["body"] for r in model_server.control.requests()]


# -- the reference samples ------------------------------------------------------------------------


def test_single_agent_multi_turn_survives_a_worker_restart(
    services: Services, effects_dir: Path, model_server: TestModelServer
) -> None:
    hub = new_taskhub("joker")
    first = start_agents_worker(services, effects_dir, model_server, hub).start()
    try:
        joker = DurableAgentClient(client_for(services, hub)).get_agent("Joker")
        response1 = asyncio.run(joker.run("Tell me a joke about clouds"))
        assert response1.text == "Reply to: Tell me a joke about clouds (turn 1)"
    finally:
        first.stop()
    second = start_agents_worker(services, effects_dir, model_server, hub).start()
    try:
        response2 = asyncio.run(joker.run("Tell me another one"))
    finally:
        second.stop()
    assert response2.text == "Reply to: Tell me another one (turn 2)"
    assert response2.session is not None and response2.session.key == "default"
    assert response2.correlation_id and response2.correlation_id != response1.correlation_id
    assert response2.usage.total_tokens > 0
    assert [m["role"] for m in chat_requests(model_server)[-1]["messages"]] == ["system", "user", "assistant", "user"]
    stored = DurableAgentClient(client_for(services, hub)).get_session("Joker")
    assert [(m["role"], m["content"]) for m in stored.messages] == [
        ("user", "Tell me a joke about clouds"),
        ("assistant", response1.text),
        ("user", "Tell me another one"),
        ("assistant", response2.text),
    ]
    assert stored.turn_count == 2 and stored.prompt_tokens > 0 and stored.completion_tokens > 0


def test_two_agents_on_one_worker(agents: DurableAgentClient, model_server: TestModelServer) -> None:
    control = model_server.control
    control.add_rule(match={"system_contains": "physicist"}, reply={"content": "Physicist: {last_user}"})
    control.add_rule(match={"system_contains": "chemistry"}, reply={"content": "Chemist: {last_user}"})

    async def ask() -> tuple[Any, Any]:
        physics = await agents.get_agent("Physicist").run("Explain quantum entanglement")
        chemistry = await agents.get_agent("Chemist").run("Explain chemical bonds")
        return physics, chemistry

    physics, chemistry = asyncio.run(ask())
    assert physics.text == "Physicist: Explain quantum entanglement"
    assert chemistry.text == "Chemist: Explain chemical bonds"


def test_sequential_chaining_shares_a_session(agents_client: DurableClient) -> None:
    output = run(agents_client, "writer_orchestration")
    assert output == "Reply to: Improve this: Reply to: Write a sentence about learning. (turn 1) (turn 2)"


def test_parallel_agents_run_concurrently(agents_client: DurableClient, model_server: TestModelServer) -> None:
    model_server.control.set_latency(500)
    output = run(agents_client, "parallel_orchestration", "entropy")
    assert output == "\n\n".join(
        [
            "Physics: Reply to: Explain entropy from a physics perspective (turn 1)",
            "Chemistry: Reply to: Explain entropy from a chemistry perspective (turn 1)",
            "Mathematics: Reply to: Explain entropy from a mathematics perspective (turn 1)",
        ]
    )
    received = [datetime.fromisoformat(r["received_at"]) for r in model_server.control.requests()]
    assert len(received) == 3
    assert (max(received) - min(received)).total_seconds() < 0.5  # all three in flight at once


def test_conditional_routing_on_structured_output(agents_client: DurableClient, model_server: TestModelServer) -> None:
    control = model_server.control
    control.add_rule(
        match={"last_user_contains": "WIN MONEY", "response_format": True},
        reply={"json": {"is_spam": True, "confidence": 0.97}},
    )
    control.add_rule(match={"response_format": True}, reply={"json": {"is_spam": False, "confidence": 0.1}})

    assert run(agents_client, "conditional_orchestration", "WIN MONEY NOW!!!") == {
        "action": "blocked",
        "reason": "spam detected",
    }
    assert run(agents_client, "conditional_orchestration", "Lunch tomorrow?") == {
        "action": "replied",
        "draft": "Reply to: Draft a reply to: Lunch tomorrow? (turn 1)",
    }
    schema_request = next(r for r in chat_requests(model_server) if r.get("response_format"))
    assert schema_request["response_format"]["json_schema"]["name"] == "Classification"


def start_hitl(agents_client: DurableClient) -> str:
    instance_id = agents_client.schedule_new_orchestration("hitl_orchestration")
    wait_until(
        lambda: sum(1 for e in agents_client.get_history(instance_id) if e["type"] == "TimerCreated") == 2,
        timeout=60,
        message="the approval wait and its timer",
    )
    return instance_id


def test_human_in_the_loop_approve(agents_client: DurableClient) -> None:
    instance_id = start_hitl(agents_client)
    agents_client.raise_event(instance_id, "approval_received", data={"approved": True})
    state = agents_client.wait_for_orchestration_completion(instance_id, timeout=60)
    assert state.output == {"status": "published", "content": "Reply to: Write a blog post about AI (turn 1)"}


def test_human_in_the_loop_revise_with_feedback(agents_client: DurableClient) -> None:
    instance_id = start_hitl(agents_client)
    agents_client.raise_event(instance_id, "approval_received", data={"approved": False, "feedback": "Add more detail"})
    state = agents_client.wait_for_orchestration_completion(instance_id, timeout=60)
    assert state.output == {
        "status": "revised",
        "content": "Reply to: Revise this based on feedback 'Add more detail': "
        "Reply to: Write a blog post about AI (turn 1) (turn 1)",
    }


def test_human_in_the_loop_timeout_escalates(agents_client: DurableClient, services: Services) -> None:
    instance_id = start_hitl(agents_client)
    with transaction(services.database_url) as session:  # 24 hours pass
        session.execute(update(Timer).where(Timer.instance_id == instance_id).values(fire_at=datetime.now(UTC)))
    state = agents_client.wait_for_orchestration_completion(instance_id, timeout=60)
    assert state.output == {"status": "escalated", "reason": "approval timeout"}


# -- tools ------------------------------------------------------------------------------------------


def test_plain_durable_and_orchestration_tools(
    agents_client: DurableClient, model_server: TestModelServer, effects_dir: Path
) -> None:
    control = model_server.control
    control.add_rule(
        match={"last_user_contains": "Plan a trip", "last_message_role": "user"},
        reply={
            "tool_calls": [
                {"name": "weather", "arguments": {"city": "Lisbon"}},
                {"name": "book_flight", "arguments": {"destination": "Lisbon", "passengers": 2}},
                {"name": "research", "arguments": {"topic": "Lisbon"}},
            ]
        },
    )
    control.add_rule(match={"last_message_role": "tool"}, reply={"content": "Your trip is planned."})
    output = run(agents_client, "tool_orchestration", "Plan a trip to Lisbon")
    assert output["text"] == "Your trip is planned."
    tool_results = [m["content"] for m in output["messages"] if m["role"] == "tool"]
    assert tool_results[:2] == ["It is 21 degrees celsius in Lisbon.", '{"confirmation":"FLIGHT-LISBON-2"}']
    assert json.loads(tool_results[2]) == {"topic": "Lisbon", "notes": "notes on Lisbon"}  # via JSONB
    follow_up = chat_requests(model_server)[-1]
    assert [m["role"] for m in follow_up["messages"]][-4:] == ["assistant", "tool", "tool", "tool"]
    offered = {t["function"]["name"]: t["function"] for t in follow_up["tools"]}
    assert offered["weather"]["description"] == "Look up the current weather in a city."
    assert offered["weather"]["parameters"]["required"] == ["city"]


def test_a_failing_tool_reports_to_the_model(agents_client: DurableClient, model_server: TestModelServer) -> None:
    control = model_server.control
    control.add_rule(
        match={"last_message_role": "user"},
        reply={"tool_calls": [{"name": "broken_tool", "arguments": {"reason": "no fuel"}}]},
    )
    control.add_rule(match={"last_message_role": "tool"}, reply={"content": "Sorry, that did not work."})
    output = run(agents_client, "tool_orchestration", "Use the broken tool")
    assert output["text"] == "Sorry, that did not work."
    assert [m["content"] for m in output["messages"] if m["role"] == "tool"] == [
        "error: RuntimeError: the tool broke: no fuel"
    ]


def test_runaway_tool_loops_are_stopped(agents: DurableAgentClient, model_server: TestModelServer) -> None:
    model_server.control.add_rule(reply={"tool_calls": [{"name": "weather", "arguments": {"city": "Loop"}}]})
    with pytest.raises(AgentRunError, match="asked for tools in more than 3 rounds") as caught:
        agents.get_agent("ToolUser").run_sync("Weather again and again", session="loop")
    assert caught.value.details.error_type == "ToolLoopError"


def test_sigkill_mid_turn_resumes_after_the_finished_tool_call(
    services: Services, effects_dir: Path, model_server: TestModelServer
) -> None:
    control = model_server.control
    control.add_rule(
        match={"last_user_contains": "weather in Oslo", "last_message_role": "user"},
        reply={"tool_calls": [{"name": "weather", "arguments": {"city": "Oslo"}}]},
    )
    control.add_rule(match={"last_message_role": "tool"}, reply={"content": "Oslo is mild.", "delay_ms": 5000}, times=1)
    control.add_rule(match={"last_message_role": "tool"}, reply={"content": "Oslo is mild."})
    hub = new_taskhub("agentcrash")
    doomed = start_agents_worker(services, effects_dir, model_server, hub).start()
    agent = DurableAgentClient(client_for(services, hub)).get_agent("ToolUser")
    correlation_id = agent.run_sync("What is the weather in Oslo?", wait_for_response=False)
    wait_until(
        lambda: any(r["messages"][-1]["role"] == "tool" for r in chat_requests(model_server)),
        timeout=60,
        message="the model call after the tool call",
    )
    doomed.kill()
    survivor = start_agents_worker(services, effects_dir, model_server, hub).start()
    try:
        response = agent.wait(correlation_id, timeout=60)
    finally:
        survivor.stop()
    assert response.text == "Oslo is mild."
    assert (effects_dir / "weather-Oslo").read_text().count("\n") == 1  # the tool ran once
    requests = chat_requests(model_server)
    assert sum(1 for r in requests if r["messages"][-1]["role"] == "user") == 1  # not asked again for step one
    assert sum(1 for r in requests if r["messages"][-1]["role"] == "tool") == 2  # the killed call, then its redo


# -- sessions --------------------------------------------------------------------------------------


def test_turns_on_one_session_are_serialized_and_sessions_run_in_parallel(
    agents: DurableAgentClient, model_server: TestModelServer
) -> None:
    model_server.control.set_latency(400)
    joker = agents.get_agent("Joker")
    session = joker.create_session()
    first = joker.run_sync("First question", session=session, wait_for_response=False)
    second = joker.run_sync("Second question", session=session, wait_for_response=False)
    answers = {joker.wait(first).text, joker.wait(second).text}
    # Whichever ran second saw the first turn's committed history.
    assert answers in (
        {"Reply to: First question (turn 1)", "Reply to: Second question (turn 2)"},
        {"Reply to: Second question (turn 1)", "Reply to: First question (turn 2)"},
    )
    serial = sorted(datetime.fromisoformat(r["received_at"]) for r in model_server.control.requests())
    assert (serial[1] - serial[0]).total_seconds() >= 0.4  # the second began after the first was answered

    model_server.control.reset()
    model_server.control.set_latency(400)
    one = joker.run_sync("Parallel one", session=joker.create_session(), wait_for_response=False)
    two = joker.run_sync("Parallel two", session=joker.create_session(), wait_for_response=False)
    assert joker.wait(one).text == "Reply to: Parallel one (turn 1)"
    assert joker.wait(two).text == "Reply to: Parallel two (turn 1)"
    parallel = sorted(datetime.fromisoformat(r["received_at"]) for r in model_server.control.requests())
    assert (parallel[1] - parallel[0]).total_seconds() < 0.4


def test_keep_last_sends_only_recent_history(agents: DurableAgentClient, model_server: TestModelServer) -> None:
    forgetful = agents.get_agent("Forgetful")
    session = forgetful.create_session()
    for question in ["one", "two", "three"]:
        reply = forgetful.run_sync(question, session=session)
    assert reply.text == "Reply to: three (turn 2)"
    last = chat_requests(model_server)[-1]["messages"]
    assert [(m["role"], m["content"]) for m in last[1:]] == [
        ("user", "two"),
        ("assistant", "Reply to: two (turn 2)"),
        ("user", "three"),
    ]
    assert agents.get_session("Forgetful", session).message_count == 6  # everything is still stored


def test_summarize_replaces_old_messages_with_the_agents_own_summary(
    agents: DurableAgentClient, model_server: TestModelServer
) -> None:
    model_server.control.add_rule(
        match={"system_contains": "Summarise the conversation"}, reply={"content": "They counted to two."}
    )
    summarizer = agents.get_agent("Summarizer")
    session = summarizer.create_session()
    for number in ["one", "two", "three", "four"]:
        reply = summarizer.run_sync(number, session=session)
    requests = chat_requests(model_server)
    summarising = [r for r in requests if "Summarise the conversation" in r["messages"][0]["content"]]
    assert len(summarising) == 1  # only once the unsummarised tail outgrew max_messages
    transcript = summarising[0]["messages"][1]["content"]
    assert "user: one" in transcript and "assistant: Reply to: two (turn 2)" in transcript
    assert "three" not in transcript
    assert [(m["role"], m["content"]) for m in requests[-1]["messages"][1:]] == [
        ("system", "Summary of the earlier conversation: They counted to two."),
        ("user", "three"),
        ("assistant", "Reply to: three (turn 3)"),
        ("user", "four"),
    ]
    assert reply.text == "Reply to: four (turn 2)"
    assert agents.get_session("Summarizer", session).message_count == 8  # the whole conversation is kept


def test_sessions_read_list_reset_delete_and_expire(agents: DurableAgentClient) -> None:
    joker = agents.get_agent("Joker")
    session = joker.create_session()
    joker.run_sync("Remember this", session=session)
    assert session.key in {s.session_key for s in agents.list_sessions("Joker")}
    agents.reset_session("Joker", session)
    assert agents.get_session("Joker", session).messages == []
    assert joker.run_sync("Fresh start", session=session).text == "Reply to: Fresh start (turn 1)"
    agents.delete_session("Joker", session)
    with pytest.raises(SessionNotFoundError, match=f"no session '{session.key}' of agent 'Joker'"):
        agents.get_session("Joker", session)

    ephemeral = agents.get_agent("Ephemeral")
    short_lived = ephemeral.create_session()
    ephemeral.run_sync("Forget me", session=short_lived)
    wait_until(
        lambda: short_lived.key not in {s.session_key for s in agents.list_sessions("Ephemeral")},
        message="the idle session to expire",
    )


def test_a_session_started_before_turns_were_instances_runs_the_turns_it_holds(
    agents: DurableAgentClient, agents_client: DurableClient
) -> None:
    joker = agents.get_agent("Joker")
    session = joker.create_session()
    assert joker.run_sync("One", session=session).text == "Reply to: One (turn 1)"
    # A session as the former client made it: its orchestration, holding a turn request in its inbox.
    legacy = agent_session_instance_id("Joker", session.key)
    agents_client.schedule_new_orchestration(
        SESSION_ORCHESTRATION, input={"agent": "Joker", "session": session.key}, instance_id=legacy
    )
    request = turn_request(
        agent="Joker", session_key=session.key, messages="Two", correlation_id="legacy-two", response_format=None,
        reply_to=None,
    )  # fmt: skip
    agents_client.raise_orchestration_event(legacy, "turn", data=request)

    assert joker.wait("legacy-two", timeout=60).text == "Reply to: Two (turn 2)"
    assert joker.run_sync("Three", session=session).text == "Reply to: Three (turn 3)"
    assert [m["content"] for m in agents.get_session("Joker", session).messages] == [
        "One", "Reply to: One (turn 1)", "Two", "Reply to: Two (turn 2)", "Three", "Reply to: Three (turn 3)",
    ]  # fmt: skip


def test_usage_is_summed_per_session_and_per_instance(
    agents_client: DurableClient, agents: DurableAgentClient, model_server: TestModelServer
) -> None:
    instance_id = agents_client.schedule_new_orchestration("writer_orchestration")
    agents_client.wait_for_orchestration_completion(instance_id, timeout=60)
    assert len(model_server.control.requests()) == 2
    total = agents.usage_of_instance(instance_id)
    assert total["total_tokens"] == total["prompt_tokens"] + total["completion_tokens"] > 0


# -- reliability -----------------------------------------------------------------------------------


def test_rate_limits_and_dropped_connections_are_retried(
    agents: DurableAgentClient, model_server: TestModelServer
) -> None:
    model_server.control.inject({"kind": "rate_limit", "retry_after": 0.2}, {"kind": "disconnect"})
    started = time.monotonic()
    reply = agents.get_agent("Joker").run_sync("Still there?", session="retries")
    assert reply.text == "Reply to: Still there? (turn 1)"
    assert time.monotonic() - started >= 0.2  # Retry-After was honoured
    faults = [r["fault"] for r in model_server.control.requests()]
    assert [f and f["kind"] for f in faults] == ["rate_limit", "disconnect", None]


def test_a_permanent_model_error_names_the_endpoint_and_status(
    agents: DurableAgentClient, model_server: TestModelServer
) -> None:
    model_server.control.inject({"kind": "server_error", "status": 400, "repeat": True, "message": "bad model"})
    with pytest.raises(AgentRunError) as caught:
        agents.get_agent("Joker").run_sync("Hello?", session="doomed")
    assert caught.value.details.error_type == "ModelCallError"
    assert model_server.url in str(caught.value) and "HTTP 400" in str(caught.value)


def test_model_concurrency_limit_is_shared_through_redis(services: Services) -> None:
    slots = ModelSlots(services.redis_url)
    key = f"test-slots-{new_taskhub('')}"
    inside: list[int] = []
    overlap: list[int] = []
    lock = threading.Lock()

    def call() -> None:
        with slots.hold(key, limit=2):
            with lock:
                inside.append(1)
                overlap.append(len(inside))
            time.sleep(0.1)  # the "model call" being limited, not synchronisation
            with lock:
                inside.pop()

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(overlap) == 6 and max(overlap) == 2


# -- structured output and bad input -------------------------------------------------------------


def test_invalid_structured_output_gets_one_corrective_retry(
    agents_client: DurableClient, model_server: TestModelServer
) -> None:
    model_server.control.add_rule(match={"response_format": True}, reply={"content": "I think it is spam"}, times=1)
    model_server.control.add_rule(match={"response_format": True}, reply={"json": {"is_spam": True, "confidence": 0.9}})
    assert run(agents_client, "structured_only", "Cheap pills") == {
        "is_spam": True,
        "value": {"is_spam": True, "confidence": 0.9},
    }
    second = chat_requests(model_server)[-1]["messages"]
    assert second[-2] == {"role": "assistant", "content": "I think it is spam"}
    assert second[-1]["content"].startswith("Your reply is not a valid Classification")


def test_output_that_never_validates_fails_clearly(agents_client: DurableClient, model_server: TestModelServer) -> None:
    model_server.control.add_rule(match={"response_format": True}, reply={"content": "not json, ever"})
    state = agents_client.wait_for_orchestration_completion(
        agents_client.schedule_new_orchestration("structured_only", input="x")
    )
    assert state.runtime_status == OrchestrationStatus.FAILED
    assert "twice replied with output that is not a valid Classification" in state.failure_details.message


def test_bad_agent_input(services: Services, agents: DurableAgentClient, agents_client: DurableClient) -> None:
    with pytest.raises(AgentNotRegisteredError, match="no agent named 'Jokr'.*Joker"):
        agents.get_agent("Jokr")
    with pytest.raises(ValueError, match="non-empty message"):
        agents.get_agent("Joker").run_sync("   ")
    other_hub = DurableAgentClient(client_for(services, new_taskhub("other")))
    agents.get_agent("Joker").run_sync("Mine", session="private")
    with pytest.raises(SessionNotFoundError, match="task hub"):
        other_hub.get_session("Joker", "private")


def test_a_worker_that_ran_turns_shuts_down_promptly(
    services: Services, effects_dir: Path, fresh_model: TestModelServer
) -> None:
    """Response callbacks leave no thread behind: SIGTERM ends a worker that has answered turns
    without waiting for the kill that follows a 15 s grace period."""
    import os
    import signal
    import subprocess

    from durable_agents import DurableAgentClient

    hub = new_taskhub("shutdown")
    worker = start_agents_worker(services, effects_dir, fresh_model, hub).start()
    joker = DurableAgentClient(client_for(services, hub)).get_agent("Joker")
    for message in ("one", "two"):
        assert joker.run_sync(message, timeout=60).text.startswith(f"Reply to: {message}")

    assert worker.process is not None
    os.killpg(worker.process.pid, signal.SIGTERM)
    try:
        worker.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        worker.kill()
        raise AssertionError("the worker was still running 10 s after SIGTERM") from None
    assert worker.process.returncode == 0
