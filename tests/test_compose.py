"""docker-compose.yml validates with Compose itself (`config` needs no daemon) and wires the stack as documented."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import IN_CI, Services, WorkerProcess, new_taskhub

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
REQUIRED = {
    "DURABLE_AGENTS_API_KEYS": "default:test-key",
    "FLOWER_BASIC_AUTH": "admin:test",
    "POSTGRES_PASSWORD": "a-test-password",
}
LONG_RUNNING = {"postgres", "redis", "orchestrator-worker", "activity-worker", "agents-worker", "api", "flower"}
#: Started with `--profile monitoring`: Prometheus scraping every worker and the API, and Grafana.
MONITORING = {"prometheus", "grafana"}


def compose_command() -> list[str]:
    """The Compose CLI here: the docker plugin (v2) or Debian's docker-compose (v1); both validate offline."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    message = "docker compose is not installed (apt-get install docker-compose; .ci/run does)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in REQUIRED and not k.startswith("DURABLE_AGENTS_")}
    return subprocess.run(
        [*compose_command(), "-f", str(COMPOSE_FILE), *args],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    result = compose("config", env=REQUIRED)
    assert result.returncode == 0, result.stderr
    resolved: dict[str, Any] = yaml.safe_load(result.stdout)
    return resolved


def test_compose_validates_and_brings_up_every_part_of_the_stack(config: dict[str, Any]) -> None:
    services = config["services"]
    assert set(services) == LONG_RUNNING | MONITORING | {"migrate"}
    assert all("healthcheck" in services[name] for name in LONG_RUNNING | MONITORING)
    assert all(services[name]["profiles"] == ["monitoring"] for name in MONITORING)
    assert services["migrate"]["command"] == ["db", "upgrade"]
    for name in LONG_RUNNING - {"postgres", "redis"}:
        conditions = {dependency: spec["condition"] for dependency, spec in services[name]["depends_on"].items()}
        assert conditions == {
            "postgres": "service_healthy",
            "redis": "service_healthy",
            "migrate": "service_completed_successfully",
        }, name


def test_each_queue_has_its_own_scalable_worker_service(config: dict[str, Any]) -> None:
    services = config["services"]
    for service, queue in (
        ("orchestrator-worker", "orchestrator"),
        ("activity-worker", "activities"),
        ("agents-worker", "agents"),
    ):
        command = services[service]["command"]
        assert command[:2] == ["worker", "durable_agents.demo.app:app"]
        assert command[command.index("--queues") + 1] == queue
        # `--scale` needs services without fixed names or host ports.
        assert "container_name" not in services[service] and "ports" not in services[service]
        # Prometheus finds every container of the service (monitoring/prometheus.yml) on this port.
        assert command[command.index("--metrics-port") + 1] == "9191"
        # A stop leaves the worker its grace period (20 s by default) and the hand-back of its leases.
        assert services[service]["stop_grace_period"] in ("30s", "30000000000", 30000000000)


def test_api_and_flower_are_served_with_credentials_from_the_environment(config: dict[str, Any]) -> None:
    api, flower = config["services"]["api"], config["services"]["flower"]
    assert api["command"][:2] == ["api", "durable_agents.demo.app:app"] and "0.0.0.0" in api["command"]
    assert api["environment"]["DURABLE_AGENTS_API_KEYS"] == REQUIRED["DURABLE_AGENTS_API_KEYS"]
    assert flower["entrypoint"] == ["celery"] and flower["command"][:3] == [
        "-A",
        "durable_agents.demo.app:app",
        "flower",
    ]
    assert flower["environment"]["FLOWER_BASIC_AUTH"] == REQUIRED["FLOWER_BASIC_AUTH"]
    assert '".[flower,otel]"' in (ROOT / "Dockerfile").read_text()  # the image has Flower (and tracing's SDK)

    for secret in REQUIRED:  # every secret is asked for: none falls back to a default anyone can read here
        missing = compose("config", "-q", env={k: v for k, v in REQUIRED.items() if k != secret})
        assert missing.returncode != 0 and secret in missing.stderr, (secret, missing.stderr)
    assert config["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] == REQUIRED["POSTGRES_PASSWORD"]
    assert f":{REQUIRED['POSTGRES_PASSWORD']}@postgres:" in api["environment"]["DATABASE_URL"]


def test_the_image_runs_as_a_user_of_its_own_not_root() -> None:
    users = [line.split()[1] for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}


def test_the_worker_health_check_asks_the_worker_registry(
    config: dict[str, Any], services: Services, worker: WorkerProcess
) -> None:
    check = config["services"]["orchestrator-worker"]["healthcheck"]["test"]
    assert check[:3] == ["CMD", "durable-agents", "healthcheck"]

    def healthy(taskhub: str) -> bool:
        environment = {**os.environ, "DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url}
        result = subprocess.run(
            [sys.executable, "-m", "durable_agents", *check[2:]],
            env={**environment, "TASKHUB": taskhub},
            capture_output=True,
            timeout=60,
        )
        return result.returncode == 0

    assert healthy(worker.taskhub)  # a live worker on this host heartbeats in that task hub
    assert not healthy(new_taskhub("empty"))


def test_the_grafana_dashboard_charts_every_metric_and_only_those() -> None:
    import json
    import re

    from durable_agents.telemetry.metrics import metrics

    exposed = {"durable_agents_instances", "durable_agents_queue_depth"}  # read at each scrape (tasks/gauges.py)
    for metric in vars(metrics()).values():
        for family in metric.describe():
            exposed |= {sample_name for sample_name in _sample_names(family.name, family.type)}
    dashboard = json.loads((ROOT / "monitoring" / "grafana-dashboard.json").read_text())
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"durable_agents_\w+", target["expr"])
    }
    assert queried <= exposed, queried - exposed
    charted = {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in queried}
    assert {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in exposed} <= charted


def _sample_names(name: str, kind: str) -> set[str]:
    if kind == "counter":
        return {f"{name}_total"}
    if kind == "histogram":
        return {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return {name}
