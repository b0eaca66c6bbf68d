"""What a Graph call is inside the simulator, and what a handler sees of it.

Kept apart from :mod:`~bulk_engine.simulator.graph` (the core that runs calls) so the feature modules that
handle them (objects, assets, status, copies, messages, async batch) import these and never the core: the
core does not import them either — they register their route tables (:mod:`~bulk_engine.simulator.routing`,
:mod:`~bulk_engine.simulator.handlers`), so there is no import circle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .config import SimulatorConfig
from .errors import invalid_param
from .params import Params
from .routing import Route
from .store import AD_ACCOUNT, Node, Store

if TYPE_CHECKING:
    from .graph import GraphCore

__all__ = ["VERSION_RE", "CallContext", "GraphRequest", "GraphResponse", "check_account_access"]

VERSION_RE = re.compile(r"^v(\d+)\.(\d+)$")


@dataclass
class GraphRequest:
    method: str
    path: str  # without leading slash and without version: "", "act_1/campaigns", "1202…", "1202…/copies"
    params: dict[str, Any]
    token: str | None = None
    version: str | None = None
    appsecret_proof: str | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    in_batch: bool = False
    base_url: str = "https://graph.facebook.com"  # where paging.next links point (the simulator's own URL)


@dataclass
class GraphResponse:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class CallContext:
    """What a handler sees: the core, the request, typed params, the virtual time and the version."""

    core: GraphCore
    request: GraphRequest
    params: Params
    now: float
    version: str
    route: Route

    @property
    def store(self) -> Store:
        return self.core.store

    @property
    def config(self) -> SimulatorConfig:
        return self.core.config

    @property
    def version_number(self) -> int:
        match = VERSION_RE.match(self.version)
        return int(match.group(1)) if match else 0


def check_account_access(node: Node | None) -> None:
    """Guard for handlers that require an ad-account node."""
    if node is None or node.type != AD_ACCOUNT:
        raise invalid_param("This edge is only available on ad accounts")
