"""JSON in, JSON out: encoding payloads (with a size limit) and decoding them by type annotation.

No pickle anywhere: pydantic models, dataclasses, datetimes and UUIDs become plain JSON, and come
back as their types where a function's annotation asks for them.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError, to_json

from .errors import SerializationError

DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024
# An escaped NUL character not itself escaped (an even number of backslashes before it).
_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def encode(value: Any, *, what: str, limit: int = DEFAULT_MAX_PAYLOAD_BYTES) -> Any:
    """Turn `value` into a JSON value (dicts, lists, str, numbers, bool, None), refusing oversize."""
    from .errors import PayloadTooLargeError

    try:
        raw = to_json(value)
    except (PydanticSerializationError, TypeError, ValueError) as error:
        raise SerializationError(
            f"{what} cannot be stored as JSON ({error}). Pass JSON types, pydantic models or "
            "dataclasses; store anything else elsewhere and pass a reference."
        ) from error
    if len(raw) > limit:
        raise PayloadTooLargeError(what, len(raw), limit)
    if _NUL.search(raw):
        raise SerializationError(
            f"{what} contains a NUL character (\\u0000), which the store cannot keep; remove it or encode the text"
        )
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except ValueError as error:
        raise SerializationError(
            f"{what} cannot be stored as JSON ({error}): NaN and infinite numbers have no JSON form; "
            "use null or a string"
        ) from error


@lru_cache(maxsize=512)
def _adapter(annotation: Any) -> TypeAdapter[Any]:
    return TypeAdapter(annotation)


def decode(value: Any, annotation: Any, *, what: str) -> Any:
    """Validate a JSON value into `annotation` (a pydantic model, dataclass, or any typing form)."""
    if annotation is Any or annotation is None:
        return value
    try:
        adapter = _adapter(annotation)
    except TypeError:  # unhashable or unsupported annotation: hand over the JSON as it is
        return value
    try:
        return adapter.validate_python(value)
    except ValidationError as error:
        raise SerializationError(f"{what} does not match its type {annotation!r}: {error}") from error
