"""A step's writes on any database: each runs as it is added (SQLite, whose transaction holds the whole file)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Table, UpdateBase, delete, insert, literal, select, update
from sqlalchemy.orm import Session

from . import dialect, inbox
from .writes import StepWrites, Then, instance_exists, matching


class ImmediateWrites(StepWrites):
    """Portable SQLAlchemy, a statement per write; `CombinedWrites` is its PostgreSQL twin and must
    write the same rows."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def insert(
        self,
        table: Table,
        rows: Sequence[Mapping[str, Any]],
        *,
        returning: Sequence[str] = (),
        then: Then | None = None,
        skip_conflicts_on: Sequence[str] | None = None,
        for_existing_instances: bool = False,
    ) -> None:
        if not rows:
            return
        if skip_conflicts_on is not None or for_existing_instances:
            assert not returning
            for row in rows:
                self._session.execute(_insert_row_where(self._session, table, row, skip_conflicts_on,
                                                        for_existing_instances))  # fmt: skip
        elif returning:
            assert then is not None
            statement = insert(table).returning(*(table.c[name] for name in returning))
            then(self._session.execute(statement, list(rows)).all())
        else:
            self._session.execute(insert(table), list(rows))

    def delete(self, table: Table, where: Mapping[str, Any]) -> None:
        if any(isinstance(value, list) and not value for value in where.values()):
            return  # "any of no ids": nothing to delete
        self._session.execute(delete(table).where(*matching(table, where)))

    def update(
        self, table: Table, where: Mapping[str, Any], values: Mapping[str, Any], *, notify: str | None = None
    ) -> None:
        if not values:
            return
        self._session.execute(update(table).where(*matching(table, where)).values(values))
        if notify is not None:
            inbox.send_notification(self._session, notify)

    def send(self) -> None:
        pass  # every write ran as it was added


def _insert_row_where(
    session: Session,
    table: Table,
    row: Mapping[str, Any],
    skip_conflicts_on: Sequence[str] | None,
    for_existing_instances: bool,
) -> UpdateBase:
    """One row, skipped on a conflict or for an instance that is gone, as `insert_from_json` skips it."""
    values = select(*(literal(value, table.c[name].type) for name, value in row.items()))
    if for_existing_instances:
        values = values.where(instance_exists(literal(row["taskhub"]), literal(row["instance_id"])))
    statement = dialect.of(session).insert(table).from_select(list(row), values)
    if skip_conflicts_on is not None:
        statement = statement.on_conflict_do_nothing(index_elements=list(skip_conflicts_on))
    return cast(UpdateBase, statement)
