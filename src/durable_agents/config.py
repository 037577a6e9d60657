"""Settings from the environment (DATABASE_URL, REDIS_URL, BROKER_URL, TASKHUB, DURABLE_AGENTS_*).

With neither DATABASE_URL nor REDIS_URL set, everything runs embedded in one process: a SQLite file
in the working directory is the store, the broker is in memory and the worker is a thread.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .secret_files import SecretFilesSource
from .serialization import DEFAULT_MAX_PAYLOAD_BYTES
from .streaming.local_stream import LOCAL_URL

#: The queues of a task hub, each served by workers that scale on their own.
ROLES = ("orchestrator", "activities", "agents")

#: The SQLite file used when DATABASE_URL is not set.
EMBEDDED_DATABASE_FILE = "durable_agents.db"

_TASKHUB = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


_DATABASE_FORMS = (
    "use postgresql://USER:PASSWORD@HOST:5432/DATABASE, or sqlite:///path/to/file.db (unset: a SQLite file here)"
)


def _check_database_url(value: str) -> None:
    """ValueError naming DATABASE_URL and the forms it takes, unless `value` is a PostgreSQL or SQLite URL."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    # The field's name leads the message (pydantic's location): it is not repeated here.
    shown = repr(value) if "@" not in value else "the value (not shown: it may hold a password)"
    try:
        backend = make_url(value).get_backend_name()
    except (ArgumentError, ValueError):
        raise ValueError(f"{shown} is not a database URL; {_DATABASE_FORMS}") from None
    if backend not in ("postgresql", "sqlite"):
        raise ValueError(f"{backend!r} is not a database durable-agents can use; {_DATABASE_FORMS}")


class Settings(BaseSettings):
    """Connection and tuning settings; every field can be set by an environment variable."""

    model_config = SettingsConfigDict(env_prefix="DURABLE_AGENTS_", extra="ignore", populate_by_name=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Arguments, then the environment, then NAME_FILE secrets (`secret_files.py`).
        return init_settings, env_settings, SecretFilesSource(settings_cls), dotenv_settings, file_secret_settings

    #: PostgreSQL for production; unset, a SQLite file `durable_agents.db` in the working directory.
    database_url: str = Field(default="", validation_alias=AliasChoices("DATABASE_URL", "DURABLE_AGENTS_DATABASE_URL"))
    #: Broker and stream bus; unset, in-process when DATABASE_URL is unset too, else the local Redis.
    redis_url: str = Field(default="", validation_alias=AliasChoices("REDIS_URL", "DURABLE_AGENTS_REDIS_URL"))
    broker_url: str | None = Field(
        default=None, validation_alias=AliasChoices("BROKER_URL", "DURABLE_AGENTS_BROKER_URL")
    )
    taskhub: str = Field(default="default", validation_alias=AliasChoices("TASKHUB", "DURABLE_AGENTS_TASKHUB"))
    #: How long a claimed activity is owned before another worker may take it over (renewed while it runs).
    #: The last line of defence: a process that dies is found by its heartbeat long before its leases expire.
    lease_seconds: float = Field(default=60.0, gt=0)
    #: Seconds between the heartbeats of each process that holds leases.
    lease_heartbeat_interval: float = Field(default=1.0, gt=0)
    #: A process whose heartbeat is older than this is dead, and its leases are freed; 0: five intervals.
    lease_holder_timeout: float = Field(default=0.0, ge=0)
    #: On SIGTERM, how long a worker lets running activities finish before it hands their leases back.
    shutdown_grace_seconds: float = Field(default=20.0, ge=0)
    #: How often the sweeper fires due timers and looks for lost work.
    sweep_interval: float = Field(default=1.0, gt=0)
    #: Work whose message has not been acted on for this long is dispatched again.
    #: Short, because a send is recorded: each piece of work is sent again at most once per interval.
    redispatch_after: float = Field(default=10.0, gt=0)
    max_payload_bytes: int = Field(default=DEFAULT_MAX_PAYLOAD_BYTES, gt=0)
    #: Live executors kept per worker process so a step replays only its new events; 0 replays
    #: every step from the stored history (slower, but exercises the cold path).
    replay_cache_size: int = Field(default=512, ge=0)
    queue_prefix: str = "durable_agents"
    #: How long a completed response stream stays readable in Redis.
    stream_ttl_seconds: int = Field(default=3600, gt=0)
    #: A worker serves Prometheus metrics at http://HOST:PORT/metrics (`worker --metrics-port`); None: it does not.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        if not self.database_url and not self.redis_url:
            self.redis_url = LOCAL_URL
        if not self.database_url:
            self.database_url = f"sqlite:///{Path.cwd() / EMBEDDED_DATABASE_FILE}"
        if not self.redis_url:
            self.redis_url = "redis://127.0.0.1:6379/0"
        return self

    @property
    def embedded(self) -> bool:
        """The single-process development mode: in-memory broker and streams, a worker thread."""
        return self.redis_url == LOCAL_URL

    @field_validator("taskhub")
    @classmethod
    def _valid_taskhub(cls, value: str) -> str:
        if not _TASKHUB.match(value):
            raise ValueError(
                f"task hub name {value!r} is invalid: use 1-64 letters, digits, '_', '.' or '-', "
                "starting with a letter or digit"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _psycopg_driver(cls, value: str) -> str:
        # Users paste URLs from their provider; SQLAlchemy needs the driver named to use psycopg 3.
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                value = "postgresql+psycopg://" + value[len(prefix) :]
        if value:
            _check_database_url(value)
        return value

    @property
    def effective_broker_url(self) -> str:
        if self.embedded:
            return "memory://"
        return self.broker_url or self.redis_url

    def queue(self, role: str) -> str:
        """The Celery queue of this task hub for `role` (orchestrator, activities, agents)."""
        return f"{self.queue_prefix}.{self.taskhub}.{role}"

    #: HTTP API keys, each bound to a task hub: a comma list of `taskhub:key` (README, "HTTP API").
    api_keys: SecretStr = SecretStr("")
    #: `disabled` turns HTTP API authentication off; allowed only when serving on loopback.
    api_auth: str = "required"
    #: Host names the API and dashboard answer to besides loopback's, a comma list; unset, any name when
    #: keys are required and loopback names only when authentication is disabled (README, "HTTP API").
    allowed_hosts: str = ""

    #: Seconds between a worker's heartbeats in the store (README, "Workers and diagnosis").
    heartbeat_interval: float = Field(default=10.0, gt=0)
    #: A worker whose last heartbeat is older than this is no longer live; 0: three heartbeat intervals.
    worker_timeout: float = Field(default=0.0, ge=0)

    #: TLS to Redis for `rediss://` URLs (README, "Secure connections"): the CA bundle that signs
    #: the server's certificate, this client's certificate and key, and how strictly to check.
    redis_ssl_ca_certs: str | None = None
    redis_ssl_certfile: str | None = None
    redis_ssl_keyfile: str | None = None
    redis_ssl_cert_reqs: Literal["required", "optional", "none"] = "required"

    @model_validator(mode="after")
    def _holder_timeout_covers_heartbeats(self) -> Settings:
        if not self.lease_holder_timeout:
            self.lease_holder_timeout = 5 * self.lease_heartbeat_interval
        if self.lease_holder_timeout <= 2 * self.lease_heartbeat_interval:
            raise ValueError(
                f"lease_holder_timeout ({self.lease_holder_timeout:g}s) must be more than twice "
                f"lease_heartbeat_interval ({self.lease_heartbeat_interval:g}s), or live processes would look dead"
            )
        return self

    @model_validator(mode="after")
    def _worker_timeout_covers_heartbeats(self) -> Settings:
        if not self.worker_timeout:
            self.worker_timeout = 3 * self.heartbeat_interval
        if self.worker_timeout <= self.heartbeat_interval:
            raise ValueError(
                f"worker_timeout ({self.worker_timeout:g}s) must be longer than heartbeat_interval "
                f"({self.heartbeat_interval:g}s), e.g. three times it, or live workers would look dead"
            )
        return self
