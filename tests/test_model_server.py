"""The test model server: the real openai SDK against it over HTTP; rules, defaults, faults, latency, control API."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

import httpx
import openai
import pytest
from openai import AsyncOpenAI, OpenAI
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionUserMessageParam
from pydantic import BaseModel, Field

from durable_agents.testing import (
    Fault,
    Match,
    ModelServerControl,
    ModelServerControlError,
    Reply,
    Rule,
    TestModelServer,
)
from durable_agents.testing.responses import example_from_schema

MODEL = "test-model"
WEATHER_TOOL: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture(scope="module")
def server() -> Iterator[TestModelServer]:
    with TestModelServer() as running:
        yield running


@pytest.fixture(autouse=True)
def _clean(server: TestModelServer) -> None:
    server.control.reset()


@pytest.fixture
def client(server: TestModelServer) -> Iterator[OpenAI]:
    with OpenAI(base_url=server.url, api_key="test", max_retries=0) as sdk:
        yield sdk


def user(text: str) -> ChatCompletionUserMessageParam:
    return {"role": "user", "content": text}


class Sentiment(StrEnum):
    POSITIVE = "positive"
    NEGATIVE = "negative"


class Evidence(BaseModel):
    quote: str
    weight: float = Field(gt=0, le=1)


class Classification(BaseModel):
    label: Sentiment
    confidence: float = Field(ge=0, le=1)
    primary: Evidence
    evidence: list[Evidence]
    tags: list[Literal["billing", "shipping"]]
    urgent: bool
    priority: int = Field(ge=1, le=5)
    note: str | None = None


def test_default_reply_echoes_the_last_user_message_with_usage(client: OpenAI, server: TestModelServer) -> None:
    completion = client.chat.completions.create(
        model=MODEL, messages=[{"role": "system", "content": "Be brief."}, user("What is the capital of France?")]
    )

    assert server.url == f"http://127.0.0.1:{server.port}/v1"
    assert completion.object == "chat.completion"
    assert completion.model == MODEL
    assert completion.id == "chatcmpl-test-1"
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "Reply to: What is the capital of France? (turn 1)"
    assert choice.message.tool_calls is None
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (8, 10)
    assert completion.usage.total_tokens == 18


def test_turn_counts_the_user_messages_of_the_whole_history(client: OpenAI) -> None:
    messages: list[Any] = [
        {"role": "system", "content": "You are helpful."},
        user("first"),
        {"role": "assistant", "content": "Reply to: first (turn 1)"},
        user("second"),
        {"role": "assistant", "content": "Reply to: second (turn 2)"},
        {"role": "user", "content": [{"type": "text", "text": "third"}, {"type": "text", "text": "question"}]},
    ]

    completion = client.chat.completions.create(model=MODEL, messages=messages)

    assert completion.choices[0].message.content == "Reply to: third question (turn 3)"


def test_streaming_sends_one_chunk_per_word_and_the_same_text(client: OpenAI) -> None:
    messages: list[Any] = [user("Tell me a short story please")]
    text = client.chat.completions.create(model=MODEL, messages=messages).choices[0].message.content
    assert text is not None

    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=messages, stream=True, stream_options={"include_usage": True}
        )
    )

    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(pieces) == text
    assert len(pieces) == len(text.split()) == 10
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == []
    assert usage_chunk.usage is not None
    assert (usage_chunk.usage.prompt_tokens, usage_chunk.usage.completion_tokens) == (6, 10)
    assert all(c.usage is None for c in chunks[:-1])

    without_usage = list(client.chat.completions.create(model=MODEL, messages=messages, stream=True))
    assert all(c.choices for c in without_usage)
    assert all(c.usage is None for c in without_usage)


def test_async_client_streams_and_answers_concurrent_requests(server: TestModelServer) -> None:
    async def run() -> tuple[str | None, str, list[str | None]]:
        async with AsyncOpenAI(base_url=server.url, api_key="test", max_retries=0) as sdk:
            completion = await sdk.chat.completions.create(model=MODEL, messages=[user("hello async")])
            stream = await sdk.chat.completions.create(model=MODEL, messages=[user("hello async")], stream=True)
            pieces = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
            many = await asyncio.gather(
                *(sdk.chat.completions.create(model=MODEL, messages=[user(f"question {n}")]) for n in range(5))
            )
            return completion.choices[0].message.content, "".join(pieces), [c.choices[0].message.content for c in many]

    text, streamed, many = asyncio.run(run())

    assert text == streamed == "Reply to: hello async (turn 1)"
    assert many == [f"Reply to: question {n} (turn 1)" for n in range(5)]


def test_tool_call_rule_then_a_rule_for_the_tool_result(client: OpenAI, server: TestModelServer) -> None:
    server.control.set_rules(
        [
            {
                "match": {"tool_offered": "get_weather", "last_message_role": "user"},
                "reply": {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
            },
            {"match": {"last_message_role": "tool"}, "reply": {"content": "Sunny in Paris (turn {turn})."}},
        ]
    )
    messages: list[Any] = [user("What is the weather in Paris?")]

    first = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])

    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.id == "call_1_0"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}

    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": '{"sky": "clear"}'})
    second = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])

    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "Sunny in Paris (turn 1)."
    assert [entry["rule"] for entry in server.control.requests()] == [0, 1]


def test_streamed_tool_calls_assemble_from_deltas(client: OpenAI, server: TestModelServer) -> None:
    server.control.add_rule(
        match={"has_tools": True},
        reply={
            "tool_calls": [
                {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}},
                {"name": "get_weather", "arguments": {"city": "Oslo"}},
            ]
        },
    )

    calls: dict[int, dict[str, str]] = {}
    finish_reasons = []
    for chunk in client.chat.completions.create(
        model=MODEL, messages=[user("Weather in Paris and Oslo?")], tools=[WEATHER_TOOL], stream=True
    ):
        choice = chunk.choices[0]
        finish_reasons.append(choice.finish_reason)
        for delta in choice.delta.tool_calls or []:
            call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            call["id"] += delta.id or ""
            assert delta.function is not None
            call["name"] += delta.function.name or ""
            call["arguments"] += delta.function.arguments or ""

    assert finish_reasons[-1] == "tool_calls"
    assert [(c["id"], c["name"]) for c in calls.values()] == [("call_1_0", "get_weather"), ("call_1_1", "get_weather")]
    assert [json.loads(c["arguments"]) for c in calls.values()] == [
        {"city": "Paris", "unit": "celsius"},
        {"city": "Oslo"},
    ]

    # The SDK's own accumulating stream helper assembles the same message.
    with client.chat.completions.stream(
        model=MODEL, messages=[user("Weather in Paris and Oslo?")], tools=[WEATHER_TOOL]
    ) as stream:
        final = stream.get_final_completion()
    tool_calls = final.choices[0].message.tool_calls or []
    assert [json.loads(c.function.arguments)["city"] for c in tool_calls] == ["Paris", "Oslo"]
    assert final.choices[0].finish_reason == "tool_calls"


def test_json_schema_response_format_gets_valid_json_by_default(client: OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[user("Classify: my parcel is late")],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "Classification", "schema": Classification.model_json_schema()},
        },
    )

    content = completion.choices[0].message.content
    assert content is not None
    result = Classification.model_validate_json(content)
    assert result.label is Sentiment.POSITIVE
    assert result.primary == Evidence(quote="text", weight=0.5)
    assert len(result.evidence) == 1
    assert result.tags == ["billing"]
    assert (result.confidence, result.priority, result.urgent) == (0.0, 1, True)

    # The SDK's parse() sends its strict variant of the schema and validates the reply itself.
    parsed = client.chat.completions.parse(
        model=MODEL, messages=[user("Classify again")], response_format=Classification
    )
    assert isinstance(parsed.choices[0].message.parsed, Classification)

    json_object = client.chat.completions.create(
        model=MODEL, messages=[user("Any JSON")], response_format={"type": "json_object"}
    )
    assert json_object.choices[0].message.content == "{}"


def test_schema_examples_cover_constraints_formats_and_recursion() -> None:
    class Node(BaseModel):
        name: str = Field(min_length=8)
        children: list[Node]
        parent: Node | None = None

    class Everything(BaseModel):
        at: datetime
        id: uuid.UUID
        ratio: float = Field(gt=0, lt=1)
        level: int = Field(ge=5, le=9)
        odd_even: int = Field(gt=2, multiple_of=4)
        pair: tuple[int, str]
        extra: dict[str, int]
        tree: Node
        kind: Literal["a", "b"] = "a"

    example = example_from_schema(Everything.model_json_schema())

    result = Everything.model_validate(example)
    assert (result.ratio, result.level, result.odd_even) == (0.5, 5, 4)
    assert result.tree.name == "textxxxx"


def test_a_rules_json_reply_is_the_content(client: OpenAI, server: TestModelServer) -> None:
    decision = {"label": "negative", "confidence": 0.9, "primary": {"quote": "late", "weight": 1}}
    decision |= {"evidence": [], "tags": ["shipping"], "urgent": False, "priority": 3, "note": None}
    server.control.set_rules([Rule(match=Match(response_format=True), reply=Reply.model_validate({"json": decision}))])

    completion = client.chat.completions.create(
        model=MODEL,
        messages=[user("Classify: my parcel is late")],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "Classification", "schema": Classification.model_json_schema(), "strict": True},
        },
    )

    content = completion.choices[0].message.content
    assert content is not None
    assert json.loads(content) == decision
    assert Classification.model_validate_json(content).label is Sentiment.NEGATIVE


def test_rate_limit_is_retried_by_the_sdk_after_retry_after(server: TestModelServer) -> None:
    server.control.inject({"kind": "rate_limit", "retry_after": 0.1})

    with OpenAI(base_url=server.url, api_key="test", max_retries=2) as retrying:
        started = time.monotonic()
        completion = retrying.chat.completions.create(model=MODEL, messages=[user("hi")])
        elapsed = time.monotonic() - started

    assert completion.choices[0].message.content == "Reply to: hi (turn 1)"
    assert elapsed >= 0.1
    log = server.control.requests()
    assert [entry["fault"] and entry["fault"]["kind"] for entry in log] == ["rate_limit", None]


def test_rate_limit_response_looks_like_openais(server: TestModelServer) -> None:
    server.control.inject({"kind": "rate_limit", "retry_after": 1.5})

    response = httpx.post(f"{server.url}/chat/completions", json={"model": MODEL, "messages": [user("hi")]})

    assert response.status_code == 429
    assert response.headers["retry-after"] == "1.5"
    assert response.headers["retry-after-ms"] == "1500"
    assert response.json()["error"]["type"] == "rate_limit_error"
    assert response.json()["error"]["code"] == "rate_limit_exceeded"


def test_server_error_without_retries_raises_once(client: OpenAI, server: TestModelServer) -> None:
    server.control.inject({"kind": "server_error", "status": 500})

    with pytest.raises(openai.InternalServerError) as raised:
        client.chat.completions.create(model=MODEL, messages=[user("hi")])

    assert raised.value.status_code == 500
    assert client.chat.completions.create(model=MODEL, messages=[user("hi")]).choices[0].message.content


def test_permanent_fault_repeats_until_reset(client: OpenAI, server: TestModelServer) -> None:
    server.control.inject({"kind": "server_error", "status": 400, "repeat": True, "message": "bad on purpose"})

    for _ in range(2):
        with pytest.raises(openai.BadRequestError, match="bad on purpose"):
            client.chat.completions.create(model=MODEL, messages=[user("hi")])

    server.control.reset()
    assert client.chat.completions.create(model=MODEL, messages=[user("hi")]).choices[0].finish_reason == "stop"


def test_faults_wait_for_a_request_of_their_model(client: OpenAI, server: TestModelServer) -> None:
    server.control.inject({"kind": "server_error", "model": "other-model"})

    assert client.chat.completions.create(model=MODEL, messages=[user("hi")]).choices[0].message.content
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="other-model", messages=[user("hi")])

    assert [entry["fault"] is not None for entry in server.control.requests()] == [False, True]


def test_disconnect_mid_stream_raises_after_the_first_chunks(client: OpenAI, server: TestModelServer) -> None:
    server.control.inject({"kind": "disconnect", "after_chunks": 2})
    received = []

    with pytest.raises(openai.APIConnectionError):
        for chunk in client.chat.completions.create(model=MODEL, messages=[user("a long answer please")], stream=True):
            received.append(chunk)

    assert received[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in received) == "Reply to: "
    assert server.control.requests()[0]["fault"]["after_chunks"] == 2


def test_disconnect_without_streaming_gives_no_response(client: OpenAI, server: TestModelServer) -> None:
    server.control.inject({"kind": "disconnect"})

    with pytest.raises(openai.APIConnectionError) as raised:
        client.chat.completions.create(model=MODEL, messages=[user("hi")])

    assert "without sending a response" in str(raised.value.__cause__)


def test_times_limits_how_often_a_rule_answers(client: OpenAI, server: TestModelServer) -> None:
    server.control.add_rule(Rule(reply=Reply(content="scripted"), times=2))

    answers = [client.chat.completions.create(model=MODEL, messages=[user("hi")]) for _ in range(3)]

    assert [a.choices[0].message.content for a in answers] == ["scripted", "scripted", "Reply to: hi (turn 1)"]
    assert [entry["rule"] for entry in server.control.requests()] == [0, 0, None]


def test_reply_placeholders_and_literal_braces(client: OpenAI, server: TestModelServer) -> None:
    server.control.add_rule(match={"system_contains": "terse"}, reply={"content": "{system}|{last_user}|{turn}|{x}"})

    completion = client.chat.completions.create(
        model=MODEL, messages=[{"role": "system", "content": "Be terse."}, user("hi")]
    )

    assert completion.choices[0].message.content == "Be terse.|hi|1|{x}"


def test_reset_clears_rules_faults_log_and_latency(client: OpenAI, server: TestModelServer) -> None:
    server.control.add_rule(reply={"content": "scripted"})
    server.control.inject({"kind": "server_error", "repeat": True})
    server.control.set_latency(2000)
    server.control.reset()

    started = time.monotonic()
    completion = client.chat.completions.create(model=MODEL, messages=[user("hi")])

    assert time.monotonic() - started < 2.0
    assert completion.choices[0].message.content == "Reply to: hi (turn 1)"
    assert [(entry["seq"], entry["fault"], entry["rule"]) for entry in server.control.requests()] == [(1, None, None)]


def test_control_client_works_from_the_url_alone(client: OpenAI, server: TestModelServer) -> None:
    with ModelServerControl(server.url) as control:
        control.set_rules(
            [
                Rule(match=Match(model="other-model"), reply=Reply(content="not me")),
                {"match": {"model": MODEL}, "reply": {"content": "mine"}},
            ]
        )
        completion = client.chat.completions.create(model=MODEL, messages=[user("hi")])
        log = control.requests()

    assert completion.choices[0].message.content == "mine"
    assert log[0].keys() == {"seq", "received_at", "path", "auth", "body", "fault", "rule"}
    assert (log[0]["seq"], log[0]["fault"], log[0]["rule"]) == (1, None, 1)
    assert log[0]["body"] == {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    assert datetime.fromisoformat(log[0]["received_at"]).tzinfo is not None
    with ModelServerControl(f"http://127.0.0.1:{server.port}") as by_root:
        assert len(by_root.requests()) == 1


def test_bad_rules_and_unreachable_servers_are_reported(server: TestModelServer) -> None:
    with pytest.raises(ValueError, match="last_user_contain"):
        server.control.add_rule({"match": {"last_user_contain": "typo"}})
    with pytest.raises(ValueError, match="not both"):
        Reply.model_validate({"content": "text", "json": {"a": 1}})

    refused = httpx.post(f"http://127.0.0.1:{server.port}/_control/rules/add", json={"reply": {"contents": "x"}})
    assert refused.status_code == 422

    with (
        ModelServerControl("http://127.0.0.1:9/v1", timeout=2) as nowhere,
        pytest.raises(ModelServerControlError, match="could not reach the test model server at http://127.0.0.1:9"),
    ):
        nowhere.requests()


def test_invalid_chat_requests_get_openai_style_errors(client: OpenAI, server: TestModelServer) -> None:
    response = httpx.post(f"{server.url}/chat/completions", json={"model": MODEL})

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.json()["error"]["param"] == "messages"
    assert [model.id for model in client.models.list()] == [MODEL]


def test_latency_rule_delays_and_delay_faults_slow_responses(client: OpenAI, server: TestModelServer) -> None:
    def timed(**extra: Any) -> float:
        started = time.monotonic()
        response = client.chat.completions.create(model=MODEL, messages=[user("a b c d")], **extra)
        if extra.get("stream"):
            list(response)
        return time.monotonic() - started

    server.control.set_latency(50)
    assert timed() >= 0.05
    server.control.set_latency(0)

    server.control.inject(Fault(kind="delay", ms=50))
    assert timed() >= 0.05
    logged = server.control.requests()[-1]["fault"]
    assert logged == {"kind": "delay", "ms": 50, "model": None, "repeat": False, "message": None}

    server.control.set_rules([{"reply": {"delay_ms": 50, "chunk_delay_ms": 10}}])
    assert timed() >= 0.05
    # Role chunk, 8 words ("Reply to: a b c d (turn 1)"), finish chunk: 9 gaps of 10 ms after the first 50.
    assert timed(stream=True) >= 0.05 + 9 * 0.01


def test_a_server_started_with_rules_and_latency(server: TestModelServer) -> None:
    ping_pong = {"match": {"last_user_contains": "ping"}, "reply": {"content": "pong"}}
    second = TestModelServer(rules=[ping_pong], latency_ms=30)
    with pytest.raises(RuntimeError, match="call start"):
        _ = second.port

    with second, OpenAI(base_url=second.url, api_key="test", max_retries=0) as sdk:
        assert second.port != server.port
        started = time.monotonic()
        completion = sdk.chat.completions.create(model=MODEL, messages=[user("ping")])
        assert time.monotonic() - started >= 0.03
        assert completion.choices[0].message.content == "pong"
        second.control.reset()  # clears the rules, keeps the starting latency
        assert sdk.chat.completions.create(model=MODEL, messages=[user("ping")]).choices[0].message.content != "pong"

    with pytest.raises(RuntimeError, match="not running"):
        _ = second.control


def test_python_m_serves_in_the_foreground_and_prints_its_url() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "durable_agents.testing", "--port", "0", "--latency-ms", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        # The socket listens before the URL is printed, so requests queue until uvicorn serves them.
        with ModelServerControl(url) as control:
            control.add_rule(reply={"content": "from another process"})
        with OpenAI(base_url=url, api_key="test", max_retries=0) as sdk:
            completion = sdk.chat.completions.create(model=MODEL, messages=[user("hi")])
        assert completion.choices[0].message.content == "from another process"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_azure_deployment_route_with_key_and_with_token_provider(server: TestModelServer) -> None:
    from durable_agents import AzureOpenAIChatClient

    root = server.url.removesuffix("/v1")
    with_key = AzureOpenAIChatClient(root, deployment="gpt-test", api_version="2024-10-21", api_key="secret")
    with_token = AzureOpenAIChatClient(root, deployment="gpt-test", credential=lambda: "entra-token")
    for client in (with_key, with_token):
        reply = client.complete([{"role": "user", "content": "Hello Azure"}])
        assert reply.message["content"] == "Reply to: Hello Azure (turn 1)"
    key_request, token_request = server.control.requests()[-2:]
    assert key_request["path"] == "/openai/deployments/gpt-test/chat/completions"
    assert (key_request["auth"], token_request["auth"]) == ("api-key", "Bearer entra-token")
