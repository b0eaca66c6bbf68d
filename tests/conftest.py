"""Shared fixtures. The ``graph_simulator`` fixture comes from bulk_engine.simulator.pytest_plugin;
``postgres_server`` (a real PostgreSQL server, started once per session when a test asks) from pg_server."""

from __future__ import annotations

pytest_plugins: list[str] = ["pg_server"]
