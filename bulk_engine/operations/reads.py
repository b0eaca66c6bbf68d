"""Reads through the engine: edges with cursor pagination, and nodes by id.

Every read is a ``GET`` :class:`~bulk_engine.planning.graph.Operation` (kind ``read``), so reads are batched
(50 per HTTP request), paced by the governor and retried like writes. Pagination follows S003 §Paginated
Results: request the next page with ``after=paging.cursors.after`` while ``paging.next`` exists ("Stop paging
when the next link no longer appears"; a page may be empty yet have ``next``). Many edges are read in rounds:
each round sends the next page of every edge that has one, in one engine job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bulk_engine.planning.graph import Operation, OpKind
from bulk_engine.results import Outcome, OutcomeState

from .base import EngineLike
from .task import TaskReport

__all__ = ["EdgeRead", "ReadResult", "read_edges", "read_nodes"]

PAGE_SIZE = 500
MAX_PAGES = 100_000


@dataclass(frozen=True)
class EdgeRead:
    """One edge to read completely: ``GET path?fields=…&limit=…`` and its following pages."""

    key: str
    path: str
    account_id: str
    params: Mapping[str, Any] = field(default_factory=dict)
    max_items: int | None = None


@dataclass
class ReadResult:
    items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    errors: dict[str, Outcome] = field(default_factory=dict)
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)


async def read_edges(
    engine: EngineLike,
    reads: Sequence[EdgeRead],
    report: TaskReport,
    *,
    op_prefix: str,
    page_size: int = PAGE_SIZE,
) -> ReadResult:
    """Read every edge of ``reads`` to its end (or ``max_items``); failures land in ``errors`` by key."""
    out = ReadResult()
    pending: dict[str, tuple[EdgeRead, str | None]] = {}
    for read in reads:
        out.items[read.key] = []
        pending[read.key] = (read, None)
    page = 0
    while pending and page < MAX_PAGES:
        ops: list[Operation] = []
        for key, (read, after) in pending.items():
            params: dict[str, Any] = {**read.params, "limit": page_size}
            if read.max_items is not None:
                params["limit"] = max(1, min(page_size, read.max_items - len(out.items[key])))
            if after is not None:
                params["after"] = after
            ops.append(
                Operation(
                    op_id=f"{op_prefix}/{key}/p{page}",
                    method="GET",
                    path=read.path,
                    params=params,
                    account_id=read.account_id,
                    kind=OpKind.READ,
                )
            )
        outcomes = await report.run(engine, ops)
        following: dict[str, tuple[EdgeRead, str | None]] = {}
        for key, (read, _) in pending.items():
            outcome = outcomes.get(f"{op_prefix}/{key}/p{page}")
            if (
                outcome is None
                or outcome.state is not OutcomeState.SUCCEEDED
                or not isinstance(outcome.result, dict)
            ):
                if outcome is not None:
                    out.errors[key] = outcome
                continue
            body = outcome.result
            data = body.get("data")
            if isinstance(data, list):
                out.items[key].extend(item for item in data if isinstance(item, dict))
            if isinstance(body.get("summary"), dict):
                out.summaries[key] = body["summary"]
            raw_paging = body.get("paging")
            paging: dict[str, Any] = raw_paging if isinstance(raw_paging, dict) else {}
            raw_cursors = paging.get("cursors")
            cursors: dict[str, Any] = raw_cursors if isinstance(raw_cursors, dict) else {}
            after = cursors.get("after")
            full = read.max_items is not None and len(out.items[key]) >= read.max_items
            if paging.get("next") and after and not full:
                following[key] = (read, str(after))
        pending = following
        page += 1
    return out


async def read_nodes(
    engine: EngineLike,
    ids: Sequence[str],
    fields: str,
    account_id: str,
    report: TaskReport,
    *,
    op_prefix: str,
) -> ReadResult:
    """``GET /<id>?fields=…`` for every id, in one engine job; ``items[id] == [node]`` on success."""
    out = ReadResult()
    unique = list(dict.fromkeys(ids))
    ops = [
        Operation(
            op_id=f"{op_prefix}/{object_id}",
            method="GET",
            path=object_id,
            params={"fields": fields},
            account_id=account_id,
            kind=OpKind.READ,
        )
        for object_id in unique
    ]
    outcomes = await report.run(engine, ops) if ops else {}
    for object_id in unique:
        outcome = outcomes.get(f"{op_prefix}/{object_id}")
        if (
            outcome is not None
            and outcome.state is OutcomeState.SUCCEEDED
            and isinstance(outcome.result, dict)
        ):
            out.items[object_id] = [outcome.result]
        elif outcome is not None:
            out.errors[object_id] = outcome
    return out
