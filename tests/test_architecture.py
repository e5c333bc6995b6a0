"""The package's shape: no import cycles (imports inside functions included) and layers that only look down.

Read from the source with ``ast``, so a function-level import cannot hide a cycle. The layers, top to bottom:
the interfaces (dashboard, command line, R-compatible functions), then power, analysis, the permutation test,
designs and models side by side, diagnostics, files, spaces; ``core`` never imports the interfaces, designs
never import the analysis.
"""
from __future__ import annotations

import ast
import pathlib

import crt_widgets

ROOT = pathlib.Path(crt_widgets.__file__).parent

# top to bottom; a module may import its own layer and the layers below it, never one above
LAYERS = [
    ("crt_widgets.widgets", "crt_widgets.commands", "crt_widgets.compat", "crt_widgets.cli"),
    ("crt_widgets.core.power",),
    ("crt_widgets.core.analysis", "crt_widgets.core.modelbased"),
    ("crt_widgets.core.permutation",),
    ("crt_widgets.core.randomization", "crt_widgets.core.multiperiod", "crt_widgets.core.models"),
    ("crt_widgets.core.diagnostics",),
    ("crt_widgets.core.io",),
    ("crt_widgets.core.spaces",),
    ("crt_widgets.core.covariates", "crt_widgets.core.seeds", "crt_widgets.core.parallel", "crt_widgets.core.sizes",
     "crt_widgets.core.progress",
     "crt_widgets.datasets"),
]
# designs and models are independent of each other (same layer, no imports either way)
INDEPENDENT = [("crt_widgets.core.randomization", "crt_widgets.core.models")]


def module_name(path: pathlib.Path) -> str:
    parts = ("crt_widgets",) + path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


def imports_of(name: str) -> set[str]:
    """Every crt_widgets module that ``name`` imports, wherever the import statement stands."""
    tree = ast.parse(MODULES[name].read_text())
    package = name if MODULES[name].name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES}
    return {m for m in found if m in MODULES and m != name and m != "crt_widgets"}


GRAPH = {name: imports_of(name) for name in MODULES}


def layer_of(name: str) -> int | None:
    for i, prefixes in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return i
    return None


def test_no_import_cycles():
    # Tarjan's strongly connected components: any component of two or more modules is a cycle
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert cycles == []


def test_layers_only_import_downwards():
    upward = [(a, b) for a, targets in GRAPH.items() for b in targets
              if layer_of(a) is not None and layer_of(b) is not None and layer_of(b) < layer_of(a)]
    assert upward == []


def test_designs_and_models_are_independent():
    crossing = [(a, b) for a, targets in GRAPH.items() for b in targets for x, y in INDEPENDENT
                if (a.startswith(x) and b.startswith(y)) or (a.startswith(y) and b.startswith(x))]
    assert crossing == []


def test_every_module_has_a_layer():
    assert [m for m in MODULES if m != "crt_widgets" and layer_of(m) is None and m != "crt_widgets.core"
            and m != "crt_widgets.__main__"] == []


def test_the_checker_sees_function_level_imports():
    # widgets.panels imports the datasets inside a function: the graph must hold that edge
    assert "crt_widgets.datasets" in GRAPH["crt_widgets.widgets.panels"]
