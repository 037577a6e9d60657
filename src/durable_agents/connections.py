"""Redis connections with the TLS settings applied: redis-py clients, and Celery's broker and backend SSL options.

A `rediss://` URL turns TLS on; the DURABLE_AGENTS_REDIS_SSL_* settings say which CA to trust, which
client certificate to present and how strictly to check. Every Redis connection the package makes
goes through here, so one set of variables secures the broker, the result backend and the streams.
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio as aioredis

from .config import Settings
from .errors import ConfigurationError
from .failures import one_line

#: How long a check waits for Redis before calling it unreachable.
CHECK_TIMEOUT_SECONDS = 3.0

_CERT_REQS = {"required": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL, "none": ssl.CERT_NONE}


def uses_tls(url: str) -> bool:
    return url.startswith("rediss://")


def redis_ssl_options(settings: Settings, url: str) -> dict[str, Any]:
    """redis-py keyword arguments for a connection to `url`: the TLS settings if it is `rediss://`, else none."""
    if not uses_tls(url):
        return {}
    options: dict[str, Any] = {"ssl_cert_reqs": settings.redis_ssl_cert_reqs}
    files = {
        "ssl_ca_certs": settings.redis_ssl_ca_certs,
        "ssl_certfile": settings.redis_ssl_certfile,
        "ssl_keyfile": settings.redis_ssl_keyfile,
    }
    options.update({key: path for key, path in files.items() if path})
    return options


def celery_ssl_options(settings: Settings, url: str) -> dict[str, Any] | None:
    """Celery's `broker_use_ssl` / `redis_backend_use_ssl` for `url` (None unless it is `rediss://`)."""
    options = redis_ssl_options(settings, url)
    if not options:
        return None
    return {**options, "ssl_cert_reqs": _CERT_REQS[settings.redis_ssl_cert_reqs]}


def redis_client(settings: Settings, url: str | None = None, **options: Any) -> redis.Redis:
    """A redis-py client for `url` (default: REDIS_URL) with the TLS settings applied."""
    target = url or settings.redis_url
    return redis.Redis.from_url(target, **redis_ssl_options(settings, target), **options)


def async_redis_client(settings: Settings, url: str | None = None, **options: Any) -> aioredis.Redis:
    """The asyncio flavour of `redis_client`."""
    target = url or settings.redis_url
    return aioredis.Redis.from_url(target, **redis_ssl_options(settings, target), **options)


def masked(url: str) -> str:
    """`url` with its password (if any) shown as ***, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    credentials, _, place = parts.netloc.rpartition("@")
    user = credentials.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{place}"))


def require_redis(settings: Settings) -> None:
    """Raise ConfigurationError, in one sentence naming the URL (password masked) and its variable, unless
    Redis (and a separate Redis broker) answers. Embedded mode keeps both in this process: nothing to check.

    Commands that would write something and then publish check first, so that nothing is half done."""
    if settings.embedded:
        return
    targets = [(settings.redis_url, "REDIS_URL")]
    broker = settings.effective_broker_url
    if broker != settings.redis_url and broker.startswith(("redis://", "rediss://", "unix://")):
        targets.append((broker, "BROKER_URL"))
    for url, variable in targets:
        try:
            client = redis_client(
                settings, url, socket_connect_timeout=CHECK_TIMEOUT_SECONDS, socket_timeout=CHECK_TIMEOUT_SECONDS
            )
            try:
                client.ping()
            finally:
                client.close()
        except redis.RedisError as error:
            raise ConfigurationError(
                f"cannot reach Redis at {masked(url)} ({one_line(error)}) Check {variable} and that Redis is running."
            ) from error
