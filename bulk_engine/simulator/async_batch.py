"""Async batch request sets (S003 §Asynchronous and Batch Requests)."""

from __future__ import annotations

from .routing import RouteTable

routes = RouteTable()
