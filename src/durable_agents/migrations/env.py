"""Alembic environment: migrates the durable-agents tables on the connection given by the caller."""

from __future__ import annotations

from alembic import context

from durable_agents.models import Base
from durable_agents.store.db import get_engine
from durable_agents.store.schema import VERSION_TABLE

config = context.config


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=Base.metadata, version_table=VERSION_TABLE)
        with context.begin_transaction():
            context.run_migrations()
        return
    # Our own engine, so SQLite gets the same connection set-up (foreign keys, WAL) as at run time.
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None
    with get_engine(url).connect() as conn:
        context.configure(connection=conn, target_metadata=Base.metadata, version_table=VERSION_TABLE)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"), target_metadata=Base.metadata, version_table=VERSION_TABLE
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
