"""Browser sign-in for the dashboard: an API key, exchanged for an HttpOnly, SameSite=Strict session cookie.

Keys and the auth mode are the HTTP API's (`DURABLE_AGENTS_API_KEYS`, `DURABLE_AGENTS_API_AUTH`):
only a key of this task hub signs in. The cookie never holds the key: it holds a timestamp and a
random nonce signed with the key's digest (HMAC), so it is worthless as a bearer key, expires on
its own, and dies with its key. Signing out records the cookie in the store, which refuses it from
then on. With authentication disabled there is no sign-in, and only loopback clients are served.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import UTC, datetime, timedelta

from fastapi import Request

from ..api.auth import Authenticator, is_loopback
from ..api.origins import host_port
from ..config import Settings
from ..store import signouts
from ..store.db import transaction

COOKIE_PREFIX = "durable_agents_"
#: How long a sign-in lasts before the key must be entered again.
MAX_AGE_SECONDS = 12 * 3600


class Auth:
    """Checks keys and session cookies for one task hub."""

    def __init__(self, settings: Settings) -> None:
        api = Authenticator(settings)  # the API's rules: refuses a configuration with no key for this hub
        self.enabled = not api.disabled
        self._taskhub = settings.taskhub
        self._database_url = settings.database_url
        self._digests = [key.digest for key in api.keys if key.taskhub == settings.taskhub]

    def allows_client(self, request: Request) -> bool:
        """Without authentication only this machine may look (as for the API)."""
        return self.enabled or is_loopback(request.client.host if request.client else None)

    def cookie_name(self, request: Request) -> str:
        """The cookie of this task hub on this port. Browsers keep one cookie of a name per host,
        whatever the port, so dashboards of two hubs (or two ports) would otherwise sign each other out."""
        port = host_port(request.headers.get("host", ""))
        return f"{COOKIE_PREFIX}{self._taskhub}" + (f"_{port}" if port else "")

    def issue(self, presented: str) -> str | None:
        """A session token for a valid key, else None."""
        digest = self._matching(presented)
        if digest is None:
            return None
        issued = f"{int(time.time())}.{secrets.token_hex(8)}"
        return f"{issued}.{self._sign(digest, issued)}"

    def signed_in(self, request: Request) -> bool:
        if not self.enabled:
            return True
        token = request.cookies.get(self.cookie_name(request), "")
        if not self._valid_signature(token):
            return False
        with transaction(self._database_url) as session:
            return not signouts.is_signed_out(session, self._taskhub, _token_digest(token))

    def sign_out(self, request: Request) -> None:
        """Refuse this request's cookie from now on, wherever it is presented (until it would expire)."""
        token = request.cookies.get(self.cookie_name(request), "")
        if not self._valid_signature(token):
            return
        expires = datetime.fromtimestamp(int(token.partition(".")[0]) + MAX_AGE_SECONDS, UTC) + timedelta(minutes=1)
        with transaction(self._database_url) as session:
            signouts.sign_out(session, self._taskhub, _token_digest(token), expires)

    def _valid_signature(self, token: str) -> bool:
        issued, _, signature = token.rpartition(".")
        seconds = issued.partition(".")[0]
        if not seconds.isdigit() or not 0 <= time.time() - int(seconds) <= MAX_AGE_SECONDS:
            return False
        matched = False
        for digest in self._digests:  # no early exit: the time taken says nothing about which key
            matched |= hmac.compare_digest(signature, self._sign(digest, issued))
        return matched

    def _matching(self, presented: str) -> bytes | None:
        given = hashlib.sha256(presented.encode()).digest()
        found: bytes | None = None
        for digest in self._digests:
            if hmac.compare_digest(given, digest):
                found = digest
        return found

    def _sign(self, digest: bytes, issued: str) -> str:
        message = f"durable-agents-dashboard\x1f{self._taskhub}\x1f{issued}".encode()
        return hmac.new(digest, message, hashlib.sha256).hexdigest()


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def safe_next(target: str | None) -> str:
    """A post-sign-in destination on this site only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
