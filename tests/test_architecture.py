"""Dependency rules of DESIGN.md §1 and the curated public API, enforced by scanning imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import bulk_engine

PACKAGE = Path(bulk_engine.__file__).parent
ROOT = PACKAGE.parent

# Inner layers may not import outer ones: protocol ← planning ← execution ← operations ← engine.
LAYER_FORBIDS = {
    "protocol": (
        "bulk_engine.planning",
        "bulk_engine.execution",
        "bulk_engine.operations",
        "bulk_engine.engine",
    ),
    "planning": ("bulk_engine.execution", "bulk_engine.operations", "bulk_engine.engine"),
    "execution": ("bulk_engine.operations", "bulk_engine.engine", "bulk_engine.simulator"),
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module or "" if node.level == 0 else _resolve(path, node))
    return names


def _resolve(path: Path, node: ast.ImportFrom) -> str:
    """Absolute module name of a relative import inside bulk_engine."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    base = parts[: len(parts) - node.level]
    return ".".join([*base, node.module or ""]).rstrip(".")


ENGINE_FILES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", ENGINE_FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_engine_never_imports_airflow(path: Path) -> None:
    assert not any(name == "airflow" or name.startswith("airflow.") for name in _imports(path))


@pytest.mark.parametrize(
    ("layer", "path"),
    [(layer, p) for layer in LAYER_FORBIDS for p in sorted(PACKAGE.joinpath(layer).glob("*.py"))],
    ids=lambda v: v if isinstance(v, str) else v.name,
)
def test_layers_point_inward(layer: str, path: Path) -> None:
    bad = {n for n in _imports(path) for f in LAYER_FORBIDS[layer] if n == f or n.startswith(f + ".")}
    assert not bad, f"{layer}/{path.name} imports {sorted(bad)}"


def test_public_api_is_sorted_and_importable() -> None:
    names = bulk_engine.__all__
    assert names == sorted(names)
    assert len(set(names)) == len(names)
    for name in names:
        assert getattr(bulk_engine, name) is not None
    public = {n for n in dir(bulk_engine) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(bulk_engine, n)).__name__ == "module"}
    assert public - modules == set(names), "exported names and __all__ differ"


# --- one exception tree ---------------------------------------------------------------------------------------
OUTSIDE_THE_TREE = {
    # the simulator's model of a Graph error answer (turned into the HTTP answer), never raised to callers
    "bulk_engine.simulator.errors.GraphAPIError",
}


def _engine_modules() -> list[str]:
    names = []
    for path in ENGINE_FILES:
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__main__":
            continue
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_every_exception_the_engine_defines_is_under_bulk_engine_error() -> None:
    """``except BulkEngineError`` catches whatever the engine raises on purpose (``errors.py`` draws the tree);
    classes named ``_…`` are private to their module and caught there."""
    import importlib
    import inspect

    from bulk_engine.errors import BulkEngineError

    outside = []
    for name in _engine_modules():
        module = importlib.import_module(name)
        for cls_name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != name or not issubclass(cls, BaseException) or cls_name.startswith("_"):
                continue
            if not issubclass(cls, BulkEngineError) and f"{name}.{cls_name}" not in OUTSIDE_THE_TREE:
                outside.append(f"{name}.{cls_name}")
    assert outside == [], f"not under BulkEngineError: {outside}"


def test_both_packages_ship_py_typed() -> None:
    """PEP 561: without the marker, type checkers ignore the hints of an installed package."""
    import tomllib

    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    for package in ("bulk_engine", "airflow_provider"):
        assert (ROOT / package / "py.typed").is_file()
        assert "py.typed" in data["package-data"][package]


# --- module shape: size and import circles (issue "A typed front door", Deliver 3) ---------------------------
MAX_MODULE_LINES = 600
# Modules already over the cap, with the size they may not grow past (shrink them, then drop the entry).
OVERSIZED: dict[str, int] = {}
# Import circles not broken yet (each a sorted tuple of modules); a new circle fails the test.
KNOWN_CIRCLES: set[tuple[str, ...]] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(path: Path, modules: set[str]) -> set[str]:
    """Modules of the package ``path`` imports when it runs — at the top or inside a function (a lazy
    import still closes a circle), but not under ``if TYPE_CHECKING:``."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names if a.name in modules)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    target = ".".join([*base, *([child.module] if child.module else [])])
                else:
                    target = child.module or ""
                if child.module and target in modules:
                    found.add(target)
                found.update(f"{target}.{a.name}" for a in child.names if f"{target}.{a.name}" in modules)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    found.discard(name)
    return found


def _circles() -> set[tuple[str, ...]]:
    """Strongly connected groups of more than one module in the package's import graph (Tarjan)."""
    modules = {_module_name(p) for p in ENGINE_FILES}
    graph = {_module_name(p): _runtime_imports(p, modules) for p in ENGINE_FILES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: set[tuple[str, ...]] = set()

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.add(tuple(sorted(group)))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return groups


def test_no_new_import_circles() -> None:
    circles = _circles()
    assert circles <= KNOWN_CIRCLES, f"new import circles: {sorted(circles - KNOWN_CIRCLES)}"
    assert not KNOWN_CIRCLES - circles, (
        f"broken since (drop them from KNOWN_CIRCLES): {KNOWN_CIRCLES - circles}"
    )


def test_modules_stay_under_the_size_cap() -> None:
    sizes = {
        str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines())
        for p in [*ENGINE_FILES, *sorted((ROOT / "airflow_provider").rglob("*.py"))]
    }
    over = {m: n for m, n in sizes.items() if n > OVERSIZED.get(m, MAX_MODULE_LINES)}
    assert not over, f"over the {MAX_MODULE_LINES}-line cap (or past their recorded size): {over}"
    shrunk = {m: sizes.get(m, 0) for m, cap in OVERSIZED.items() if sizes.get(m, 0) <= MAX_MODULE_LINES}
    assert not shrunk, f"now under the cap: drop them from OVERSIZED: {shrunk}"
