"""protocol/ and planning/ stay pure: no network, clock, randomness or concurrency (DESIGN.md §1)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import bulk_engine

PACKAGE = Path(bulk_engine.__file__).parent
FORBIDDEN = {
    "aiohttp", "anyio", "asyncio", "httpx", "requests", "socket", "ssl", "urllib.request", "time",
    "random", "threading", "concurrent", "subprocess", "sqlite3", "bulk_engine.execution",
    "bulk_engine.engine", "bulk_engine.operations", "bulk_engine.persistence", "bulk_engine.simulator",
}  # fmt: skip
PURE_FILES = sorted([*PACKAGE.joinpath("protocol").glob("*.py"), *PACKAGE.joinpath("planning").glob("*.py")])


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", PURE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_pure_layers_import_no_io(path: Path) -> None:
    bad = {name for name in _imports(path) for f in FORBIDDEN if name == f or name.startswith(f + ".")}
    assert not bad, f"{path.name} imports {sorted(bad)}"
    if path.parent.name == "protocol":
        assert not any(name.startswith("bulk_engine.planning") for name in _imports(path))
