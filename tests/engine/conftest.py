"""Fixtures for the engine tests; the builders live in engine_support.py (importable by name)."""

from __future__ import annotations

from engine_support import start_sim

__all__ = ["start_sim"]
