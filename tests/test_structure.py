"""The layout holds: the engine imports alone, layers import downward, no cycles, small files and functions.

Read from the source with `ast` (nothing here imports the package but the purity test's subprocess);
imports under `if TYPE_CHECKING:` are left out, as they never run.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = "durable_agents"
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 80
#: Where functions must stay short: the engine and the layers that drive and store its work.
SHORT_FUNCTIONS_IN = ("orchestrator", "steps", "store", "tasks")


def _modules() -> dict[str, Path]:
    found = {}
    for path in (SRC / PACKAGE).rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import that can run, at any depth (functions included), but not under `if TYPE_CHECKING:`."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                yield from _runtime_imports(ast.Module(body=[child], type_ignores=[]))
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        yield from _runtime_imports(node)


def _known(name: str) -> str:
    """The module of ours that `name` (a module, or a name in one) loads."""
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _ancestors(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:n]) for n in range(1, len(parts))]


def _imports_of(module: str) -> set[str]:
    """The modules of ours that importing `module` runs directly: each one it names, and the packages
    above them that are not already above `module` (Python runs a package's `__init__` first)."""
    base = module.split(".") if _is_package(module) else module.split(".")[:-1]
    named: set[str] = set()
    for node in _runtime_imports(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            named |= {_known(alias.name) for alias in node.names if alias.name.split(".")[0] == PACKAGE}
            continue
        origin = node.module
        if node.level:  # relative: from the package `level - 1` above this module's own
            origin = ".".join([*base[: len(base) - node.level + 1], node.module or ""]).strip(".")
        if not origin or origin.split(".")[0] != PACKAGE:
            continue
        for alias in node.names:
            named.add(f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in MODULES else _known(origin))
    already_loaded = set(_ancestors(module))
    edges = set()
    for target in named:
        edges.add(target)
        edges |= {package for package in _ancestors(target) if package not in already_loaded}
    edges.discard(module)
    return edges


GRAPH = {module: _imports_of(module) for module in MODULES}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_engine_and_the_package_import_without_the_infrastructure() -> None:
    heavy = ("celery", "kombu", "sqlalchemy", "openai", "redis", "psycopg", "fastapi")
    probe = (
        "import sys, durable_agents, durable_agents.orchestrator, durable_agents.orchestrator.waits\n"
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "", f"importing the engine loaded {loaded}"


def test_the_public_names_load_on_first_use() -> None:
    probe = "import sys, durable_agents\nfrom durable_agents import DurableApp\nprint('celery' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout == "True\n"
    import durable_agents

    for name in durable_agents.__all__:
        assert getattr(durable_agents, name) is not None, name
    assert durable_agents.AgentFunctionApp is durable_agents.DurableApp
    with pytest.raises(AttributeError, match="no attribute 'NoSuchName'"):
        _ = durable_agents.NoSuchName  # type: ignore[attr-defined]


def test_no_import_cycles() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in GRAPH[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    described = [" <-> ".join(cycle) for cycle in cycles]
    assert not described, "import cycles:\n" + "\n".join(described)


#: What each layer may import of ours at run time (its own modules always).
ALLOWED = {
    "orchestrator": {"errors", "ids", "serialization", "tags", "exports", ""},
    "store": {"errors", "ids", "serialization", "exports", "", "models", "orchestrator", "state"},
    "steps": {
        *("errors", "ids", "serialization", "exports", "", "models", "orchestrator", "state", "store", "registry"),
        "telemetry",
    },
}
#: What each layer must never import at run time: the layers above it.
FORBIDDEN = {
    "tasks": {"app", "client", "api", "dashboard", "cli", "commands", "demo", "agents"},
    "client": {"api", "dashboard", "cli", "commands", "demo"},
    "agents": {"api", "dashboard", "cli", "commands", "demo"},
}


@pytest.mark.parametrize("layer", sorted({*ALLOWED, *FORBIDDEN}))
def test_layers_import_downward_only(layer: str) -> None:
    wrong = sorted(
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        if _layer(module) == layer
        for target in targets
        if _layer(target) != layer
        and (_layer(target) not in ALLOWED[layer] if layer in ALLOWED else _layer(target) in FORBIDDEN[layer])
    )
    assert not wrong, f"{layer} imports upward:\n" + "\n".join(wrong)


def test_files_stay_small() -> None:
    large = {
        str(path.relative_to(SRC)): lines
        for path in MODULES.values()
        if (lines := len(path.read_text().splitlines())) > MAX_FILE_LINES
    }
    assert not large, f"files over {MAX_FILE_LINES} lines: {large}"


def test_functions_of_the_engine_store_and_drivers_stay_short() -> None:
    long = {}
    for module, path in MODULES.items():
        if _layer(module) not in SHORT_FUNCTIONS_IN:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(SRC)}:{node.name}"] = length
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"
