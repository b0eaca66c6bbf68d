"""The simulator's object store: Graph nodes with numeric-string ids, their parents and edges.

Ids are numeric strings (S003 §Basic Ad Creation: "Struct {id: numeric string}"); ad accounts are the
node ``act_<id>`` with ``account_id`` the bare number. Children keep their parent ids so edges
(``/act/campaigns``, ``/<campaign>/adsets``…) and inherited statuses can be derived, not copied.
"""

from __future__ import annotations

import base64
import copy
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

# Node types. The strings are what ``?metadata=1`` would call them; they also key the router.
AD_ACCOUNT = "adaccount"
CAMPAIGN = "campaign"
ADSET = "adset"
CREATIVE = "adcreative"
AD = "ad"
IMAGE = "adimage"
VIDEO = "advideo"
PAGE = "page"
MESSAGE_CAMPAIGN = "message_campaign"
MESSAGE = "message"
ASYNC_REQUEST_SET = "async_request_set"
ASYNC_REQUEST = "async_request"

AD_OBJECT_TYPES = (CAMPAIGN, ADSET, AD)


@dataclass
class Node:
    """One stored Graph object. ``data`` holds its fields by their Graph names."""

    id: str
    type: str
    account_id: str | None  # "act_<n>" for objects inside an ad account
    data: dict[str, Any]
    seq: int
    created_at: float
    parent_id: str | None = None  # campaign for an ad set, ad set for an ad, set for an async request
    history: list[dict[str, Any]] = field(default_factory=list)

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    @property
    def status(self) -> str:
        return str(self.data.get("status", "ACTIVE"))


class Store:
    """All nodes of one simulator run, indexed by id and by (parent, type) for edge reads."""

    def __init__(self, id_base: int = 120_210_000_000_000_000) -> None:
        self._nodes: dict[str, Node] = {}
        self._children: dict[tuple[str, str], dict[str, None]] = {}
        self._ids = itertools.count(id_base + 1)
        self._seq = itertools.count(1)
        # object_story_id → the data of the creative made for it, per ad account (validation/creatives.py
        # existing_creative_for_story): filled as creatives are created, so the reuse lookup is O(1)
        self.story_index: dict[str, dict[str, dict[str, Any]]] = {}

    # --- creation and lookup -------------------------------------------------------------------
    def new_id(self) -> str:
        return str(next(self._ids))

    def add(
        self,
        type_: str,
        data: dict[str, Any],
        *,
        now: float,
        account_id: str | None = None,
        parent_id: str | None = None,
        node_id: str | None = None,
    ) -> Node:
        node = Node(
            id=node_id or self.new_id(),
            type=type_,
            account_id=account_id,
            data=data,
            seq=next(self._seq),
            created_at=now,
            parent_id=parent_id,
        )
        node.data.setdefault("id", node.id)
        self._nodes[node.id] = node
        for owner in {account_id, parent_id, *self.ancestors_ids(node)}:
            if owner:
                self._children.setdefault((owner, type_), {})[node.id] = None
        return node

    def seed_campaigns(
        self, account_id: str, count: int, *, now: float, created_time: str
    ) -> tuple[str, int]:
        """Add ``count`` ACTIVE campaigns to ``account_id`` with contiguous ids; returns (first id, count).

        Why contiguous: a client (a benchmark) can then list a million ids from two numbers instead of
        reading them back. The data is what a plain create stores (name, objective, status, times).
        """
        first = next(self._ids)
        self._ids = itertools.count(first + count)
        account = account_id.removeprefix("act_")
        edge = self._children.setdefault((account_id, CAMPAIGN), {})
        nodes, seq = self._nodes, self._seq
        for number in range(first, first + count):
            node_id = str(number)
            data = {
                "name": f"Seeded campaign {number - first + 1}",
                "objective": "OUTCOME_TRAFFIC",
                "special_ad_categories": [],
                "status": "ACTIVE",
                "account_id": account,
                "created_time": created_time,
                "updated_time": created_time,
                "id": node_id,
            }
            nodes[node_id] = Node(node_id, CAMPAIGN, account_id, data, next(seq), now)
            edge[node_id] = None
        return str(first), count

    def ancestors_ids(self, node: Node) -> list[str]:
        """Parent chain ids (ad → ad set → campaign), used to index edges like ``/<campaign>/ads``."""
        out: list[str] = []
        current = node.parent_id
        while current:
            out.append(current)
            parent = self._nodes.get(current)
            current = parent.parent_id if parent else None
        return out

    def get(self, node_id: str) -> Node | None:
        return self._nodes.get(node_id)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def nodes(self, type_: str | None = None) -> Iterator[Node]:
        for node in self._nodes.values():
            if type_ is None or node.type == type_:
                yield node

    def children(self, owner_id: str, type_: str) -> list[Node]:
        """Children of ``owner_id`` of ``type_`` in creation order (direct or through ancestors)."""
        ids = self._children.get((owner_id, type_), {})
        return [self._nodes[i] for i in ids]

    def parent(self, node: Node) -> Node | None:
        return self._nodes.get(node.parent_id) if node.parent_id else None

    def campaign_of(self, node: Node) -> Node | None:
        current: Node | None = node
        while current is not None and current.type != CAMPAIGN:
            current = self.parent(current)
        return current

    def snapshot(self, types: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """A deep copy of stored objects for inspection (tests, ``/__sim__/store``)."""
        wanted = set(types) if types else None
        return [
            {
                "id": n.id,
                "type": n.type,
                "account_id": n.account_id,
                "parent_id": n.parent_id,
                **copy.deepcopy(n.data),
            }
            for n in self._nodes.values()
            if wanted is None or n.type in wanted
        ]


# --- cursor pagination (S003 §Paginated Results) --------------------------------------------------
def encode_cursor(node_id: str) -> str:
    return base64.urlsafe_b64encode(node_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str | None:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return text if text.isdigit() or text.startswith("act_") else None
