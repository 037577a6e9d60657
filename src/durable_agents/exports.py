"""A package's public names, each loaded from its module on first use (PEP 562 module `__getattr__`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(
    package: str,
    namespace: dict[str, Any],
    modules: Mapping[str, Iterable[str]],
    aliases: Mapping[str, str] | None = None,
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for `package`, whose public names `modules` lists under the modules
    that define them (relative to the package), and `aliases` under the names they stand for. Using a
    name loads only its module; the value is kept in `namespace` (the package's globals), so the next
    use is a plain lookup."""
    defined_in = {name: module for module, names in modules.items() for name in names}
    aliases = aliases or {}

    def get(name: str) -> Any:
        target = aliases.get(name, name)
        module = defined_in.get(target)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module, package), target)
        namespace[name] = value
        return value

    def names() -> list[str]:
        return sorted({*namespace, *defined_in, *aliases})

    return get, names
