"""The test model server's HTTP app: Chat Completions answered by rules and defaults, faults, and the control API."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn

from fastapi import Body, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .responses import (
    Answer,
    SchemaExampleError,
    build_answer,
    completion_body,
    error_body,
    incomplete,
    stream_chunks,
)
from .rules import ChatRequest, Fault, InvalidChatRequestError, Rule

MODEL_ID = "test-model"
#: Faults that answer, but incompletely.
INCOMPLETE_KINDS = ("no_finish", "length", "empty")


class ServerState:
    """Rules, faults, latency and the request log.

    Only touched from the server's event loop (every endpoint is async), so it needs no lock.
    """

    def __init__(
        self, rules: Sequence[Rule | Mapping[str, Any]] | None = None, latency_ms: int = 0, json_schema: bool = True
    ) -> None:
        self.initial_latency_ms = latency_ms
        self.initial_json_schema = json_schema
        #: False: refuse `response_format` of type json_schema, as llama.cpp and older vLLM servers do.
        self.json_schema = json_schema
        self.rules: list[Rule] = []
        self.answered: list[int] = []
        self.faults: deque[Fault] = deque()
        self.log: list[dict[str, Any]] = []
        self.seq = 0
        self.latency_ms = latency_ms
        self.set_rules([Rule.model_validate(rule) for rule in rules or []])

    def set_rules(self, rules: list[Rule]) -> None:
        self.rules = list(rules)
        self.answered = [0] * len(rules)

    def add_rule(self, rule: Rule) -> int:
        self.rules.append(rule)
        self.answered.append(0)
        return len(self.rules) - 1

    def reset(self) -> None:
        self.set_rules([])
        self.faults.clear()
        self.log.clear()
        self.seq = 0
        self.latency_ms = self.initial_latency_ms
        self.json_schema = self.initial_json_schema

    def take_fault(self, model: str) -> Fault | None:
        """The first queued fault for `model`; it leaves the queue unless it repeats."""
        for fault in self.faults:
            if fault.applies_to(model):
                if not fault.repeat:
                    self.faults.remove(fault)
                return fault
        return None

    def match_rule(self, request: ChatRequest, *, consume: bool) -> int | None:
        """The index of the first rule that matches and has answers left; `consume` counts this one."""
        for index, rule in enumerate(self.rules):
            if rule.times is not None and self.answered[index] >= rule.times:
                continue
            if rule.match.matches(request):
                if consume:
                    self.answered[index] += 1
                return index
        return None


class LatencyBody(BaseModel):
    ms: int = Field(ge=0)


class OptionsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    json_schema: bool | None = None


_DROP = "durable_agents.testing.drop_connection"


class DroppedConnectionError(Exception):
    """Raised right after a `disconnect` fault dropped the connection, to stop the request there."""


class _QuietDrops(logging.Filter):
    # Uvicorn logs every exception escaping the app with a traceback; planned disconnects are not errors.
    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, DroppedConnectionError)


class _DropConnections:
    """Outermost ASGI layer: lets the app drop its connection for real, with no response or no proper end.

    Starlette answers an exception raised before the response started with a 500, so the app calls the
    `drop` function put in the scope (which closes uvicorn's transport and mutes every later send), then
    raises DroppedConnectionError to stop. Without a transport (another server) the client sees a 500.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # uvicorn's send is a bound method of its request cycle, which holds the connection's transport.
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        dropped = False

        def drop() -> None:
            nonlocal dropped
            dropped = True
            if isinstance(transport, asyncio.BaseTransport):
                transport.close()  # flushes what was already sent, then closes

        async def send_unless_dropped(message: Message) -> None:
            if not dropped:
                await send(message)

        await self.app({**scope, _DROP: drop}, receive, send_unless_dropped)


async def _drop_connection(scope: Mapping[str, Any], reason: str) -> NoReturn:
    drop = scope.get(_DROP)
    if callable(drop):
        drop()
        # One loop turn lets uvicorn see the connection is gone, so it neither writes nor logs a 500 for it.
        await asyncio.sleep(0)
    raise DroppedConnectionError(reason)


def build_app(state: ServerState) -> ASGIApp:
    """The ASGI app to serve: the FastAPI app wrapped so `disconnect` faults really drop connections."""
    uvicorn_errors = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in uvicorn_errors.filters):
        uvicorn_errors.addFilter(_QuietDrops())
    return _DropConnections(create_app(state))


def create_app(state: ServerState) -> FastAPI:
    app = FastAPI(title="durable-agents test model server")

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        return await _answer(state, request)

    # The route Azure OpenAI clients call (the deployment is in the path, the version in the query).
    @app.post("/openai/deployments/{deployment}/chat/completions")
    async def azure_chat_completions(deployment: str, request: Request) -> Response:
        return await _answer(state, request)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "durable-agents"}],
        }

    @app.post("/_control/rules")
    async def set_rules(rules: Annotated[list[Rule], Body()]) -> dict[str, int]:
        state.set_rules(rules)
        return {"rules": len(state.rules)}

    @app.post("/_control/rules/add")
    async def add_rule(rule: Annotated[Rule, Body()]) -> dict[str, int]:
        return {"index": state.add_rule(rule)}

    @app.post("/_control/faults")
    async def inject(faults: Annotated[list[Fault] | Fault, Body()]) -> dict[str, int]:
        state.faults.extend(faults if isinstance(faults, list) else [faults])
        return {"queued": len(state.faults)}

    @app.post("/_control/latency")
    async def set_latency(body: LatencyBody) -> dict[str, int]:
        state.latency_ms = body.ms
        return {"latency_ms": state.latency_ms}

    @app.post("/_control/options")
    async def set_options(body: OptionsBody) -> dict[str, Any]:
        if body.json_schema is not None:
            state.json_schema = body.json_schema
        return {"json_schema": state.json_schema}

    @app.get("/_control/requests")
    async def requests() -> list[dict[str, Any]]:
        return state.log

    @app.post("/_control/reset")
    async def reset() -> dict[str, bool]:
        state.reset()
        return {"ok": True}

    return app


async def _answer(state: ServerState, http_request: Request) -> Response:
    raw = await http_request.body()
    # Numbered after the body arrived, with no await until it is logged, so seq follows the log's order.
    state.seq += 1
    seq = state.seq
    entry: dict[str, Any] = {
        "seq": seq,
        "received_at": datetime.now(UTC).isoformat(),
        "path": http_request.url.path,
        # Which credential arrived (Azure sends keys as api-key, tokens and OpenAI keys as bearer).
        "auth": "api-key" if "api-key" in http_request.headers else http_request.headers.get("authorization"),
        "body": None,
        "fault": None,
        "rule": None,
    }
    state.log.append(entry)
    headers = {"x-request-id": f"req_test_{seq}"}
    try:
        entry["body"] = json.loads(raw)
        request = ChatRequest.from_body(entry["body"])
    except ValueError as error:  # json.JSONDecodeError and InvalidChatRequestError alike
        entry["body"] = entry["body"] if entry["body"] is not None else raw.decode(errors="replace")
        param = error.param if isinstance(error, InvalidChatRequestError) else None
        return JSONResponse(error_body(400, f"Invalid chat request: {error}", param), 400, headers)

    if not state.json_schema and request.response_format and request.response_format.get("type") == "json_schema":
        # As llama.cpp answers it: a server error, which SDKs retry unless told otherwise.
        message = "response_format type 'json_schema' is not supported by this server; use 'json_object'"
        return JSONResponse(error_body(500, message, "response_format"), 500, headers)
    fault = state.take_fault(request.model)
    entry["fault"] = fault.summary() if fault is not None else None
    delay_ms = state.latency_ms + (fault.ms if fault is not None and fault.kind == "delay" else 0)
    if fault is not None and fault.kind in ("rate_limit", "server_error"):
        await _sleep_ms(delay_ms)
        return _fault_response(fault, headers)

    disconnect = fault is not None and fault.kind == "disconnect"
    # A cut-off answer was not delivered, so it does not use up one of the rule's `times`.
    entry["rule"] = index = state.match_rule(request, consume=not disconnect)
    reply = state.rules[index].reply if index is not None else None
    try:
        answer = build_answer(request, reply, seq)
    except SchemaExampleError as error:
        return JSONResponse(error_body(400, f"Cannot answer this response_format: {error}"), 400, headers)
    if fault is not None and fault.kind in INCOMPLETE_KINDS:
        answer = incomplete(answer, fault.kind)
    await _sleep_ms(delay_ms + (reply.delay_ms if reply is not None else 0))

    created = int(time.time())
    if not request.stream:
        if disconnect:
            await _drop_connection(http_request.scope, f"disconnect fault for request {seq}")
        return JSONResponse(completion_body(request, answer, seq, created), headers=headers)
    after_chunks = fault.after_chunks if fault is not None and disconnect else None
    chunk_delay_ms = reply.chunk_delay_ms if reply is not None else 0
    events = _events(http_request.scope, request, answer, seq, created, after_chunks, chunk_delay_ms)
    return StreamingResponse(events, media_type="text/event-stream", headers=headers)


async def _events(
    scope: Mapping[str, Any],
    request: ChatRequest,
    answer: Answer,
    seq: int,
    created: int,
    drop_after: int | None,
    chunk_delay_ms: int,
) -> AsyncIterator[str]:
    """The server-sent events of a streamed answer.

    With `drop_after`, the connection drops once that many chunks followed the role chunk, so the client
    never sees the end of the stream.
    """
    for position, chunk in enumerate(stream_chunks(request, answer, seq, created)):
        if position > 0:
            await _sleep_ms(chunk_delay_ms)
        if drop_after is not None and position > drop_after:
            await _drop_connection(scope, f"disconnect fault for request {seq} after {drop_after} chunks")
        yield f"data: {json.dumps(chunk)}\n\n"
    if drop_after is not None:
        await _drop_connection(scope, f"disconnect fault for request {seq} before the end of the stream")
    yield "data: [DONE]\n\n"


def _fault_response(fault: Fault, headers: dict[str, str]) -> JSONResponse:
    if fault.kind == "rate_limit":
        message = fault.message or "Rate limit reached (injected by the test model server)."
        headers = {
            **headers,
            "retry-after": f"{fault.retry_after:g}",
            "retry-after-ms": str(round(fault.retry_after * 1000)),
        }
        return JSONResponse(error_body(429, message), 429, headers)
    message = fault.message or f"Error {fault.status} injected by the test model server."
    return JSONResponse(error_body(fault.status, message), fault.status, headers)


async def _sleep_ms(ms: int) -> None:
    if ms > 0:
        await asyncio.sleep(ms / 1000)
