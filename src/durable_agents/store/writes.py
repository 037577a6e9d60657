"""A step's writes, gathered while it decides: the interface, and what both databases' versions share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import BindParameter, ColumnElement, Table, exists

from ..models import instances_table

if TYPE_CHECKING:
    from typing import TypeAlias

    from sqlalchemy import Row

    #: A row of any shape, as a statement built at run time returns it.
    AnyRow: TypeAlias = Row[*tuple[Any, ...]]

#: Receives the rows an INSERT ... RETURNING gave, once they are written.
Then = Callable[[Sequence["AnyRow"]], None]


class StepWrites(ABC):
    """Writes that do not depend on one another, sent in one round trip where the database allows
    (`decisions.open_writes` picks the version for a session's database).

    A write that must see an earlier one runs directly on the session, not through here: on
    PostgreSQL the writes share one snapshot (see `CombinedWrites`).
    """

    @abstractmethod
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
        """Insert `rows`, which all have the same keys; with `returning`, hand those columns of the new
        rows to `then` once they are written. Columns left out get their defaults. With
        `skip_conflicts_on`, a row that conflicts on that unique key is skipped; with
        `for_existing_instances`, so is a row whose (taskhub, instance_id) names no instance."""

    @abstractmethod
    def delete(self, table: Table, where: Mapping[str, Any]) -> None:
        """Delete the rows whose columns equal `where`; a list value means any of its items."""

    @abstractmethod
    def update(
        self, table: Table, where: Mapping[str, Any], values: Mapping[str, Any], *, notify: str | None = None
    ) -> None:
        """Set `values` on the rows whose columns equal `where`. With `notify`, also send it as the payload of
        a notification on `NOTIFY_CHANNEL` (delivered at commit) where the database has notifications."""

    @abstractmethod
    def send(self) -> None:
        """Write what is gathered (each write may have run already)."""


def matching(table: Table, where: Mapping[str, Any]) -> list[ColumnElement[bool]]:
    """`column = value` for each item, or `column IN (...)` for a list or an expanding bind parameter."""
    return [
        table.c[name].in_(value)
        if isinstance(value, list) or (isinstance(value, BindParameter) and value.expanding)
        else table.c[name] == value
        for name, value in where.items()
    ]


def instance_exists(taskhub: ColumnElement[Any], instance_id: ColumnElement[Any]) -> ColumnElement[bool]:
    instances = instances_table.c
    return exists().where(instances.taskhub == taskhub, instances.instance_id == instance_id)
