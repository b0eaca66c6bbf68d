"""Pack ready operations into Meta async request sets, and choose between the sync and async backends.

Rules (S003 §Asynchronous and Batch Requests → Batch API; §Ad Account Async Batch Requests):

1. At most ``max_requests`` (≤ 1,000: "Each API call can have a maximum of 1000 requests") per set.
2. POST requests only ("Provide an array of HTTP POST requests"): the ad-object creates (campaigns, ad
   sets, creatives, ads), copies and updates (:data:`ASYNC_KINDS`); reads, deletes, image uploads
   (multipart) and other creates (``CREATE_OTHER``: marketing messages, ``act/messages``,
   ``act/message_campaign``, which the async batch pages do not document) stay on the sync path.
3. One ad account per set (the endpoint is ``act_<id>/async_batch_requests``; pacing is per account).
4. Dependency chains stay in one set: "Facebook processes each independent operation in parallel processes
   and your dependent operations sequentially", so a child joins its parents' set (its references become
   ``{result=NAME:$.id}``) when all its unresolved parents are in it; a parent of a pulled child that is
   itself ready joins first (a creative meets its ad set's ad). A chain that does not fit waits for the set
   holding its parents to complete, and goes out with their real ids.
5. A tree is not split between sets when it fits a fresh one: a root whose subtree does not fit the room
   left starts the next set.

The sync batch rules "10 ads per batch" and "never two ad sets of one campaign per batch" are about the
sync batch endpoint (S003 §Batch Requests → Limitations) and do not apply to request sets.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from .batcher import PlannedBatch
from .graph import AD_CREATING_KINDS, DependencyGraph, Operation, OpKind, OpState

__all__ = ["ASYNC_KINDS", "BackendChoice", "choose_backend", "next_request_set", "request_names"]

ASYNC_KINDS = frozenset(
    {
        OpKind.CREATE_CAMPAIGN,
        OpKind.CREATE_ADSET,
        OpKind.CREATE_CREATIVE,
        OpKind.CREATE_AD,
        OpKind.COPY,
        OpKind.COPY_ADSET,
        OpKind.COPY_AD,
        OpKind.UPDATE,
    }
)
_CREATE_OR_COPY = ASYNC_KINDS - {OpKind.UPDATE}
_MAX_ANCESTOR_DEPTH = 4
POLLS_PER_SET = 6  # the estimate auto uses: a set is read ~6 times with doubling waits before it completes


def request_names(ops: Sequence[Operation]) -> dict[str, str]:
    """Every op of a set gets a request name (its results are matched by name): the op id when it is
    safe inside ``{result=NAME:$.id}`` and unique, else ``op<i>``."""
    names: dict[str, str] = {}
    for i, op in enumerate(ops):
        safe = op.op_id.replace("-", "").replace("_", "").replace(".", "").isalnum() and len(op.op_id) <= 100
        names[op.op_id] = op.op_id if safe and op.op_id.isascii() else f"op{i}"
    if len(set(names.values())) != len(names):  # an op id looking like another's positional name
        names = {op.op_id: f"op{i}" for i, op in enumerate(ops)}
    return names


def next_request_set(
    graph: DependencyGraph,
    account_id: str,
    *,
    max_requests: int,
    min_requests: int,
    eligible: Callable[[Operation], bool],
) -> PlannedBatch | None:
    """Claim (mark IN_FLIGHT) and return the account's next request set, or ``None`` when fewer than
    ``min_requests`` ops can go (they are left to the sync batches). Ops are in dependency order."""
    placed: dict[str, Operation] = {}
    state = graph.state

    def place(op: Operation, depth: int, room: int) -> bool:
        if op.op_id in placed:
            return True
        if len(placed) >= room or op.account_id != account_id or not eligible(op):
            return False
        if state(op.op_id) is not OpState.PENDING:
            return False
        for dep in sorted(op.dependencies):
            if dep in placed or state(dep) is OpState.SUCCEEDED:
                continue
            if depth >= _MAX_ANCESTOR_DEPTH or state(dep) is not OpState.PENDING:
                return False
            if not place(graph.operation(dep), depth + 1, room):
                return False
        if len(placed) >= room:
            return False
        placed[op.op_id] = op
        return True

    def subtree(root: Operation, room: int) -> None:
        queue = [root]
        while queue and len(placed) < room:
            parent = queue.pop(0)
            for child in graph.dependents(parent.op_id):
                if child in placed or child not in graph or state(child) is not OpState.PENDING:
                    continue
                if place(graph.operation(child), 0, room):
                    queue.append(graph.operation(child))

    for root in graph.ready_ops(account_id):
        if len(placed) >= max_requests:
            break
        if root.op_id in placed or not eligible(root):
            continue
        before = dict(placed)
        if not place(root, 0, max_requests):
            continue
        subtree(root, max_requests)
        if len(placed) >= max_requests and before and _has_pending_children(graph, placed, root):
            placed = before  # the tree does not fit the room left: it starts the next set whole
            break
    if len(placed) < min_requests:
        return None
    ops = tuple(placed.values())
    graph.mark_in_flight(op.op_id for op in ops)
    return PlannedBatch(account_id=account_id, ops=ops, names=request_names(ops))


def _has_pending_children(graph: DependencyGraph, placed: dict[str, Operation], root: Operation) -> bool:
    """Whether some descendant of ``root`` was left out of the set (the set filled up mid-tree)."""
    stack = [root.op_id]
    seen: set[str] = set()
    while stack:
        op_id = stack.pop()
        for child in graph.dependents(op_id):
            if child in seen or child not in graph:
                continue
            seen.add(child)
            if child not in placed and graph.state(child) is OpState.PENDING:
                return True
            stack.append(child)
    return False


@dataclass(frozen=True, slots=True)
class BackendChoice:
    """Which backend a run uses and why (shown in the result and the report)."""

    backend: Literal["sync", "async"]
    reason: str


def choose_backend(
    requested: str,
    ops: Sequence[Operation] | None,
    *,
    max_requests: int,
    auto_min_ops: int,
    max_batch_ops: int,
    max_ads_per_batch: int,
    streamed: bool = False,
) -> BackendChoice:
    """``sync`` and ``async`` are taken as asked; ``auto`` counts the creates/copies of ``ops`` (the whole job,
    or a streamed job's first window: ``streamed``) and picks async when it needs fewer HTTP requests.

    Estimate: sync needs at least ``max(ceil(n / 50), ceil(ads / 10))`` batch requests (the batcher meets
    this bound on flat jobs and trees, ``planning/batcher.py``); async needs ``ceil(n / 1000)`` sets × (a
    submit, :data:`POLLS_PER_SET` polls and one results read per 1,000 requests).
    """
    if requested == "sync":
        return BackendChoice("sync", "sync: as configured")
    if requested == "async":
        return BackendChoice("async", "async: as configured")
    if ops is None:
        return BackendChoice("sync", "auto → sync: no operations to count")
    where = " in its first window" if streamed else ""
    creates = [op for op in ops if op.kind in _CREATE_OR_COPY and op.method == "POST"]
    n = len(creates)
    if n < auto_min_ops:
        return BackendChoice(
            "sync",
            f"auto → sync: {n} creates/copies{where}, fewer than {auto_min_ops} (batches answer at once)",
        )
    ads = sum(1 for op in creates if op.kind in AD_CREATING_KINDS)
    sync_requests = max(math.ceil(len(ops) / max_batch_ops), math.ceil(ads / max_ads_per_batch))
    sets = math.ceil(n / max_requests)
    async_requests = sets * (2 + POLLS_PER_SET) + math.ceil((len(ops) - n) / max_batch_ops)
    if async_requests >= sync_requests:
        return BackendChoice(
            "sync",
            f"auto → sync: {n} creates/copies{where} need ≥ {sync_requests} batch requests, about as few as "
            f"~{async_requests} for {sets} async request sets",
        )
    return BackendChoice(
        "async",
        f"auto → async: {n} creates/copies{where} in {sets} request sets ≈ {async_requests} HTTP requests instead of "
        f"≥ {sync_requests} sync batches",
    )
