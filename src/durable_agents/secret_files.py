"""`VARIABLE_FILE`: a setting read from a file, as Docker and Kubernetes secrets are mounted.

Every setting of `Settings` can come from a file instead of the environment: `DATABASE_URL_FILE`,
`REDIS_URL_FILE`, `DURABLE_AGENTS_API_KEYS_FILE` and so on (the convention of the official Docker
images, such as postgres's `POSTGRES_PASSWORD_FILE`). The file's content is the value, without its
trailing newline. A variable set both ways is refused: which one wins would be a guess.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from .errors import ConfigurationError

SUFFIX = "_FILE"


def _names(prefix: str, field_name: str, field: FieldInfo) -> list[str]:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [choice for choice in alias.choices if isinstance(choice, str)]
    if isinstance(alias, str):
        return [alias]
    return [f"{prefix}{field_name}".upper()]


class SecretFilesSource(PydanticBaseSettingsSource):
    """Settings from the files that `NAME_FILE` variables point to."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self.prefix = str(settings_cls.model_config.get("env_prefix", ""))

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        for name in _names(self.prefix, field_name, field):
            path = os.environ.get(name + SUFFIX)
            if not path:
                continue
            if os.environ.get(name):
                raise ConfigurationError(f"both {name} and {name}{SUFFIX} are set; set one of them")
            try:
                return Path(path).read_text().removesuffix("\n").removesuffix("\r"), field_name, False
            except OSError as error:
                raise ConfigurationError(
                    f"{name}{SUFFIX} names {path!r}, which cannot be read ({error.strerror}); "
                    "check the path and that this user may read it"
                ) from None
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for field_name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, field_name)
            if value is not None:
                values[key] = value
        return values
