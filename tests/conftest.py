"""Shared fixtures: real Postgres, real Redis, and real worker processes started once per session.

Locally a missing service skips the tests that need it; under CI=true it fails them.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
#: The tree the package under test is imported from: subprocesses (workers, the CLI) must run the same code.
PACKAGE_ROOT = str(Path(importlib.util.find_spec("durable_agents").origin or "").parent.parent)  # type: ignore[union-attr]


def _own_services(database_url: str, redis_url: str) -> tuple[str, str]:
    """The database and Redis db of this test process: each pytest-xdist process resets and flushes its own.

    The first process (or a run without xdist) uses the URLs as given; process N appends `_gwN` to the
    database's name and counts the Redis db number down by N, so two processes never share state.
    """
    index = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    if index == 0:
        return database_url, redis_url
    from urllib.parse import urlsplit

    from sqlalchemy.engine import make_url

    database = make_url(database_url)
    database = database.set(database=f"{database.database}_gw{index}")
    redis_parts = urlsplit(redis_url)
    redis_db = (int(redis_parts.path.strip("/") or 0) - index) % 16
    return (
        database.render_as_string(hide_password=False),
        redis_parts._replace(path=f"/{redis_db}").geturl(),
    )


DATABASE_URL, REDIS_URL = _own_services(
    os.environ.get("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"),
)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
ARTIFACTS = TESTS_DIR.parent / "artifacts"
#: Variables that select services or a real model: a run without them is embedded and offline.
CONFIGURATION_VARIABLES = (
    "DATABASE_URL",
    "REDIS_URL",
    "BROKER_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "AZURE_OPENAI_ENDPOINT",
)


def unconfigured_environment() -> dict[str, str]:
    """This process's environment without any of CONFIGURATION_VARIABLES."""
    return {key: value for key, value in os.environ.items() if key not in CONFIGURATION_VARIABLES}


def _unavailable(what: str, error: BaseException) -> None:
    message = f"{what} is not reachable ({error}); start it or set the URL in the environment"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@dataclass(frozen=True)
class Services:
    database_url: str
    redis_url: str


def reset_database(url: str) -> None:
    """Drop every durable-agents table and migrate from scratch."""
    from sqlalchemy import text

    from durable_agents.models import Base
    from durable_agents.store.db import get_engine
    from durable_agents.store.schema import VERSION_TABLE, upgrade

    engine = get_engine(url)
    with engine.begin() as conn:
        Base.metadata.drop_all(conn)
        conn.execute(text(f"DROP TABLE IF EXISTS {VERSION_TABLE}"))
    upgrade(url)


def create_database_if_missing(url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database})
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def services() -> Services:
    import redis
    from sqlalchemy import text

    from durable_agents.config import Settings
    from durable_agents.store.db import get_engine

    url = Settings(database_url=DATABASE_URL).database_url
    try:
        create_database_if_missing(url)
        with get_engine(url).connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as error:
        _unavailable(f"PostgreSQL at {DATABASE_URL}", error)
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except Exception as error:
        _unavailable(f"Redis at {REDIS_URL}", error)
    reset_database(url)
    redis.Redis.from_url(REDIS_URL).flushdb()
    return Services(url, REDIS_URL)


@pytest.fixture(scope="session")
def effects_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("effects")


class WorkerProcess:
    """A real `durable-agents worker` process in its own process group."""

    def __init__(
        self,
        services: Services,
        effects_dir: Path,
        taskhub: str,
        *,
        concurrency: int = 8,
        lease_seconds: float = 2.0,
        extra_env: dict[str, str] | None = None,
        module: str = "workflows:app",
        command: list[str] | None = None,
    ) -> None:
        self.taskhub = taskhub
        self.module = module
        self.name = f"{taskhub}-{uuid.uuid4().hex[:6]}"
        ARTIFACTS.mkdir(exist_ok=True)
        self.log_path = ARTIFACTS / f"worker-{self.name}.log"
        self.env = {
            **os.environ,
            "DATABASE_URL": services.database_url,
            "REDIS_URL": services.redis_url,
            "TASKHUB": taskhub,
            "DURABLE_AGENTS_LEASE_SECONDS": str(lease_seconds),
            "DURABLE_AGENTS_SWEEP_INTERVAL": "0.2",
            "DURABLE_AGENTS_REDISPATCH_AFTER": "2",
            "DA_TEST_EFFECTS_DIR": str(effects_dir),
            **(extra_env or {}),
        }
        self.env["PYTHONPATH"] = python_path((extra_env or {}).get("PYTHONPATH"), str(TESTS_DIR))
        self.concurrency = concurrency
        self.command = command
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        command = self.command or [
            sys.executable, "-m", "durable_agents", "worker", self.module,
            "--pool", "threads", "--concurrency", str(self.concurrency), "--loglevel", "INFO",
            "--hostname", f"{self.name}@%h", "--events",  # Flower's test reads the shared worker's events
        ]  # fmt: skip
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            command, env=self.env, cwd=TESTS_DIR, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 60.0) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode}:\n{self.log_path.read_text()}")
            if b" ready." in self.log_path.read_bytes():
                return
            time.sleep(0.05)
        raise RuntimeError(f"worker not ready after {timeout}s:\n{self.log_path.read_text()}")

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and any children): a crash, not a shutdown."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def pause(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.resume()
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


def python_path(*folders: str | None) -> str:
    """A PYTHONPATH of `folders`, then the tree the package under test comes from."""
    return os.pathsep.join(filter(None, [*folders, PACKAGE_ROOT]))


def new_taskhub(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def worker(services: Services, effects_dir: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess(services, effects_dir, new_taskhub("t")).start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def cold_replay_worker(services: Services, effects_dir: Path) -> Iterator[WorkerProcess]:
    """A worker that keeps no live executors: every step replays the whole stored history."""
    process = WorkerProcess(
        services, effects_dir, new_taskhub("cold"), extra_env={"DURABLE_AGENTS_REPLAY_CACHE_SIZE": "0"}
    ).start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def sqlite_services(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Services:
    """A SQLite file as the store (migrated like Postgres), with the same Redis as the broker."""
    from durable_agents.store.schema import upgrade

    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'durable_agents.db'}"
    upgrade(url)
    return Services(url, services.redis_url)


@pytest.fixture(scope="session")
def sqlite_worker(sqlite_services: Services, effects_dir: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess(sqlite_services, effects_dir, new_taskhub("sqlite")).start()
    yield process
    process.stop()


def make_client(services: Services, taskhub: str):  # type: ignore[no-untyped-def]
    from durable_agents import DurableClient

    import workflows

    return DurableClient(
        workflows.app, taskhub=taskhub, database_url=services.database_url, redis_url=services.redis_url
    )


@pytest.fixture(scope="session")
def client(services: Services, worker: WorkerProcess):  # type: ignore[no-untyped-def]
    return make_client(services, worker.taskhub)


@pytest.fixture
def start_worker(services: Services, effects_dir: Path) -> Iterator[object]:
    """Start extra workers (on their own task hub) inside one test; all are stopped afterwards."""
    started: list[WorkerProcess] = []

    def start(taskhub: str, **options: object) -> WorkerProcess:
        process = WorkerProcess(services, effects_dir, taskhub, **options).start()  # type: ignore[arg-type]
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def wait_until(condition, timeout: float = 30.0, message: str = "condition"):  # type: ignore[no-untyped-def]
    """Poll an observable condition with a deadline (a test's synchronisation, not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `python -m durable_agents ARGS` from the tests folder with `env` over the current environment."""
    return subprocess.run(
        [sys.executable, "-m", "durable_agents", *args],
        env={**os.environ, "PYTHONPATH": python_path(str(TESTS_DIR)), "COLUMNS": "200", **env},
        cwd=TESTS_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )


# -- agents: the bundled model server and a worker hosting tests/agents_app.py -------------------


#: The session's model server once a test has asked for it (see `_model_server_left_clean`).
_MODEL_SERVERS: list[object] = []


@pytest.fixture(scope="session")
def model_server() -> Iterator[object]:
    from durable_agents.testing import TestModelServer

    with TestModelServer() as server:
        _MODEL_SERVERS.append(server)
        yield server
        _MODEL_SERVERS.remove(server)


@pytest.fixture(autouse=True)
def _model_server_left_clean() -> Iterator[None]:
    """The rules and faults a test gives the shared model server end with that test, so the next test, in
    whatever order the files run (pytest-xdist deals them out), meets the server as it started."""
    yield
    for server in _MODEL_SERVERS:
        server.control.reset()  # type: ignore[attr-defined]


def start_agents_worker(
    services: Services, effects_dir: Path, model_server: object, taskhub: str, **env: str
) -> WorkerProcess:
    """A worker process for tests/agents_app.py talking to `model_server` (not yet started)."""
    return WorkerProcess(
        services,
        effects_dir,
        taskhub,
        module="agents_app:app",
        lease_seconds=1.0,
        extra_env={"MODEL_SERVER_URL": model_server.url, **env},  # type: ignore[attr-defined]
    )


@pytest.fixture(scope="session")
def mcp_http_url(effects_dir: Path) -> Iterator[str]:
    """The URL of tests/mcp_tools_server.py over streamable HTTP, started (not yet waited for) once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, str(TESTS_DIR / "mcp_tools_server.py"), "http", str(port)],
        env={"PATH": os.environ.get("PATH", ""), "DA_TEST_EFFECTS_DIR": str(effects_dir)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield f"http://127.0.0.1:{port}/mcp"
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture(scope="session")
def agents_worker(
    services: Services, effects_dir: Path, model_server: object, mcp_http_url: str
) -> Iterator[WorkerProcess]:
    # The MCP server starts while the worker does; the agent that calls it connects on first use.
    process = start_agents_worker(
        services, effects_dir, model_server, new_taskhub("agents"), DA_TEST_MCP_HTTP_URL=mcp_http_url
    ).start()
    yield process
    process.stop()


def client_for(services: Services, taskhub: str):  # type: ignore[no-untyped-def]
    """A client of `taskhub` built from tests/agents_app.py (so it knows the agents' names)."""
    import agents_app
    from durable_agents import DurableClient

    return DurableClient(
        agents_app.app, taskhub=taskhub, database_url=services.database_url, redis_url=services.redis_url
    )


@pytest.fixture
def fresh_model(model_server: object) -> object:
    """The model server with no rules, faults or log left over from an earlier test."""
    model_server.control.reset()  # type: ignore[attr-defined]
    return model_server


@pytest.fixture(scope="session")
def agents_client(services: Services, agents_worker: WorkerProcess):  # type: ignore[no-untyped-def]
    """A client of the agents worker's task hub."""
    return client_for(services, agents_worker.taskhub)


@pytest.fixture(scope="session")
def agents(agents_client):  # type: ignore[no-untyped-def]
    from durable_agents import DurableAgentClient

    return DurableAgentClient(agents_client)
