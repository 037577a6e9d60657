"""Workers and clients refuse an unmigrated or newer schema; `durable-agents db upgrade` fixes the first."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from durable_agents import DurableClient, SchemaMismatchError
from durable_agents.store.db import get_engine
from durable_agents.store.schema import VERSION_TABLE, head_revision

from conftest import Services, run_cli


@pytest.fixture
def blank_database(services: Services) -> Iterator[str]:
    """A freshly created, empty database on the same server."""
    # Named after this run's database, so runs on other databases (other checkouts) never share it.
    name = f"{make_url(services.database_url).database}_blank"
    admin = get_engine(services.database_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(services.database_url).set(database=name).render_as_string(hide_password=False)
    get_engine(make_url(services.database_url).set(database=name).render_as_string(hide_password=False)).dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def cli(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env={"DATABASE_URL": database_url})


def test_unmigrated_database_is_refused_then_upgraded(services: Services, blank_database: str) -> None:
    with pytest.raises(SchemaMismatchError, match="has no durable-agents schema. Run `durable-agents db upgrade`"):
        DurableClient(database_url=blank_database, redis_url=services.redis_url)

    refused = cli("worker", "workflows:app", database_url=blank_database)
    assert refused.returncode == 1
    assert "has no durable-agents schema" in refused.stderr and "db upgrade" in refused.stderr
    assert "Traceback" not in refused.stderr

    upgraded = cli("db", "upgrade", database_url=blank_database)
    assert upgraded.returncode == 0, upgraded.stderr
    assert head_revision() in upgraded.stdout
    assert cli("db", "upgrade", database_url=blank_database).returncode == 0  # idempotent
    DurableClient(database_url=blank_database, redis_url=services.redis_url)  # accepted now


def test_newer_schema_is_refused(services: Services, blank_database: str) -> None:
    assert cli("db", "upgrade", database_url=blank_database).returncode == 0
    with get_engine(blank_database).begin() as conn:
        conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = 'f00dfacecafe'"))
    with pytest.raises(SchemaMismatchError, match="newer than this durable-agents knows.*Upgrade the durable-agents"):
        DurableClient(database_url=blank_database, redis_url=services.redis_url)
    checked = cli("db", "check", database_url=blank_database)
    assert checked.returncode == 1 and "newer" in checked.stderr


def test_a_sqlite_file_records_times_below_the_second_and_an_old_one_keeps_its_rows(tmp_path: Any) -> None:
    from durable_agents.store.schema import upgrade

    url = f"sqlite:///{tmp_path / 'durable_agents.db'}"
    upgrade(url, "0008")  # a file made by an earlier version, holding an instance
    row = "INSERT INTO da_instances (taskhub, instance_id, name, execution_id, status, history_length) VALUES "
    with get_engine(url).begin() as conn:
        conn.execute(text(row + "('h', 'before', 'n', 'e', 'PENDING', 0)"))
    upgrade(url)
    with get_engine(url).begin() as conn:
        conn.execute(text(row + "('h', 'after', 'n', 'e', 'PENDING', 0)"))
        stored = dict(conn.execute(text("SELECT instance_id, created_at FROM da_instances")).all())
        assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    assert set(stored) == {"before", "after"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", stored["after"]), stored


def test_an_instance_on_sqlite_shows_its_events_apart(sqlite_services: Services, sqlite_worker: Any) -> None:
    import workflows

    client = DurableClient(
        workflows.app,
        taskhub=sqlite_worker.taskhub,
        database_url=sqlite_services.database_url,
        redis_url=sqlite_services.redis_url,
    )
    instance_id = client.schedule_new_orchestration("sequence")
    client.wait_for_orchestration_completion(instance_id)
    moments = [datetime.fromisoformat(event["recorded_at"]) for event in client.get_history(instance_id)]
    assert len(set(moments)) > 1 and any(moment.microsecond for moment in moments), moments
