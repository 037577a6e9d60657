"""TLS to Redis: a real TLS-only redis-server that demands client certificates carries the broker, the
result backend (chords), response streams and model slots, configured only by environment variables."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy.engine import make_url

from durable_agents import ConfigurationError, DurableAgentClient, DurableApp, DurableClient, OpenAIChatClient, Settings
from durable_agents.agents.callbacks import AgentCallbackContext
from durable_agents.api import create_app
from durable_agents.connections import redis_client, redis_ssl_options

from conftest import ARTIFACTS, IN_CI, Services, WorkerProcess, new_taskhub, wait_until


@dataclass(frozen=True)
class TlsRedis:
    url: str
    #: The DURABLE_AGENTS_REDIS_SSL_* variables of a client that may connect.
    env: dict[str, str]
    certs: Path


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(folder: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
            "-days", "2", "-subj", "/CN=durable-agents test CA", cwd=folder)  # fmt: skip
    (folder / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, extension in (("server", ["-extfile", "server.ext"]), ("client", [])):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={name}", cwd=folder)  # fmt: skip
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.crt", "-days", "2", *extension, cwd=folder)  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRedis]:
    if shutil.which("redis-server") is None or shutil.which("openssl") is None:
        message = "redis-server and openssl are needed for the TLS tests"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    certs = tmp_path_factory.mktemp("tls")
    make_certificates(certs)
    port = free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log = (ARTIFACTS / "redis-tls.log").open("ab")
    server = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", "server.crt", "--tls-key-file", "server.key", "--tls-ca-cert-file", "ca.crt",
         "--tls-auth-clients", "yes", "--save", "", "--appendonly", "no"],
        cwd=certs, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    env = {
        "DURABLE_AGENTS_REDIS_SSL_CA_CERTS": str(certs / "ca.crt"),
        "DURABLE_AGENTS_REDIS_SSL_CERTFILE": str(certs / "client.crt"),
        "DURABLE_AGENTS_REDIS_SSL_KEYFILE": str(certs / "client.key"),
    }
    tls = TlsRedis(f"rediss://127.0.0.1:{port}/0", env, certs)
    try:
        settings = tls_settings(tls, "postgresql://unused@127.0.0.1/unused")

        def pings() -> bool:
            try:
                return bool(redis_client(settings, socket_timeout=2).ping())
            except redis.ConnectionError:
                return False

        wait_until(lambda: server.poll() is not None or pings(), timeout=30, message="the TLS redis-server")
        assert server.poll() is None, "redis-server exited: is it built with TLS? see artifacts/redis-tls.log"
        yield tls
    finally:
        server.terminate()
        server.wait(timeout=10)


def tls_settings(tls: TlsRedis, database_url: str, **overrides: str) -> Settings:
    """Settings read from the environment, as a deployment would have them."""
    variables = {**tls.env, "DATABASE_URL": database_url, "REDIS_URL": tls.url, **overrides}
    saved = {key: os.environ.get(key) for key in variables}
    os.environ.update(variables)
    try:
        return Settings()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_tls_settings_reach_celery_and_redis_py_and_are_enforced(services: Services, tls_redis: TlsRedis) -> None:
    settings = tls_settings(tls_redis, services.database_url)
    app = DurableApp(settings=settings, taskhub=new_taskhub("tls"))
    ca, cert, key = (tls_redis.env[f"DURABLE_AGENTS_REDIS_SSL_{n}"] for n in ("CA_CERTS", "CERTFILE", "KEYFILE"))
    for celery_option in (app.conf.broker_use_ssl, app.conf.redis_backend_use_ssl):
        assert celery_option["ssl_ca_certs"] == ca and celery_option["ssl_certfile"] == cert
        assert celery_option["ssl_keyfile"] == key and celery_option["ssl_cert_reqs"] == 2  # ssl.CERT_REQUIRED
    with app.connection_for_write() as connection:  # the broker connection Celery really makes
        connection.ensure_connection(max_retries=1)
    pool = redis_client(settings).connection_pool
    assert pool.connection_kwargs["ssl_ca_certs"] == ca and pool.connection_kwargs["ssl_certfile"] == cert

    # A plain redis:// URL gets no SSL options at all.
    assert redis_ssl_options(settings, "redis://127.0.0.1:6379/0") == {}
    # Without a client certificate the server hangs up; without the CA the server is not trusted.
    no_cert = settings.model_copy(update={"redis_ssl_certfile": None, "redis_ssl_keyfile": None})
    with pytest.raises(redis.ConnectionError):
        redis_client(no_cert, socket_timeout=5).ping()
    untrusted = settings.model_copy(update={"redis_ssl_ca_certs": None})
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        redis_client(untrusted, socket_timeout=5).ping()


def test_a_worker_and_a_client_run_orchestrations_over_tls(
    services: Services, effects_dir: Path, tls_redis: TlsRedis
) -> None:
    hub = new_taskhub("tls")
    tls_services = Services(services.database_url, tls_redis.url)
    worker = WorkerProcess(tls_services, effects_dir, hub, extra_env=tls_redis.env).start()
    try:
        settings = tls_settings(tls_redis, services.database_url, TASKHUB=hub)
        import workflows

        client = DurableClient(workflows.app, settings=settings)
        chain = client.schedule_new_orchestration("chain", input=1)
        fan_out = client.schedule_new_orchestration("fan_out", input=8)  # a chord: the result backend too
        assert client.wait_for_orchestration_completion(chain, timeout=60).output == 11
        assert client.wait_for_orchestration_completion(fan_out, timeout=60).output == sum(i * i for i in range(8))
    finally:
        worker.stop()
    log = worker.log_path.read_text()
    assert "results:     rediss://" in log and "Connected to rediss://" in log  # broker and backend over TLS
    assert "Traceback" not in log  # nothing (a chord's backend call, a stream) failed to connect


def test_response_streams_and_model_slots_use_tls(services: Services, tls_redis: TlsRedis) -> None:
    settings = tls_settings(tls_redis, services.database_url, DURABLE_AGENTS_API_AUTH="disabled")
    # The agent is never called: the test writes its reply's stream the way a turn does.
    echo = OpenAIChatClient("test", api_key="test", base_url="http://127.0.0.1:9/v1").as_agent(
        name="Echo", instructions="Echo."
    )
    app = DurableApp(settings=settings, taskhub=new_taskhub("tls"), agents=[echo])
    writer = app.response_callbacks[0]  # the Redis Stream writer every agent turn uses
    turn = AgentCallbackContext(app.settings.taskhub, "Echo", "s1", "corr-tls", None, 1)
    for chunk in ("Hello", ", ", "TLS"):
        writer.on_chunk(turn, chunk)
    writer.on_response(turn, {})

    async def read() -> str:
        agents = DurableAgentClient(DurableClient(app))
        return "".join([chunk.text async for chunk in agents.stream("corr-tls", start_timeout=10)])

    assert asyncio.run(read()) == "Hello, TLS"

    async def through_the_api() -> list[httpx.Response]:
        transport = httpx.ASGITransport(create_app(app))  # a loopback client: no key needed
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            streamed = await http.get("/api/streams/corr-tls")
            last = [line[4:] for line in streamed.text.splitlines() if line.startswith("id: ")][-1]
            return [
                await http.get("/readyz"),
                streamed,
                await http.get("/api/streams/corr-tls", params={"cursor": last}),
            ]

    ready, streamed, ended = asyncio.run(through_the_api())
    assert ready.json()["checks"]["redis"] == "ok", ready.text  # the readiness probe connects with the client cert
    assert streamed.status_code == 200 and "event: complete" in streamed.text, streamed.text
    assert ended.status_code == 204  # resuming after the end reads the stream's tail over TLS too
    with app.model_slots.hold("durable-agents-test:tls-slot", 1):
        assert redis_client(settings).zcard("durable-agents-test:tls-slot") == 1


def test_postgres_sslmode_in_the_url_reaches_the_driver_and_errors_hide_the_password(services: Services) -> None:
    # The local server has no TLS, so libpq refusing sslmode=require proves the parameter got through.
    url = make_url(services.database_url).set(password="hunter2", query={"sslmode": "require"})
    with pytest.raises(ConfigurationError, match="SSL") as refused:
        DurableClient(database_url=url.render_as_string(hide_password=False), redis_url=services.redis_url)
    assert "hunter2" not in str(refused.value) and "***" in str(refused.value)


def test_every_setting_can_come_from_a_secret_file(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The environment is the input here, as Docker and Kubernetes set it: monkeypatch only sets variables.
    for name in ("DATABASE_URL", "REDIS_URL", "DURABLE_AGENTS_API_KEYS"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "database_url").write_text(services.database_url + "\n")  # as `echo ... > file` writes it
    (tmp_path / "api_keys").write_text("default:a-key-from-a-secret-file-0042")
    monkeypatch.setenv("DATABASE_URL_FILE", str(tmp_path / "database_url"))
    monkeypatch.setenv("DURABLE_AGENTS_API_KEYS_FILE", str(tmp_path / "api_keys"))
    monkeypatch.setenv("REDIS_URL", services.redis_url)
    settings = Settings()
    assert settings.database_url == services.database_url
    assert settings.api_keys.get_secret_value() == "default:a-key-from-a-secret-file-0042"
    assert DurableClient(settings=settings).query_instances(limit=1) is not None  # the URL from the file works

    monkeypatch.setenv("DATABASE_URL", services.database_url)
    with pytest.raises(ConfigurationError, match="both DATABASE_URL and DATABASE_URL_FILE are set"):
        Settings()
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.setenv("DATABASE_URL_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigurationError, match="DATABASE_URL_FILE names .*missing'.*cannot be read"):
        Settings()
