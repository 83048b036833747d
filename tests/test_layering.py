"""The package's layers, checked on the source with `ast`: no import cycles, and each layer imports only
the layers below it. The engine knows no search space and nothing of spoofing; data/ is a leaf.

Layers, bottom up: data; engine; nn, relaxations; spaces; tasks; spoofing; the entry points (cli, demo,
benchmark, plotting). Tasks never import a space: they are handed one as a record. Imports inside
functions count too: they are dependencies all the same.
"""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "darts_jax"
# What each layer may import from darts_jax, besides itself.
ALLOWED = {
    "data": set(),
    "engine": set(),
    "nn": {"engine", "data"},
    "relaxations": set(),
    "spaces": {"engine", "nn", "relaxations", "data", "plotting"},
    "tasks": {"engine", "relaxations"},  # relaxations: β-DARTS' regulariser of the architecture loss
    # nn: importing the authors' checkpoints compares their front-end matrices with darts_jax.nn.frontends.
    "spoofing": {"engine", "tasks", "spaces", "nn", "data", "plotting"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The darts_jax modules a file imports (`from darts_jax.x import y` counts x.y if that is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("darts_jax")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("darts_jax"):
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


MODULES = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
GRAPH = {name: {m for m in _imports(path) if m in MODULES and m != name} for name, path in MODULES.items()}


def _layer(module: str) -> str:
    return module.split(".")[1] if "." in module else module


def test_every_module_is_found():
    assert {"darts_jax.engine.driver", "darts_jax.spaces.pcdarts2d.supernet", "darts_jax.data.loader",
            "darts_jax.spoofing.metrics", "darts_jax.tasks.search"} <= set(MODULES)


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_the_layers_below(layer):
    violations = [f"{module} imports {target}" for module, targets in sorted(GRAPH.items())
                  if _layer(module) == layer for target in sorted(targets)
                  if _layer(target) != layer and _layer(target) not in ALLOWED[layer]]
    assert not violations, "\n".join(violations)


def test_no_import_cycles():
    # A package's __init__ importing its own modules is the package, not a cycle.
    def edges(module):
        return {t for t in GRAPH[module] if not (module.endswith("__init__") or t.startswith(module + "."))}

    state, cycles = {}, []

    def visit(module, stack):
        state[module] = "open"
        for target in sorted(edges(module)):
            if state.get(target) == "open":
                cycles.append(" -> ".join(stack[stack.index(target):] + [target]))
            elif target not in state:
                visit(target, stack + [target])
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    assert not cycles, "\n".join(cycles)


def test_the_checker_sees_a_violation(tmp_path):
    # The walk itself: an engine module importing a space, and a function-level import, are both found.
    source = tmp_path / "mod.py"
    source.write_text("from darts_jax.spaces.pcdarts2d import genotype\n"
                      "def f():\n    import darts_jax.spoofing.metrics\n")
    assert _imports(source) >= {"darts_jax.spaces.pcdarts2d", "darts_jax.spaces.pcdarts2d.genotype",
                                "darts_jax.spoofing.metrics"}


def test_modules_stay_small():
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > 400}
    assert not long, f"modules over 400 lines: {long}"
