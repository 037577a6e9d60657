"""Browser sign-in for the dashboard: an API key, exchanged for an HttpOnly, SameSite=Strict session cookie.

Keys and the auth mode are the HTTP API's (`DURABLE_AGENTS_API_KEYS`, `DURABLE_AGENTS_API_AUTH`):
only a key of this task hub signs in. The cookie never holds the key: it holds a timestamp signed
with the key's digest (HMAC), so it is worthless as a bearer key, expires on its own, and dies
with its key. With authentication disabled there is no sign-in, and only loopback clients are served.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from fastapi import Request

from ..api.auth import Authenticator, is_loopback
from ..config import Settings

COOKIE = "durable_agents_session"
#: How long a sign-in lasts before the key must be entered again.
MAX_AGE_SECONDS = 12 * 3600


class Auth:
    """Checks keys and session cookies for one task hub."""

    def __init__(self, settings: Settings) -> None:
        api = Authenticator(settings)  # the API's rules: refuses a configuration with no key for this hub
        self.enabled = not api.disabled
        self._taskhub = settings.taskhub
        self._digests = [key.digest for key in api.keys if key.taskhub == settings.taskhub]

    def allows_client(self, request: Request) -> bool:
        """Without authentication only this machine may look (as for the API)."""
        return self.enabled or is_loopback(request.client.host if request.client else None)

    def key_is_valid(self, presented: str) -> bool:
        return self._matching(presented) is not None

    def issue(self, presented: str) -> str | None:
        """A session token for a valid key, else None."""
        digest = self._matching(presented)
        if digest is None:
            return None
        issued = str(int(time.time()))
        return f"{issued}.{self._sign(digest, issued)}"

    def signed_in(self, request: Request) -> bool:
        if not self.enabled:
            return True
        issued, _, signature = request.cookies.get(COOKIE, "").partition(".")
        if not issued.isdigit() or not 0 <= time.time() - int(issued) <= MAX_AGE_SECONDS:
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


def safe_next(target: str | None) -> str:
    """A post-sign-in destination on this site only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
