"""Alembic migrations of the durable-agents schema (run with `durable-agents db upgrade`)."""
