"""Filtering by tags stays fast at any number of instances: PostgreSQL answers it from the GIN index."""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql

from durable_agents.models import Instance
from durable_agents.store import dialect
from durable_agents.store.db import transaction

from conftest import Services

ROWS = 50_000
TEAMS = 1_000


def test_a_tag_filter_is_answered_from_the_gin_index(services: Services) -> None:
    condition = dialect.named("postgresql").json_contains(Instance.tags, {"team": "t7"})
    query = select(Instance.instance_id).where(Instance.taskhub == "tagindex", condition)
    compiled = query.compile(dialect=postgresql.dialect())
    assert "da_instances.tags @> " in str(compiled)  # containment, which jsonb_path_ops indexes (not LIKE)
    with transaction(services.database_url) as session:
        # One hub of 50,000 instances in 1,000 teams, rolled back at the end.
        session.execute(
            text(
                "INSERT INTO da_instances (taskhub, instance_id, name, execution_id, status, history_length, tags) "
                "SELECT 'tagindex', 'i' || g, 'x', 'e', 'COMPLETED', 0, "
                "jsonb_build_object('team', 't' || (g % :teams)) "
                "FROM generate_series(1, :rows) AS g"
            ),
            {"rows": ROWS, "teams": TEAMS},
        )
        session.execute(text("ANALYZE da_instances"))
        explain = "EXPLAIN SELECT instance_id FROM da_instances WHERE taskhub = 'tagindex' AND tags @> :tags ::jsonb"
        plan = "\n".join(row[0] for row in session.execute(text(explain), {"tags": '{"team": "t7"}'}))
        found = session.scalars(query).all()
        session.rollback()
    assert "ix_da_instances_tags" in plan, plan
    assert len(found) == ROWS // TEAMS
