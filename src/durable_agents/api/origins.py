"""Where a request may come from: the Host it names, and the Origin of a page that sent a change.

Without API keys a request carries no credential, so a page on another site (or another port of
this machine) could send changes, and a DNS-rebound name could read answers. Both the API and the
dashboard ask this policy: the Host must be one this server answers to (when authentication is
disabled, loopback names only, unless DURABLE_AGENTS_ALLOWED_HOSTS says more), and a change sent
by a browser page must come from this server's own origin.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

from ..config import Settings
from .auth import auth_disabled

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
#: Methods that change something; a page of another site must not send them.
CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def host_name(netloc: str) -> str:
    """The host of `host[:port]` (brackets of an IPv6 address removed), lower case."""
    parsed = urlsplit(f"//{netloc}")
    try:
        return (parsed.hostname or "").lower()
    except ValueError:
        return ""


def host_port(netloc: str) -> int | None:
    """The port of `host[:port]`, or None when it names none (or a malformed one)."""
    try:
        return urlsplit(f"//{netloc}").port
    except ValueError:
        return None


class OriginPolicy:
    """Checks the Host of every request and the Origin of every change, for one task hub's server."""

    def __init__(self, settings: Settings) -> None:
        configured = {host_name(name.strip()) for name in settings.allowed_hosts.split(",") if name.strip()}
        if configured:
            self.hosts: frozenset[str] | None = frozenset(configured | LOOPBACK_NAMES)
        elif auth_disabled(settings):
            self.hosts = LOOPBACK_NAMES  # no keys: what a DNS-rebound name reaches must be refused
        else:
            self.hosts = None  # every request needs a key of the task hub, whatever name it used

    def refusal(self, request: HTTPConnection, method: str) -> str | None:
        """Why `request` is refused (one sentence saying what to do), or None if it may go on."""
        host = request.headers.get("host", "")
        if self.hosts is not None and host_name(host) not in self.hosts:
            allowed = ", ".join(sorted(self.hosts))
            return (
                f"this server does not answer to the host name {host_name(host) or host!r} (it answers to "
                f"{allowed}); add the name to DURABLE_AGENTS_ALLOWED_HOSTS if it is really this server's"
            )
        if method in CHANGING_METHODS and not same_origin(request):
            return "this change was sent by a page of another site, and was refused"
        return None


def same_origin(request: HTTPConnection) -> bool:
    """False for a request sent by another site's page (a cross-site form post or fetch).

    A request with neither Origin nor Referer was not sent by a page (curl, a script): it carries no
    credentials the browser added by itself, so there is nothing to protect."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin:
        return True
    if origin == "null":  # a sandboxed frame or a local file: never this server's own page
        return False
    return urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower()
