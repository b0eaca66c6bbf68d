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
