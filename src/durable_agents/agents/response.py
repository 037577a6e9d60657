"""What an agent run returns: the reply text, the turn's messages, token usage, and a structured value."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import AgentRunError, FailureDetails, StructuredOutputError


@dataclass(frozen=True)
class AgentSession:
    """A conversation of one agent; pass it as `session=` to continue it."""

    agent: str
    key: str

    def __str__(self) -> str:
        return self.key


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.total_tokens + other.total_tokens,
        )

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Usage:
        data = data or {}
        return cls(
            int(data.get("prompt_tokens", 0)), int(data.get("completion_tokens", 0)), int(data.get("total_tokens", 0))
        )


@dataclass
class AgentResponse:
    """An agent's answer. With a `response_format`, `value` holds the validated object and its
    attributes read through: `classification.is_spam` is `classification.value.is_spam`."""

    text: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    correlation_id: str = ""
    session: AgentSession | None = None
    value: Any = None

    def __getattr__(self, name: str) -> Any:
        value = self.__dict__.get("value")
        if value is None or name.startswith("_"):
            raise AttributeError(name)
        return getattr(value, name)

    def __str__(self) -> str:
        return self.text

    @classmethod
    def from_turn(cls, data: dict[str, Any], response_format: Any = None) -> AgentResponse:
        """Build the response from a turn's stored result; raises AgentRunError for a failed turn."""
        if "error" in data:
            details = FailureDetails.from_json(data["error"])
            raise AgentRunError(f"agent turn {data.get('correlation_id', '')} failed: {details}", details)
        response = cls(
            text=data.get("text") or "",
            messages=list(data.get("messages") or []),
            usage=Usage.from_json(data.get("usage")),
            correlation_id=data.get("correlation_id", ""),
            session=AgentSession(data.get("agent", ""), data.get("session", "")),
        )
        if response_format is not None:
            try:
                response.value = response_format.model_validate_json(response.text)
            except Exception as error:
                raise StructuredOutputError(
                    f"the reply of agent {data.get('agent')!r} is not a valid {response_format.__name__}: {error}"
                ) from error
        return response


def format_spec(response_format: Any) -> dict[str, Any] | None:
    """The JSON description of a pydantic `response_format` that travels with a turn."""
    if response_format is None:
        return None
    schema = getattr(response_format, "model_json_schema", None)
    if schema is None:
        raise TypeError(f"response_format must be a pydantic model class, got {response_format!r}")
    return {
        "name": response_format.__name__,
        "schema": schema(),
        "type_path": f"{response_format.__module__}:{response_format.__qualname__}",
    }
