"""Entities as the registry holds them: a class with operation methods, or a function of (state, operation, input)."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_type_hints

from .errors import EntityOperationNotFoundError
from .ids import EntityId
from .serialization import decode

#: Attributes of an entity class that are not operations.
_NOT_OPERATIONS = frozenset({"state", "entity_id"})


@dataclass(frozen=True)
class EntitySpec:
    name: str
    target: Callable[..., Any]
    is_class: bool
    #: A class's operations (its public methods); empty for a function, which takes any operation.
    operations: tuple[str, ...]
    #: Whether its locks and releases join its recent operations (not for agent sessions, whose
    #: turns say who held them: two writes fewer per turn).
    records_locks: bool = True

    @classmethod
    def of(cls, name: str, target: Callable[..., Any], *, records_locks: bool = True) -> EntitySpec:
        if not inspect.isclass(target):
            return cls(name, target, False, (), records_locks)
        operations = tuple(
            sorted(
                attribute
                for attribute in dir(target)
                if not attribute.startswith("_")
                and attribute not in _NOT_OPERATIONS
                and callable(getattr(target, attribute))
            )
        )
        if not operations:
            raise ValueError(f"entity class {name!r} has no operations: give it public methods")
        try:
            inspect.signature(target).bind()
        except TypeError:
            raise ValueError(
                f"entity class {name!r} must be constructible without arguments (each operation gets a fresh "
                "instance whose `state` is set); keep what it needs in `state` or in class attributes"
            ) from None
        return cls(name, target, True, operations, records_locks)

    def check_operation(self, operation: str) -> None:
        """Refuse an operation the entity does not define, naming those it does."""
        if not operation or (self.is_class and operation not in self.operations):
            raise EntityOperationNotFoundError(self.name, operation, list(self.operations))

    def apply(self, entity: EntityId, state: Any, operation: str, input: Any) -> tuple[Any, Any]:
        """Run one operation on `state` (decoded JSON, None for a new entity); (the new state, the result).

        `state` is copied first, so an operation that fails halfway leaves the caller's copy untouched."""
        self.check_operation(operation)
        state = copy.deepcopy(state)
        if not self.is_class:
            new_state = self.target(state, operation, input)
            return new_state, new_state
        instance = self.target()
        instance.entity_id = entity
        instance.state = state if state is not None else copy.deepcopy(getattr(self.target, "state", None))
        method = getattr(instance, operation)
        parameters = [
            parameter
            for parameter in inspect.signature(method).parameters.values()
            if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)
        ]
        args: list[Any] = []
        if parameters:
            try:
                hint = get_type_hints(method).get(parameters[0].name)
            except Exception:  # unresolvable forward references: plain JSON
                hint = None
            args.append(decode(input, hint, what=f"input of operation {operation!r} of entity {self.name!r}"))
        result = method(*args)
        return instance.state, result
