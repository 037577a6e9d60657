"""What the test model server says and how it is shaped: answers, OpenAI completion/chunk/error bodies, schema JSON."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .rules import ChatRequest, Reply, message_text

# String formats pydantic emits, with a value each that validates.
_FORMAT_EXAMPLES = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "00:00:00",
    "duration": "PT1S",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "hostname": "example.com",
}
# Past this many nested $refs optional values become null and arrays empty, so recursive models terminate.
_SHALLOW_REFS = 6
_MAX_REFS = 32
_CHUNK = re.compile(r"\s*\S+\s*")


class SchemaExampleError(ValueError):
    """A JSON schema the server cannot make an example for."""


@dataclass(frozen=True)
class Answer:
    """The assistant message for one request: text and/or tool calls in OpenAI's shape."""

    content: str | None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    #: How an incomplete answer was cut off: "length", or "no_finish" (no finish_reason at all).
    cut: str | None = None

    @property
    def finish_reason(self) -> str | None:
        if self.cut is not None:
            return "length" if self.cut == "length" else None
        return "tool_calls" if self.tool_calls else "stop"

    @property
    def completion_tokens(self) -> int:
        words = count_tokens(self.content or "")
        for call in self.tool_calls:
            words += count_tokens(call["function"]["name"]) + count_tokens(call["function"]["arguments"])
        return words


def count_tokens(text: str) -> int:
    """Deterministic stand-in for a tokenizer: whitespace-separated words."""
    return len(text.split())


def prompt_tokens(request: ChatRequest) -> int:
    words = 0
    for message in request.messages:
        words += count_tokens(message_text(message))
        for call in message.get("tool_calls") or []:
            function = call.get("function") if isinstance(call, Mapping) else None
            if isinstance(function, Mapping):
                words += count_tokens(str(function.get("name", ""))) + count_tokens(str(function.get("arguments", "")))
    return words


def split_words(text: str) -> list[str]:
    """Stream pieces: one word with its surrounding whitespace each, concatenating back to `text`."""
    pieces = _CHUNK.findall(text)
    if "".join(pieces) != text:  # only whitespace, or empty
        return [text] if text else []
    return pieces


def default_content(request: ChatRequest) -> str:
    """The reply when no rule matches: schema-shaped JSON when a format was requested, else an echo of the turn."""
    if request.response_format is not None:
        if request.response_format.get("type") == "json_object":
            # As a model that follows its instructions: the schema they give, if any, shapes the object.
            given = schema_in_instructions(request.system)
            return json.dumps(example_from_schema(given)) if given is not None else "{}"
        json_schema = request.response_format.get("json_schema") or {}
        schema = json_schema.get("schema") if isinstance(json_schema, Mapping) else None
        return json.dumps(example_from_schema(schema or {}))
    return f"Reply to: {request.last_user} (turn {request.turn})"


_JSON_BLOCK = re.compile(r"```json\s*\n(.*?)\n```", re.DOTALL)


def schema_in_instructions(system: str) -> dict[str, Any] | None:
    """The last JSON schema given in a ```json block of the system messages, if any."""
    for block in reversed(_JSON_BLOCK.findall(system)):
        try:
            schema = json.loads(block)
        except ValueError:
            continue
        if isinstance(schema, dict) and ("properties" in schema or "type" in schema):
            return schema
    return None


def build_answer(request: ChatRequest, reply: Reply | None, seq: int) -> Answer:
    if reply is None or reply.is_default:
        return Answer(default_content(request))
    content: str | None = None
    if reply.json_ is not None:
        content = json.dumps(reply.json_)
    elif reply.content is not None:
        content = (
            reply.content.replace("{last_user}", request.last_user)
            .replace("{turn}", str(request.turn))
            .replace("{system}", request.system)
        )
    tool_calls = [
        {
            "id": f"call_{seq}_{index}",
            "type": "function",
            "function": {
                "name": call.name,
                "arguments": call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments),
            },
        }
        for index, call in enumerate(reply.tool_calls or [])
    ]
    return Answer(content, tool_calls)


def incomplete(answer: Answer, kind: str) -> Answer:
    """The answer as an overloaded server gives it (the fault kinds no_finish, length and empty)."""
    if kind == "empty":
        return Answer("")
    if kind == "length":
        words = split_words(answer.content or "")
        return Answer("".join(words[: len(words) // 2]), cut="length")
    return Answer(answer.content, answer.tool_calls, cut="no_finish")


def usage(request: ChatRequest, answer: Answer) -> dict[str, int]:
    prompt, completion = prompt_tokens(request), answer.completion_tokens
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def completion_body(request: ChatRequest, answer: Answer, seq: int, created: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.content, "refusal": None}
    if answer.tool_calls:
        message["tool_calls"] = answer.tool_calls
    return {
        "id": completion_id(seq),
        "object": "chat.completion",
        "created": created,
        "model": request.model,
        "system_fingerprint": "fp_test",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": answer.finish_reason}],
        "usage": usage(request, answer),
    }


def stream_chunks(request: ChatRequest, answer: Answer, seq: int, created: int) -> list[dict[str, Any]]:
    """Every chunk of a streamed answer in order: role, content words, tool-call pieces, finish, then usage."""

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": completion_id(seq),
            "object": "chat.completion.chunk",
            "created": created,
            "model": request.model,
            "system_fingerprint": "fp_test",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if request.include_usage:
            body["usage"] = None
        return body

    role_content = "" if answer.content is not None else None
    chunks = [chunk({"role": "assistant", "content": role_content, "refusal": None})]
    chunks += [chunk({"content": piece}) for piece in split_words(answer.content or "")]
    for index, call in enumerate(answer.tool_calls):
        function = call["function"]
        opening = {"index": index, "id": call["id"], "type": "function"}
        chunks.append(chunk({"tool_calls": [{**opening, "function": {"name": function["name"], "arguments": ""}}]}))
        chunks += [
            chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            for piece in split_words(function["arguments"])
        ]
    if answer.finish_reason is not None:
        chunks.append(chunk({}, answer.finish_reason))
    if request.include_usage:
        last = chunk({})
        last["choices"] = []
        last["usage"] = usage(request, answer)
        chunks.append(last)
    return chunks


def completion_id(seq: int) -> str:
    return f"chatcmpl-test-{seq}"


def error_body(status: int, message: str, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error envelope; the SDK reads `error.message` into its exception."""
    kinds = {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        429: "rate_limit_error",
    }
    error_type = kinds.get(status, "server_error" if status >= 500 else "invalid_request_error")
    code = "rate_limit_exceeded" if status == 429 else None
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def example_from_schema(schema: Mapping[str, Any], root: Mapping[str, Any] | None = None, refs: int = 0) -> Any:
    """A value valid against a JSON schema as pydantic emits it, always the same one.

    Objects get every property (required or not); arrays one item (or `minItems`); strings the first `enum`
    value, a value fitting `format`, or "text" (padded/cut to min/maxLength; `pattern` is ignored); integers
    `minimum`, else 1; numbers `minimum`, else 0.5 (both kept inside any maximum); booleans true; `anyOf` /
    `oneOf` their first non-null branch; `allOf` its branches merged; `$ref` resolved against `$defs`.
    """
    root = schema if root is None else root
    if refs > _MAX_REFS:
        raise SchemaExampleError(
            "the schema nests $refs too deeply (a required field that refers to its own model?); "
            "add a rule with a `json` reply for this request"
        )
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if "$ref" in schema:
        return example_from_schema(_resolve(root, str(schema["$ref"])), root, refs + 1)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            branches = [branch for branch in schema[key] if branch.get("type") != "null"]
            if not branches or (refs >= _SHALLOW_REFS and len(branches) < len(schema[key])):
                return None
            return example_from_schema(branches[0], root, refs)
    if "allOf" in schema:
        parts = [example_from_schema(branch, root, refs) for branch in schema["allOf"]]
        if all(isinstance(part, dict) for part in parts):
            return {key: value for part in parts for key, value in part.items()}
        return parts[0] if parts else None
    return _example_of_type(schema, root, refs)


def _example_of_type(schema: Mapping[str, Any], root: Mapping[str, Any], refs: int) -> Any:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else None
    if kind == "object":
        properties = schema.get("properties") or {}
        return {name: example_from_schema(sub, root, refs) for name, sub in properties.items()}
    if kind == "array":
        if "prefixItems" in schema:
            return [example_from_schema(sub, root, refs) for sub in schema["prefixItems"]]
        count = max(int(schema.get("minItems", 0)), 0 if refs >= _SHALLOW_REFS else 1)
        count = min(count, int(schema.get("maxItems", count)))
        items = schema.get("items")
        return [example_from_schema(items if isinstance(items, Mapping) else {}, root, refs) for _ in range(count)]
    if kind == "string":
        text = _FORMAT_EXAMPLES.get(str(schema.get("format")), "text")
        text = text.ljust(int(schema.get("minLength", 0)), "x")
        return text[: int(schema["maxLength"])] if "maxLength" in schema else text
    if kind == "integer":
        return _integer(schema)
    if kind == "number":
        return _number(schema)
    if kind == "boolean":
        return True
    return None


def _integer(schema: Mapping[str, Any]) -> int:
    value: int
    if "minimum" in schema:
        value = math.ceil(schema["minimum"])
    elif "exclusiveMinimum" in schema:
        value = math.floor(schema["exclusiveMinimum"]) + 1
    else:
        value = 1
    if "maximum" in schema:
        value = min(value, math.floor(schema["maximum"]))
    if "exclusiveMaximum" in schema:
        value = min(value, math.ceil(schema["exclusiveMaximum"]) - 1)
    step = schema.get("multipleOf")
    if isinstance(step, int) and step > 0:
        value = -(-value // step) * step  # the next multiple up, in integer arithmetic
    return value


def _number(schema: Mapping[str, Any]) -> float:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    if "minimum" in schema:
        value = low
    elif low is not None and high is not None:
        value = (low + high) / 2
    elif low is not None:
        value = low + 0.5
    elif high is not None:
        value = min(0.5, high if "maximum" in schema else high - 0.5)
    else:
        value = 0.5
    if "maximum" in schema:
        value = min(value, high)
    return float(value)


def _resolve(root: Mapping[str, Any], ref: str) -> Mapping[str, Any]:
    if not ref.startswith("#/"):
        raise SchemaExampleError(f"cannot follow the $ref {ref!r}: only local refs like '#/$defs/Name' are supported")
    node: Any = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            raise SchemaExampleError(f"the $ref {ref!r} points at nothing in the schema; check its $defs")
        node = node[part]
    if not isinstance(node, Mapping):
        raise SchemaExampleError(f"the $ref {ref!r} does not point at a schema object")
    return node
