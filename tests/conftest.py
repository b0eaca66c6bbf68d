"""Shared fixtures. The ``graph_simulator`` fixture comes from bulk_engine.simulator.pytest_plugin."""

from __future__ import annotations

pytest_plugins: list[str] = []
