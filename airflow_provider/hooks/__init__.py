"""Hooks of the Meta bulk-engine provider."""

from .meta_graph import MetaGraphHook

__all__ = ["MetaGraphHook"]
