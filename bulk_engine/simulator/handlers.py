"""The feature modules the simulator serves: importing this module registers their route tables with the
core (the package ``__init__`` imports it, so every ``GraphCore`` serves them unless given its own)."""

from __future__ import annotations

from . import assets, async_batch, copies, messages, objects, status, videos
from .routing import register

__all__ = ["FEATURES"]

FEATURES = (objects, assets, videos, status, copies, messages, async_batch)
for _feature in FEATURES:
    register(_feature.routes)
