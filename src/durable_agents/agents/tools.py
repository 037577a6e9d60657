"""Agent tools (plain functions, durable activities, orchestrations) and the JSON schemas the model sees."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ValidationError, create_model

if TYPE_CHECKING:
    from .approvals import ApprovalPolicy

ToolKind = Literal["inline", "activity", "orchestration"]


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    arguments: type[BaseModel]
    kind: ToolKind
    #: The function to call (inline tools), or the registered activity/orchestration name.
    fn: Callable[..., Any] | None = None
    target: str = ""
    #: Calls wait for a person's approval (None: unless the agent's policy says so).
    approval: ApprovalPolicy | None = None

    def openai_schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.arguments.model_json_schema(),
            },
        }

    def parse_arguments(self, raw: str | dict[str, Any]) -> dict[str, Any]:
        """Validate the model's arguments; raises ValueError with a message fit to show the model."""
        try:
            data = json.loads(raw) if isinstance(raw, str) else raw
            validated = self.arguments.model_validate(data)
        except (json.JSONDecodeError, ValidationError) as error:
            raise ValueError(f"invalid arguments for tool {self.name!r}: {error}") from error
        return {name: getattr(validated, name) for name in type(validated).model_fields}

    def invoke(self, arguments: dict[str, Any]) -> Any:
        assert self.fn is not None
        result = self.fn(**arguments)
        if inspect.isawaitable(result):
            result = asyncio.run(_wait(result))
        return result


async def _wait(awaitable: Any) -> Any:
    return await awaitable


def arguments_model(fn: Callable[..., Any], name: str) -> type[BaseModel]:
    """A pydantic model of `fn`'s parameters, from its type hints and defaults."""
    from typing import get_type_hints

    hints = get_type_hints(fn)
    fields: dict[str, Any] = {}
    for parameter in inspect.signature(fn).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        annotation = hints.get(parameter.name, Any)
        default = ... if parameter.default is parameter.empty else parameter.default
        fields[parameter.name] = (annotation, default)
    model: type[BaseModel] = create_model(f"{name}_arguments", **fields)
    return model


def describe(fn: Callable[..., Any]) -> str:
    doc = inspect.getdoc(fn) or ""
    return doc.split("\n\n")[0].replace("\n", " ").strip()


def tool_spec(tool: Any) -> ToolSpec:
    """The spec of a tool given as a plain function, or as one marked by app.durable_tool/orchestration_tool."""
    if isinstance(tool, ToolSpec):
        return tool
    marked = getattr(tool, "__durable_tool__", None)
    if isinstance(marked, ToolSpec):
        return marked
    if not callable(tool):
        raise TypeError(f"a tool must be a function or a ToolSpec, got {tool!r}")
    name = tool.__name__
    return ToolSpec(name, describe(tool), arguments_model(tool, name), "inline", fn=tool)


def tool_output(value: Any) -> str:
    """What the model reads back: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    from pydantic_core import to_json

    return to_json(value).decode()
