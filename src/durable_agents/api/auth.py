"""Bearer API keys bound to task hubs, compared in constant time; no keys only when serving loopback."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..config import Settings
from ..errors import ConfigurationError
from .problems import ApiError

#: Shorter keys can be guessed; `python -c "import secrets; print(secrets.token_urlsafe(32))"` makes a good one.
MIN_KEY_LENGTH = 16
_CHALLENGE = {"WWW-Authenticate": "Bearer"}

bearer = HTTPBearer(
    auto_error=False,
    description="An API key of this API's task hub (DURABLE_AGENTS_API_KEYS holds `taskhub:key` pairs).",
)


@dataclass(frozen=True)
class ApiKey:
    taskhub: str
    digest: bytes


def _digest(key: str) -> bytes:
    # Equal-length digests keep compare_digest's time independent of the key's length.
    return hashlib.sha256(key.encode()).digest()


def parse_api_keys(raw: str) -> list[ApiKey]:
    """`hub:key,hub2:key2` into keys; refuses malformed entries and short keys with a clear message."""
    keys: list[ApiKey] = []
    for entry in filter(None, (part.strip() for part in raw.split(","))):
        taskhub, separator, key = entry.partition(":")
        if not separator or not taskhub or not key:
            raise ConfigurationError(
                "DURABLE_AGENTS_API_KEYS is a comma list of `taskhub:key` pairs; an entry has no task hub or no key"
            )
        try:
            Settings(taskhub=taskhub)  # the same task hub name rules as everywhere else
        except ValueError:
            raise ConfigurationError(
                f"DURABLE_AGENTS_API_KEYS names task hub {taskhub!r}, which is not a valid task hub name"
            ) from None
        if len(key) < MIN_KEY_LENGTH:
            raise ConfigurationError(
                f"an API key of task hub {taskhub!r} is {len(key)} characters; use at least {MIN_KEY_LENGTH} "
                '(python -c "import secrets; print(secrets.token_urlsafe(32))")'
            )
        if any(known.digest == _digest(key) for known in keys):
            raise ConfigurationError("DURABLE_AGENTS_API_KEYS holds the same key twice; give every entry its own key")
        keys.append(ApiKey(taskhub, _digest(key)))
    return keys


def auth_disabled(settings: Settings) -> bool:
    mode = settings.api_auth.strip().lower()
    if mode not in {"required", "disabled"}:
        raise ConfigurationError(f"DURABLE_AGENTS_API_AUTH is {settings.api_auth!r}; use 'required' or 'disabled'")
    return mode == "disabled"


def is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(settings: Settings, host: str) -> None:
    """Refuse to serve without authentication on anything but loopback."""
    if auth_disabled(settings) and not is_loopback(host):
        raise ConfigurationError(
            f"API authentication is disabled (DURABLE_AGENTS_API_AUTH=disabled) but the API would listen on "
            f"{host!r}, which is not loopback. Serve on 127.0.0.1, or configure DURABLE_AGENTS_API_KEYS "
            "and remove DURABLE_AGENTS_API_AUTH."
        )


class Authenticator:
    """The dependency guarding every /api route: a key of this API's task hub, or 401/403."""

    def __init__(self, settings: Settings) -> None:
        self.taskhub = settings.taskhub
        self.disabled = auth_disabled(settings)
        self.keys = parse_api_keys(settings.api_keys.get_secret_value())
        if not self.disabled and not any(key.taskhub == self.taskhub for key in self.keys):
            raise ConfigurationError(
                f"the HTTP API needs an API key for task hub {self.taskhub!r}: set DURABLE_AGENTS_API_KEYS="
                f"{self.taskhub}:<key> (a comma list of taskhub:key), or DURABLE_AGENTS_API_AUTH=disabled to "
                "serve without authentication on loopback only"
            )

    def identifies(self, request: Request) -> bool:
        """True if `request` would pass this check: what may be shown to a caller who has not been asked for a key."""
        try:
            self(request, _credentials(request))
        except ApiError:
            return False
        return True

    def __call__(
        self, request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> None:
        if self.disabled:
            client = request.client.host if request.client else None
            if not is_loopback(client):
                raise ApiError(
                    403,
                    "forbidden",
                    "API authentication is disabled, so this API answers loopback clients only; "
                    "configure DURABLE_AGENTS_API_KEYS to serve others",
                )
            return
        if credentials is None:
            raise ApiError(
                401,
                "unauthorized",
                "this API needs an API key: send the header 'Authorization: Bearer <key>'",
                headers=_CHALLENGE,
            )
        given = _digest(credentials.credentials)
        owner: str | None = None
        for key in self.keys:  # every key is compared, so the time taken says nothing about which matched
            if hmac.compare_digest(given, key.digest):
                owner = key.taskhub
        if owner is None:
            raise ApiError(401, "unauthorized", "the API key is not valid", headers=_CHALLENGE)
        if owner != self.taskhub:
            raise ApiError(
                403,
                "wrong_taskhub",
                f"this API key belongs to task hub {owner!r}, but this API serves task hub {self.taskhub!r}; "
                f"use a key of task hub {self.taskhub!r}",
            )


def _credentials(request: Request) -> HTTPAuthorizationCredentials | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return HTTPAuthorizationCredentials(scheme=scheme, credentials=token.strip())
