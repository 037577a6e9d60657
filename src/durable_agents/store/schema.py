"""The schema check and `db upgrade`: Alembic revisions of the durable-agents tables."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import OperationalError

from ..errors import ConfigurationError, SchemaMismatchError
from .db import get_engine

#: Our own version table, so an application's Alembic history beside ours is left alone.
VERSION_TABLE = "da_alembic_version"
_MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("")).get_current_head()
    assert head is not None
    return head


def current_revision(url: str) -> str | None:
    try:
        with get_engine(url).connect() as conn:
            return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()
    except OperationalError as error:
        raise ConfigurationError(
            f"cannot connect to the database at {_safe(url)}: {error.orig}. "
            "Check DATABASE_URL and that PostgreSQL is running."
        ) from error


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def check_schema(url: str) -> None:
    """Refuse to run against a database that is not at exactly our schema revision."""
    current = current_revision(url)
    head = head_revision()
    if current == head:
        return
    if current is None:
        raise SchemaMismatchError(
            f"the database at {_safe(url)} has no durable-agents schema. Run `durable-agents db upgrade` first."
        )
    known = {script.revision for script in ScriptDirectory.from_config(alembic_config(url)).walk_revisions()}
    if current not in known:
        raise SchemaMismatchError(
            f"the database at {_safe(url)} is at schema revision {current}, newer than this "
            f"durable-agents knows (latest {head}). Upgrade the durable-agents package."
        )
    raise SchemaMismatchError(
        f"the database at {_safe(url)} is at schema revision {current}, older than this "
        f"durable-agents needs ({head}). Run `durable-agents db upgrade`."
    )


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
