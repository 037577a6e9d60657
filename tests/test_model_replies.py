"""Model replies on any server: structured output falls back to json_object where json_schema is refused,
and replies that end incomplete (no finish_reason, cut at the length limit, empty) are asked for again."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from pydantic import BaseModel

from durable_agents import (
    AgentRunError,
    DurableAgentClient,
    DurableClient,
    IncompleteReplyError,
    ModelCallError,
    OpenAIChatClient,
    OrchestrationStatus,
)
from durable_agents.agents.response import format_spec
from durable_agents.streaming import StreamChunk
from durable_agents.testing import TestModelServer

pytestmark = pytest.mark.usefixtures("fresh_model")


class Verdict(BaseModel):
    is_spam: bool
    confidence: float


def streamed(agents: DurableAgentClient, correlation_id: str) -> list[StreamChunk]:
    async def read() -> list[StreamChunk]:
        return [chunk async for chunk in agents.stream(correlation_id)]

    return asyncio.run(read())


def bodies(model_server: TestModelServer) -> list[dict[str, Any]]:
    return [r["body"] for r in model_server.control.requests()]


def formats(model_server: TestModelServer) -> list[str]:
    return [b["response_format"]["type"] for b in bodies(model_server) if b.get("response_format")]


def chat(model_server: TestModelServer, model: str, **options: Any) -> OpenAIChatClient:
    # max_retries as in production (6): a refusal must not wait out the SDK's backoff.
    return OpenAIChatClient(model=model, api_key="test", base_url=model_server.url, **options)


def ask(client: OpenAIChatClient) -> dict[str, Any]:
    prompt = [{"role": "system", "content": "You classify."}, {"role": "user", "content": "Cheap pills"}]
    reply = client.complete(prompt, response_format=format_spec(Verdict))
    return Verdict.model_validate_json(reply.message["content"]).model_dump()


# -- structured output -----------------------------------------------------------------------------


def test_a_server_taking_json_schema_gets_json_schema(model_server: TestModelServer) -> None:
    assert ask(chat(model_server, "schema-model")) == {"is_spam": True, "confidence": 0.5}
    assert formats(model_server) == ["json_schema"]


def test_a_server_refusing_json_schema_gets_json_object_with_the_schema_in_the_instructions(
    model_server: TestModelServer,
) -> None:
    model_server.control.set_options(json_schema=False)
    client = chat(model_server, "refusing-model")
    assert ask(client) == {"is_spam": True, "confidence": 0.5}
    # One refused request (no SDK retries of the 500), then json_object; the next call asks no more.
    assert ask(client) == {"is_spam": True, "confidence": 0.5}
    assert formats(model_server) == ["json_schema", "json_object", "json_object"]
    instructions = bodies(model_server)[-1]["messages"][0]
    assert instructions["role"] == "system" and instructions["content"].startswith("You classify.")
    assert json.dumps(Verdict.model_json_schema()) in instructions["content"]


def test_the_mode_option_forces_one_format(model_server: TestModelServer) -> None:
    model_server.control.set_options(json_schema=False)
    with pytest.raises(ModelCallError, match="HTTP 500.*structured_output='auto' or 'json_object'"):
        ask(chat(model_server, "forced-schema", structured_output="json_schema", max_retries=0))
    model_server.control.reset()
    assert ask(chat(model_server, "forced-object", structured_output="json_object")) == {
        "is_spam": True,
        "confidence": 0.5,
    }
    assert formats(model_server) == ["json_object"]
    with pytest.raises(ValueError, match="structured_output='xml' is not one of auto, json_schema, json_object"):
        chat(model_server, "m", structured_output="xml")  # type: ignore[arg-type]


def test_a_durable_turn_succeeds_through_the_fallback(
    agents_client: DurableClient, model_server: TestModelServer
) -> None:
    model_server.control.set_options(json_schema=False)
    model_server.control.add_rule(
        match={"model": "local-model", "last_user_contains": "WIN"},
        reply={"json": {"is_spam": True, "confidence": 0.9}},
    )
    state = agents_client.wait_for_orchestration_completion(
        agents_client.schedule_new_orchestration("structured_local", input="WIN MONEY NOW"), timeout=60
    )
    assert state.runtime_status == OrchestrationStatus.COMPLETED, state.failure_details
    assert state.output == {"is_spam": True, "confidence": 0.9}
    assert formats(model_server) == ["json_schema", "json_object"]


# -- incomplete replies ----------------------------------------------------------------------------


def test_cut_off_and_empty_replies_are_asked_for_again(model_server: TestModelServer) -> None:
    model_server.control.inject({"kind": "no_finish"}, {"kind": "length"}, {"kind": "empty"})
    heard: list[str] = []
    reply = chat(model_server, "m").complete(
        [{"role": "user", "content": "Whole answers only"}], on_text=heard.append, on_restart=lambda: heard.append("|")
    )
    assert reply.message["content"] == "Reply to: Whole answers only (turn 1)"
    assert "".join(heard).split("|")[-1] == reply.message["content"]
    assert "".join(heard).count("|") == 3
    model_server.control.inject({"kind": "length"})
    assert chat(model_server, "m").complete([{"role": "user", "content": "Not streamed"}]).message["content"] == (
        "Reply to: Not streamed (turn 1)"
    )


def test_a_durable_turn_retries_behind_restart_markers_then_fails_clearly(
    agents: DurableAgentClient, model_server: TestModelServer
) -> None:
    model_server.control.inject({"kind": "no_finish"}, {"kind": "length"})
    joker = agents.get_agent("Joker")
    correlation_id = joker.run_sync("Finish this", session=joker.create_session(), wait_for_response=False)
    chunks = streamed(agents, correlation_id)
    kinds = [c.kind for c in chunks]
    assert kinds.count("restart") == 2 and kinds[-1] == "complete"
    after_restart = chunks[max(i for i, kind in enumerate(kinds) if kind == "restart") + 1 :]
    assert "".join(c.text for c in after_restart) == "Reply to: Finish this (turn 1)" == joker.wait(correlation_id).text

    model_server.control.reset()
    model_server.control.inject({"kind": "empty", "repeat": True})
    with pytest.raises(AgentRunError, match="gave an incomplete reply 4 times in a row \\(the last was empty\\)"):
        asyncio.run(joker.run("Say nothing", session=joker.create_session()))
    assert len(model_server.control.requests()) == 4
    assert issubclass(IncompleteReplyError, ModelCallError)
