"""Workers and clients refuse an unmigrated or newer schema; `durable-agents db upgrade` fixes the first."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

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
    name = "durable_agents_schema_test"
    admin = get_engine(services.database_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    yield make_url(services.database_url).set(database=name).render_as_string(hide_password=False)
    get_engine(make_url(services.database_url).set(database=name).render_as_string(hide_password=False)).dispose()
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


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
