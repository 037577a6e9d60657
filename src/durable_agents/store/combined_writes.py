"""A step's writes on PostgreSQL, gathered while it decides and sent as one statement."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, Table, UpdateBase, bindparam, delete, func, literal_column, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from .inbox import NOTIFY_CHANNEL
from .writes import StepWrites, Then, instance_exists, matching


@dataclass(frozen=True)
class _Part:
    #: Equal keys build equal statements: the combined statement is built once per sequence of keys.
    key: Hashable
    #: Builds the part with its bind parameters named `prefix + name` for each name of `params`.
    build: Callable[[str], UpdateBase]
    params: Mapping[str, Any]
    then: Then | None = None


class CombinedWrites(StepWrites):
    """The writes as the CTEs of a single statement, a round trip saved per write on every step.

    That statement is built from bind parameters only (rows travel as one JSON array each), so
    SQLAlchemy compiles it once per shape and never again. Its parts share one snapshot: none of them
    may touch rows another writes (a DELETE here would not see an INSERT here). `ImmediateWrites` is
    its portable twin and must write the same rows.
    """

    def __init__(self, session: Session) -> None:
        self._session = session
        self._parts: list[_Part] = []

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
        columns, returned = tuple(rows[0]), tuple(returning)
        skipped = tuple(skip_conflicts_on) if skip_conflicts_on is not None else None
        part = _Part(
            ("insert", table.name, columns, returned, skipped, for_existing_instances),
            lambda prefix: insert_from_json(
                table,
                columns,
                prefix + "rows",
                returning=returned,
                skip_conflicts_on=skipped,
                for_existing_instances=for_existing_instances,
            ),
            {"rows": json_rows(rows)},
            then,
        )
        if then is not None and any(existing.then is not None for existing in self._parts):
            self._send([part])  # one statement has one RETURNING to read
        else:
            self._parts.append(part)

    def delete(self, table: Table, where: Mapping[str, Any]) -> None:
        if any(isinstance(value, list) and not value for value in where.values()):
            return  # "any of no ids": nothing to delete
        keys = tuple((name, isinstance(value, list)) for name, value in where.items())
        self._parts.append(
            _Part(
                ("delete", table.name, keys),
                lambda prefix: delete(table).where(*matching(table, _params(table, keys, prefix + "where_"))),
                {f"where_{name}": value for name, value in where.items()},
            )
        )

    def update(
        self, table: Table, where: Mapping[str, Any], values: Mapping[str, Any], *, notify: str | None = None
    ) -> None:
        if not values:
            return
        keys = tuple((name, False) for name in where)
        names = tuple((name, False) for name in values)

        def build(prefix: str) -> UpdateBase:
            statement = (
                update(table)
                .where(*matching(table, _params(table, keys, prefix + "where_")))
                .values(_params(table, names, prefix + "set_"))
            )
            if notify is None:
                return statement
            # RETURNING is computed for every row, even in a CTE nobody reads: the notification goes out.
            return statement.returning(func.pg_notify(NOTIFY_CHANNEL, bindparam(prefix + "notify", type_=String())))

        params = {f"where_{name}": value for name, value in where.items()}
        params.update({f"set_{name}": value for name, value in values.items()})
        if notify is not None:
            params["notify"] = notify
        self._parts.append(_Part(("update", table.name, keys, names, notify is not None), build, params))

    def send(self) -> None:
        parts, self._parts = self._parts, []
        if parts:
            self._send(parts)

    def _send(self, parts: list[_Part]) -> None:
        statement = _combined(parts)
        params = {f"p{n}_{name}": value for n, part in enumerate(parts) for name, value in part.params.items()}
        result = self._session.execute(statement, params)
        for part in parts:
            if part.then is not None:
                part.then(result.all())


_statements: dict[tuple[Hashable, ...], UpdateBase] = {}
_statements_lock = threading.Lock()
#: Distinct shapes are few (which tables a step writes, which instance columns change); the cap only
#: guards against a caller that would make every statement new.
_MAX_STATEMENTS = 1024


def _combined(parts: list[_Part]) -> UpdateBase:
    """One statement for `parts`: the part with RETURNING (if any) is the main one, the others its CTEs.
    Unreferenced, they still run: PostgreSQL runs every data-modifying CTE exactly once."""
    shape = tuple(part.key for part in parts)
    statement = _statements.get(shape)
    if statement is not None:
        return statement
    main = next((n for n, part in enumerate(parts) if part.then is not None), len(parts) - 1)
    statement = parts[main].build(f"p{main}_")
    ctes = [part.build(f"p{n}_").cte(f"write_{n}") for n, part in enumerate(parts) if n != main]
    if ctes:
        statement = statement.add_cte(*ctes)
    with _statements_lock:
        if len(_statements) >= _MAX_STATEMENTS:
            _statements.clear()
        return _statements.setdefault(shape, statement)


def insert_from_json(
    table: Table,
    columns: Sequence[str],
    param: str,
    *,
    returning: Sequence[str] = (),
    skip_conflicts_on: Sequence[str] | None = None,
    for_existing_instances: bool = False,
) -> UpdateBase:
    """INSERT INTO table (columns) SELECT columns FROM jsonb_populate_recordset(NULL::table, :param), on
    PostgreSQL: any number of rows in one bind parameter, typed by the table's own row type. For
    `skip_conflicts_on` and `for_existing_instances`, see `StepWrites.insert`."""
    source = func.jsonb_populate_recordset(
        literal_column(f"NULL::{table.name}"), bindparam(param, type_=JSONB)
    ).table_valued(*columns)
    rows = select(*(source.c[name] for name in columns))
    if for_existing_instances:
        rows = rows.where(instance_exists(source.c.taskhub, source.c.instance_id))
    statement = postgresql.insert(table).from_select(list(columns), rows)
    if skip_conflicts_on is not None:
        statement = statement.on_conflict_do_nothing(index_elements=list(skip_conflicts_on))
    if returning:
        return statement.returning(*(table.c[name] for name in returning))
    return statement


def json_rows(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Rows as `insert_from_json` takes them."""
    return [_json_row(row) for row in rows]


def _params(table: Table, keys: Iterable[tuple[str, bool]], prefix: str) -> dict[str, Any]:
    """A bind parameter per column, named `prefix + column`: an expanding one (an IN list) where marked."""
    return {name: bindparam(prefix + name, type_=table.c[name].type, expanding=expanding) for name, expanding in keys}


def _json_row(row: Mapping[str, Any]) -> Mapping[str, Any]:
    # Timestamps go as ISO 8601 text, which the row type reads back as timestamptz.
    if any(isinstance(value, datetime) for value in row.values()):
        return {name: value.isoformat() if isinstance(value, datetime) else value for name, value in row.items()}
    return row
