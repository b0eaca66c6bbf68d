"""Marketing messages on Messenger (S004): ``message_campaign`` and ``messages`` edges."""

from __future__ import annotations

from .routing import RouteTable

routes = RouteTable()
