"""The model's layout stays what fleet/model/features/__init__.py says: no import
cycle inside fleet/model, and feature modules reach the station only through the port.

Imports are read from the source (also those under ``TYPE_CHECKING`` and inside
functions), so a cycle hidden from the interpreter is a cycle here too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import fleet.model

ROOT = Path(fleet.model.__file__).parent
FEATURES = "fleet.model.features"
SHARED_FEATURES = {f"{FEATURES}.metering"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m.startswith("fleet.model")}


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    return {
        name: {m for m in _imports(path, name) if m in modules and m != name}
        for name, path in modules.items()
    }


def test_fleet_model_has_no_import_cycle() -> None:
    graph = _graph()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = [*path[path.index(name) :], name]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if name in done:
            return
        for dep in sorted(graph[name]):
            visit(dep, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_features_reach_the_station_only_through_the_port() -> None:
    graph = _graph()
    features = [name for name in graph if name.startswith(FEATURES + ".")]
    assert len(features) >= 9
    for name in features:
        deps = graph[name]
        assert "fleet.model.station" not in deps, name
        others = {d for d in deps if d.startswith(FEATURES + ".") and d != FEATURES}
        assert others <= SHARED_FEATURES, f"{name} imports {sorted(others - SHARED_FEATURES)}"
