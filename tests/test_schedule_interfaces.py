"""Schedules through the HTTP API and the command line: create, read, change, pause, resume, trigger, delete,
and bad input answered with a 4xx naming what is wrong (one line on the command line)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from typer.testing import CliRunner

from durable_agents.api import create_app
from durable_agents.cli import app as cli_app
from test_api import ApiServer, api_settings, error_of

from conftest import Services, WorkerProcess, new_taskhub, run_cli, wait_until


@pytest.fixture(scope="module")
def api(services: Services, worker: WorkerProcess) -> Iterator[httpx.Client]:
    import workflows

    app = create_app(workflows.app, api_settings(services, worker.taskhub))
    with ApiServer(app) as server, server.client() as http:
        yield http


def test_crud_pause_resume_and_trigger_over_http(api: httpx.Client) -> None:
    created = api.post(
        "/api/schedules",
        json={"schedule_id": "weekday-report", "orchestration": "plain_function", "input": {"r": 1},
              "cron": "0 9 * * MON-FRI", "timezone": "Europe/Oslo", "overlap": "buffer_one"},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["description"] == "At 09:00 on Monday through Friday (Europe/Oslo)" and body["next_fire_at"]
    assert created.headers["location"].endswith("/api/schedules/weekday-report")
    assert api.get(created.headers["location"]).json()["overlap"] == "buffer_one"

    changed = api.patch("/api/schedules/weekday-report", json={"every_seconds": 3600, "input": {"r": 2}}).json()
    assert changed["cron"] is None and changed["every_seconds"] == 3600 and changed["input"] == {"r": 2}
    assert changed["timezone"] == "Europe/Oslo" and changed["overlap"] == "buffer_one"  # kept
    assert api.post("/api/schedules/weekday-report/pause", json={"note": "freeze"}).json()["paused"] is True
    triggered = api.post("/api/schedules/weekday-report/trigger")
    assert triggered.status_code == 202
    run = triggered.json()["instance_id"]
    wait_until(lambda: api.get(triggered.json()["status_url"]).json()["runtime_status"] == "COMPLETED")
    runs = api.get(changed["runs_url"]).json()["items"]
    assert [item["instance_id"] for item in runs] == [run] and runs[0]["output"] == {"echo": {"r": 2}}
    resumed = api.post("/api/schedules/weekday-report/resume").json()
    assert resumed["paused"] is False and resumed["note"] == "freeze"
    listed = api.get("/api/schedules").json()["items"]
    assert "weekday-report" in [item["schedule_id"] for item in listed]
    assert api.delete("/api/schedules/weekday-report").json() == {"schedule_id": "weekday-report", "deleted": True}
    error_of(api.get("/api/schedules/weekday-report"), 404, "schedule_not_found")


@pytest.mark.parametrize(
    ("body", "status", "code", "fragment"),
    [
        ({"cron": "0 9 * * FUNDAY"}, 422, "invalid_schedule", "cron expression '0 9 * * FUNDAY' is not valid"),
        ({"cron": "@daily", "timezone": "Europe/Atlantis"}, 422, "invalid_schedule", "unknown time zone"),
        ({"cron": "@daily", "every_seconds": 60}, 422, "invalid_schedule", "both cron and every given"),
        ({}, 422, "invalid_schedule", "neither cron nor every given"),
        ({"every_seconds": 0.1}, 422, "invalid_input", "every_seconds"),
        ({"every_seconds": 60, "overlap": "queue"}, 422, "invalid_input", "overlap"),
        ({"every_seconds": 60, "orchestration": "no_such_flow"}, 404, "orchestration_not_found", "no_such_flow"),
    ],
)
def test_bad_definitions_answer_4xx_naming_the_problem(
    api: httpx.Client, body: dict[str, object], status: int, code: str, fragment: str
) -> None:
    sent = {"schedule_id": "bad", "orchestration": "plain_function", **body}
    assert fragment in error_of(api.post("/api/schedules", json=sent), status, code)


def test_conflicts_and_unknown_ids_over_http(api: httpx.Client) -> None:
    sent = {"schedule_id": "twice", "orchestration": "plain_function", "cron": "@hourly"}
    assert api.post("/api/schedules", json=sent).status_code == 201
    assert "already in use" in error_of(api.post("/api/schedules", json=sent), 409, "schedule_exists")
    for method, path in (("POST", "pause"), ("POST", "resume"), ("POST", "trigger"), ("GET", "runs")):
        error_of(api.request(method, f"/api/schedules/nobody/{path}"), 404, "schedule_not_found")
    error_of(api.patch("/api/schedules/twice", json={"cron": "every day"}), 422, "invalid_schedule")
    api.delete("/api/schedules/twice")


def test_the_command_line_creates_lists_and_refuses_bad_input_in_one_line(services: Services) -> None:
    env = {"DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url, "TASKHUB": new_taskhub("scli")}
    cli = CliRunner()
    created = cli.invoke(
        cli_app,
        ["schedules", "create", "nightly", "plain_function", "--cron", "0 2 * * *", "--tz", "Europe/Oslo",
         "--input", '{"n": 1}', "--overlap", "allow", "--json"],
        env=env,
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    assert json.loads(created.stdout)["description"] == "At 02:00 every day (Europe/Oslo)"
    listed = cli.invoke(cli_app, ["schedules", "list", "--json"], env=env)
    assert [item["schedule_id"] for item in json.loads(listed.stdout)] == ["nightly"]
    bad = run_cli("schedules", "create", "x", "plain_function", "--cron", "0 2 * *", env=env)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == [
        "error: cron expression '0 2 * *' has 4 fields; it takes 5 (minute hour day-of-month month day-of-week), "
        "like '0 9 * * MON-FRI'. For periods under a minute use an interval (every=timedelta(seconds=...), "
        "--every 30s)"
    ]
