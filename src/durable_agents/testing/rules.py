"""What the test model server can be told (rules and faults) and how it reads a chat request to match them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

FaultKind = Literal["rate_limit", "server_error", "disconnect", "delay", "no_finish", "length", "empty"]

# "developer" is the newer spelling of "system" in the Chat Completions API.
_SYSTEM_ROLES = ("system", "developer")


class _Strict(BaseModel):
    # A typo such as "last_user_contain" must be rejected, not silently turn a rule into a catch-all.
    model_config = ConfigDict(extra="forbid")


class InvalidChatRequestError(ValueError):
    """A chat request the server cannot answer; becomes an OpenAI-style 400 error."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class ChatRequest:
    """The parts of a Chat Completions request body that rules and default replies look at."""

    body: Mapping[str, Any]
    model: str
    messages: Sequence[Mapping[str, Any]]
    system: str
    last_user: str
    turn: int
    last_role: str
    tool_names: tuple[str, ...]
    response_format: Mapping[str, Any] | None
    stream: bool
    include_usage: bool

    @classmethod
    def from_body(cls, body: Any) -> ChatRequest:
        if not isinstance(body, Mapping):
            raise InvalidChatRequestError("The request body must be a JSON object with `model` and `messages`.")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise InvalidChatRequestError("`model` is required and must be a non-empty string.", "model")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise InvalidChatRequestError("`messages` is required and must be a non-empty list.", "messages")
        for index, message in enumerate(messages):
            if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
                raise InvalidChatRequestError(f"messages[{index}] must be an object with a string `role`.", "messages")
        users = [message_text(m) for m in messages if m["role"] == "user"]
        tools = body.get("tools") or []
        tool_names = tuple(
            str(tool["function"]["name"])
            for tool in tools
            if isinstance(tool, Mapping) and isinstance(tool.get("function"), Mapping) and "name" in tool["function"]
        )
        response_format = body.get("response_format")
        if not (isinstance(response_format, Mapping) and response_format.get("type") in ("json_schema", "json_object")):
            response_format = None
        stream_options = body.get("stream_options")
        return cls(
            body=body,
            model=model,
            messages=messages,
            system="\n".join(message_text(m) for m in messages if m["role"] in _SYSTEM_ROLES),
            last_user=users[-1] if users else "",
            turn=len(users),
            last_role=messages[-1]["role"],
            tool_names=tool_names,
            response_format=response_format,
            stream=bool(body.get("stream")),
            include_usage=isinstance(stream_options, Mapping) and bool(stream_options.get("include_usage")),
        )


def message_text(message: Mapping[str, Any]) -> str:
    """The text of a message whose content is a string, a list of text parts, or absent."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part["text"]) for part in content if isinstance(part, Mapping) and isinstance(part.get("text"), str)
        )
    return ""


class Match(_Strict):
    """Conditions on a request; every field that is set must hold (an empty Match matches everything)."""

    model: str | None = None
    system_contains: str | None = None
    last_user_contains: str | None = None
    last_message_role: str | None = None
    has_tools: bool | None = None
    tool_offered: str | None = None
    response_format: bool | None = None

    def matches(self, request: ChatRequest) -> bool:
        checks = (
            self.model is None or request.model == self.model,
            self.system_contains is None or self.system_contains in request.system,
            self.last_user_contains is None or (request.turn > 0 and self.last_user_contains in request.last_user),
            self.last_message_role is None or request.last_role == self.last_message_role,
            self.has_tools is None or bool(request.tool_names) == self.has_tools,
            self.tool_offered is None or self.tool_offered in request.tool_names,
            self.response_format is None or (request.response_format is not None) == self.response_format,
        )
        return all(checks)


class ToolCallReply(_Strict):
    """A tool call the model makes; `arguments` as a string is sent verbatim (handy for malformed JSON)."""

    name: str
    arguments: dict[str, Any] | str = Field(default_factory=dict)


class Reply(_Strict):
    """What the model answers. With none of content, json or tool_calls it gives the default reply (plus delays).

    `content` may use the placeholders {last_user}, {turn} and {system}; other braces are left alone.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    content: str | None = None
    tool_calls: list[ToolCallReply] | None = None
    json_: Any = Field(default=None, alias="json")
    delay_ms: int = Field(default=0, ge=0)
    chunk_delay_ms: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _content_or_json(self) -> Reply:
        if self.content is not None and self.json_ is not None:
            raise ValueError("a reply has `content` or `json`, not both: drop one (`json` becomes the content)")
        return self

    @property
    def is_default(self) -> bool:
        return self.content is None and self.json_ is None and not self.tool_calls


class Rule(_Strict):
    """Answer requests that satisfy `match` with `reply`, at most `times` times (None: forever)."""

    match: Match = Field(default_factory=Match)
    reply: Reply = Field(default_factory=Reply)
    times: int | None = Field(default=None, ge=0)


class Fault(_Strict):
    """A failure for one upcoming chat request (the first whose model matches), or for all of them with `repeat`.

    rate_limit: 429 with Retry-After `retry_after` seconds. server_error: `status` with an error body.
    disconnect: drop the connection once `after_chunks` chunks followed the role chunk (content words first,
    then tool-call pieces); a request that does not stream gets no response at all.
    delay: wait `ms` more before answering normally.
    Incomplete replies, as overloaded servers give them: no_finish: the answer ends (`[DONE]` when streamed)
    without a finish_reason; length: the first half of the answer, with finish_reason "length"; empty: an
    empty answer with finish_reason "stop".
    """

    kind: FaultKind
    model: str | None = None
    repeat: bool = False
    retry_after: float = Field(default=0.1, ge=0)
    status: int = Field(default=500, ge=400, le=599)
    after_chunks: int = Field(default=0, ge=0)
    ms: int = Field(default=0, ge=0)
    message: str | None = None

    def applies_to(self, model: str) -> bool:
        return self.model is None or self.model == model

    def summary(self) -> dict[str, Any]:
        """The fields that matter for this kind, as the request log shows the fault."""
        relevant = {"rate_limit": "retry_after", "server_error": "status", "disconnect": "after_chunks", "delay": "ms"}
        keep = {"kind", "model", "repeat", "message"}
        if self.kind in relevant:
            keep.add(relevant[self.kind])
        return self.model_dump(mode="json", include=keep)
