"""Structured output on any server: response_format json_schema where the server takes it, else json_object
with the schema in the instructions; which one an endpoint takes is learned once per process."""

from __future__ import annotations

import json
import threading
from typing import Any, Literal

import openai

from ..errors import ModelCallError

StructuredOutputMode = Literal["auto", "json_schema", "json_object"]
MODES: tuple[str, ...] = ("auto", "json_schema", "json_object")


class FormatRefusedError(ModelCallError):
    """The server refused response_format json_schema (it answered with an error naming response_format)."""


_lock = threading.Lock()
#: What each endpoint showed it does with json_schema, per model (a proxy may route models to different
#: servers): True takes it, False refuses it.
_learned: dict[tuple[str, str], bool] = {}


def learned(endpoint: str, model: str) -> bool | None:
    with _lock:
        return _learned.get((endpoint, model))


def learn(endpoint: str, model: str, *, takes_json_schema: bool) -> None:
    with _lock:
        _learned[(endpoint, model)] = takes_json_schema


def refuses_json_schema(error: openai.APIStatusError) -> bool:
    """Whether an error answers a json_schema request by refusing the format (not a rate limit or an outage
    that happens to come back for it)."""
    if error.status_code in (408, 409, 429):
        return False
    text = f"{error.message} {error.body}".lower()
    return "response_format" in text or "json_schema" in text


def response_format_field(response_format: dict[str, Any], mode: str) -> dict[str, Any]:
    """The request's `response_format` for a format (as format_spec describes it) in `mode`."""
    if mode == "json_object":
        return {"type": "json_object"}
    return {
        "type": "json_schema",
        "json_schema": {"name": response_format["name"], "schema": response_format["schema"]},
    }


def with_schema_instructions(messages: list[dict[str, Any]], response_format: dict[str, Any]) -> list[dict[str, Any]]:
    """`messages` with the schema spelt out in the system instructions, for servers that take only json_object."""
    instructions = (
        f"Reply with only a JSON object (no prose, no code fence) that is a valid {response_format['name']} "
        f"as this JSON schema defines it:\n```json\n{json.dumps(response_format['schema'])}\n```"
    )
    if messages and messages[0].get("role") == "system":
        first = messages[0]
        # One system message: some servers' chat templates accept no second one.
        return [{**first, "content": f"{first.get('content') or ''}\n\n{instructions}"}, *messages[1:]]
    return [{"role": "system", "content": instructions}, *messages]
