"""Route tables: which handler serves (HTTP method, node type, edge).

Each feature module owns a :class:`RouteTable` and the core composes them, so features stay in their own
modules (objects, status, copies, batch, async batch, messages) without a central switch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .context import CallContext
    from .store import Node

Handler = Callable[["CallContext", "Node | None"], Any]


@dataclass(frozen=True)
class Route:
    method: str
    node_type: str  # "root" for the unversioned/versioned root, else a store type
    edge: str | None
    handler: Handler
    buc_type: str = "ads_management"


class RouteTable:
    """A decorator-based table: ``@routes.add("POST", "adaccount", "campaigns")``."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(
        self, method: str, node_type: str, edge: str | None = None, *, buc_type: str = "ads_management"
    ) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self.routes.append(Route(method.upper(), node_type, edge, fn, buc_type))
            return fn

        return register


_REGISTERED: list[RouteTable] = []


def register(table: RouteTable) -> RouteTable:
    """Serve ``table``'s routes in every :class:`~bulk_engine.simulator.graph.GraphCore` made without its
    own tables (see :mod:`~bulk_engine.simulator.handlers`, which registers the feature modules)."""
    if table not in _REGISTERED:
        _REGISTERED.append(table)
    return table


def registered_tables() -> list[RouteTable]:
    """The registered tables, in registration order (a later table's route for the same key wins)."""
    return list(_REGISTERED)
