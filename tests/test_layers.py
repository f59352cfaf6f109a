"""The layers of ``fleet/`` stay as ARCHITECTURE.md draws them: no import cycle, and each
layer imports only the layers below it.

Why a test and not a diagram: a cycle means two modules are really one, or a seam is
missing (a callback, a protocol class, a published value), and the layer order is what
keeps the station model testable with plain calls and the CLI free of gevent. Both
drift one harmless-looking import at a time; this fails on the first one.

Every import of a ``fleet`` module counts: at the top, inside a function, relative, and
under ``if TYPE_CHECKING:``. A function-level import is the same dependency taken later,
and an annotation that names another module's class is a dependency of the design (it
is how ``engine.link`` and ``engine.fleet`` were one module in two files). The imports
are read with ``ast`` (no module is imported, so no side effect, and gevent stays out of
the test process); import-linter would do the same walk, but it needs its contracts in
pyproject, a separate command or plugin, and has no "no cycles anywhere" contract: the
whole check is the 60 lines below, and the matrix is one table.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "fleet"

# What may import what. A layer is fleet/<name>/ ("cli" also holds fleet/__main__.py).
# "may import": the fleet layers (or single modules, "protocol.errors") below it; its own
# modules always. "never": top-level libraries it must not import, even in a function.
SANS_IO = frozenset({"asyncio", "websockets", "gevent", "locust", "uvloop", "prometheus_client"})
NO_GEVENT = frozenset({"gevent", "locust", "flask"})
#  layer        may import                                                   never
LAYERS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # The Charge Pro itself: events in, decisions out, a fake clock is enough to test it.
    "model": (frozenset({"protocol.errors"}), SANS_IO),
    # OCPP-J framing, ids, timeouts, schemas: sans-I/O too.
    "protocol": (frozenset(), SANS_IO),
    # Counters (FleetStats) and their Prometheus rendering: the engine counts into them.
    "metrics": (frozenset(), frozenset({"gevent", "locust", "asyncio", "websockets"})),
    # SLOs, summaries, JUnit, the capacity report: plain data in, text out; the metrics
    # layer below lends them its definitions (e.g. the generator-lag threshold).
    "reports": (frozenset({"metrics"}), SANS_IO),
    # The asyncio runtime (gevent only to find a real OS thread under monkey-patching).
    "engine": (frozenset({"model", "protocol", "metrics"}), frozenset({"locust", "flask"})),
    # Behaviours and profiles, run by the engine's links.
    "scenarios": (frozenset({"model", "protocol", "engine"}), NO_GEVENT),
    # The reference CSMS is an independent implementation (the ocpp library): it must not
    # share the station's model or RPC core, or a test against it would prove nothing.
    "csms": (frozenset({"engine"}), NO_GEVENT),
    # The Locust front end: everything below, nothing beside it.
    "locust": (
        frozenset({"model", "protocol", "metrics", "reports", "engine", "scenarios"}),
        frozenset(),
    ),
    # The click CLI starts Locust as a child process: gevent's monkey-patching stays out
    # of the process that hosts the embedded CSMS.
    "cli": (frozenset({"engine", "scenarios", "reports", "csms", "bench"}), NO_GEVENT),
    # The built-in profiles (package data) and the script that made their sample trace
    # with the replay's own generator.
    "profiles": (frozenset({"scenarios"}), NO_GEVENT),
    # Benchmarks and soak measure the product from the outside; nothing imports them but
    # the CLI's `fleet bench` / `fleet soak`.
    "bench": (
        frozenset({"model", "protocol", "metrics", "engine", "scenarios", "csms", "locust"}),
        frozenset(),
    ),
}

# Edges left out of the cycle check, each with the reason and who removes it. A stale
# entry fails test_exempt_edges_still_exist, so this list only shrinks.
EXEMPT_EDGES: dict[tuple[str, str], str] = {}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = modules()


def _resolve(name: str) -> str:
    """``fleet.a.b.name`` -> the module it lives in (``fleet.a.b`` when name is a class)."""
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def imports(module: str) -> Iterator[tuple[str, int]]:
    """(imported name, line) for every import statement anywhere in ``module``."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            yield from ((f"{base}.{alias.name}", node.lineno) for alias in node.names)


def fleet_edges() -> dict[str, dict[str, int]]:
    """module -> {fleet module it imports: line}."""
    edges: dict[str, dict[str, int]] = {}
    for module in MODULES:
        out = edges.setdefault(module, {})
        for name, line in imports(module):
            if name.split(".")[0] == "fleet":
                target = _resolve(name)
                if target != module:
                    out.setdefault(target, line)
    return edges


def layer(module: str) -> str:
    parts = module.split(".")
    if parts[1:] == ["__main__"]:
        return "cli"
    return parts[1] if len(parts) > 1 else ""


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each as a
    path through its modules so the message shows the loop."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def shortest_loop(edges: dict[str, set[str]], component: list[str]) -> list[str]:
    """The shortest import loop through the component's first module, for the message."""
    start, inside = component[0], set(component)
    paths = {start: [start]}
    queue = [start]
    for here in queue:
        for there in sorted(edges[here] & inside):
            if there == start:
                return [*paths[here], start]
            if there not in paths:
                paths[there] = [*paths[here], there]
                queue.append(there)
    return component


def test_no_import_cycle_in_fleet() -> None:
    edges = {
        module: set(out) - {t for (s, t) in EXEMPT_EDGES if s == module}
        for module, out in fleet_edges().items()
    }
    loops = [" -> ".join(shortest_loop(edges, c)) for c in cycles(edges)]
    assert not loops, "import cycles in fleet/ (cut each with a seam):\n" + "\n".join(loops)


def test_exempt_edges_still_exist() -> None:
    edges = fleet_edges()
    stale = [f"{s} -> {t} ({why})" for (s, t), why in EXEMPT_EDGES.items() if t not in edges[s]]
    assert not stale, "remove from EXEMPT_EDGES, the import is gone: " + "; ".join(stale)


def test_every_module_is_in_a_layer() -> None:
    unplaced = [m for m in MODULES if m != "fleet" and layer(m) not in LAYERS]
    assert not unplaced, f"add to LAYERS in {__file__} (or move into a layer): {unplaced}"


def test_each_layer_imports_only_the_layers_it_may() -> None:
    wrong = []
    for module, out in fleet_edges().items():
        own = layer(module)
        if own not in LAYERS:
            continue
        allowed = LAYERS[own][0]
        for target, line in out.items():
            short = target.removeprefix("fleet.")
            if layer(target) in (own, "") or layer(target) in allowed or short in allowed:
                continue
            wrong.append(f"{MODULES[module].relative_to(ROOT)}:{line}: {own} imports {target}")
    assert not wrong, "layer order broken (see LAYERS):\n" + "\n".join(wrong)


def test_station_features_reach_the_station_only_through_its_port() -> None:
    """fleet/model/features/__init__.py: a feature imports neither station.py nor another
    feature (but metering, the sampled values two features send)."""
    features = "fleet.model.features"
    shared = {f"{features}.metering", features}
    wrong = [
        f"{MODULES[module].relative_to(ROOT)}:{line}: imports {target}"
        for module, out in fleet_edges().items()
        if module.startswith(features + ".")
        for target, line in out.items()
        if target == "fleet.model.station" or (target.startswith(features) and target not in shared)
    ]
    assert not wrong, "\n".join(wrong)


def test_no_layer_imports_a_library_it_must_not() -> None:
    wrong = []
    for module in MODULES:
        own = layer(module)
        if own not in LAYERS:
            continue
        for name, line in imports(module):
            if name.split(".")[0] in LAYERS[own][1]:
                wrong.append(f"{MODULES[module].relative_to(ROOT)}:{line}: {own} imports {name}")
    assert not wrong, "\n".join(wrong)


def test_the_cli_process_never_loads_gevent() -> None:
    """Transitively, not only what the cli modules name: with every command module
    imported, neither gevent nor Locust is in the process (Locust runs as its child)."""
    code = (
        "import importlib, pkgutil, sys\n"
        "import fleet.cli\n"
        "for m in pkgutil.iter_modules(fleet.cli.__path__):\n"
        "    importlib.import_module('fleet.cli.' + m.name)\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] in ('gevent', 'locust')))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
