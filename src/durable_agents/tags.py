"""Tags: small string labels on instances (and activities), for operators to find and filter them by."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: Keys are short identifiers, so they are safe in any query syntax (a JSON path on SQLite, a URL).
_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,127}$")
MAX_TAGS = 32
MAX_VALUE_LENGTH = 1024


def checked_tags(tags: Mapping[str, Any] | None, what: str = "tags") -> dict[str, str] | None:
    """`tags` as stored (None when there are none), or ValueError saying which tag is wrong and why."""
    if not tags:
        return None
    if not isinstance(tags, Mapping):
        raise ValueError(f"{what} must be a mapping of names to strings, like {{'team': 'billing'}}, not {tags!r}")
    if len(tags) > MAX_TAGS:
        raise ValueError(f"{what} has {len(tags)} tags; at most {MAX_TAGS} are allowed")
    for key, value in tags.items():
        if not isinstance(key, str) or not _KEY.match(key):
            raise ValueError(
                f"tag name {key!r} is not allowed: use 1 to 128 letters, digits and _ . : / - (not starting with one "
                "of . : / -)"
            )
        if not isinstance(value, str) or len(value) > MAX_VALUE_LENGTH:
            raise ValueError(f"tag {key!r} must be a string of at most {MAX_VALUE_LENGTH} characters, not {value!r}")
    return dict(tags)


def parse_tag(text: str) -> tuple[str, str]:
    """`name=value` (as the CLI and the API's query string take a tag) split in two, or ValueError."""
    key, sep, value = text.partition("=")
    if not sep:
        raise ValueError(f"a tag is written name=value, like team=billing; got {text!r}")
    checked = checked_tags({key: value})
    assert checked is not None
    return key, value
