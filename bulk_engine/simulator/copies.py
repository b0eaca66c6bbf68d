"""``/copies`` edges and the Advantage+ migration (S003 §Advantage+ Campaign Experience)."""

from __future__ import annotations

from .routing import RouteTable
from .store import Node, Store

routes = RouteTable()


def compute_advantage_state_info(store: Store, campaign: Node) -> dict[str, str] | None:
    return campaign.data.get("advantage_state_info")
