"""Pack ready operations into Graph batches that respect the documented limits.

Rules (each enforced for every batch this module emits):

1. At most 50 operations -- S003 §Batch Requests → Limitations ("limited to 50 requests per
   batch"; also §Asynchronous and Batch Requests).
2. At most 10 ad creations -- S003 §Asynchronous and Batch Requests ("For ad creation you should
   only have 10 or less ads per batch"); counted over :data:`AD_CREATING_KINDS`.
3. Never two ad sets of the same campaign -- S003 §Batch Requests → Limitations ("Batch requests
   cannot include multiple Adsets under the same Campaign"). Campaign identity is
   ``Operation.campaign_key`` if given, else ``params["campaign_id"]``: a literal id, or a
   :class:`Ref` (its op id while the campaign is unresolved, the real id once it succeeded, so a
   literal and a resolved reference to the same campaign also collide).
4. One ad account per batch, so the governor can pace per (account, BUC type) -- "all endpoints
   with the Ads Management business use case will share the total quota within the same ad
   account" (S003 §Rate Limits → Business Use Case Rate Limits).
4b. Image bytes within ``BatchLimits.max_upload_bytes`` per batch (multipart parts referenced by
   ``attached_files``, S003 §Batch Requests → Upload Binary Data): several uploads share a batch up to
   the budget; one upload larger than the budget goes in a batch of its own.
5. Dependency chains stay in one batch when they fit: an operation joins its parent's batch,
   after it, only if *all* its unresolved dependencies are in that batch; the server resolves
   ``{result=NAME:$.path}`` (S003 §Batch Requests → Complex Batch Requests). Otherwise it waits
   until its parents succeeded and its references are substituted locally with real values.

Packing: :mod:`bulk_engine.planning.packing` (one pass per account, O(n + edges); chains kept together,
constrained kinds first, ops deferred to seed new batches rather than splitting chains).

Capped calls (``max_per_account``, the runner asks for as many batches as it may send): a pass
packs a bounded window of the ready queue, emits the cap and *holds* the other complete batches
(full, or saturated with ad creations) for the next calls, so a runner asking for one or two
batches at a time does not re-pack the same window again and again (scenario T, 1,000 trees through
the runner: 2 packing passes instead of 41, ~17x less planning work).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bulk_engine.planning.graph import DRY_RUN_RESULT, DependencyGraph, OpState
from bulk_engine.planning.operation import AD_CREATING_KINDS, Operation, OpKind
from bulk_engine.planning.packing import AccountPacker, BatchDraft, BatchLimits, upload_bytes
from bulk_engine.protocol.batch import BatchOp
from bulk_engine.protocol.refs import Ref, render_ref, substitute

__all__ = ["BatchLimits", "Batcher", "PlannedBatch", "plan_all", "upload_bytes"]

_SAFE_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,100}")


@dataclass(frozen=True)
class PlannedBatch:
    """A batch ready to send: one account, ops in dependency order.

    ``names`` maps the op ids referenced by later ops *of this batch* to their batch ``name``.
    Render with :meth:`to_batch_ops` right before sending.
    """

    account_id: str
    ops: tuple[Operation, ...]
    names: Mapping[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ops)

    @property
    def op_ids(self) -> tuple[str, ...]:
        return tuple(op.op_id for op in self.ops)

    def ad_creates(self, kinds: Collection[OpKind] = AD_CREATING_KINDS) -> int:
        return sum(1 for op in self.ops if op.kind in kinds)

    def to_batch_ops(self, resolve: Callable[[Ref], Any]) -> list[BatchOp]:
        """Wire ops for :func:`~bulk_engine.protocol.batch.encode_batch`, same order as ``ops``.

        References to ops of this batch become ``{result=NAME:$.path}``; all others are resolved
        with ``resolve`` (normally :meth:`DependencyGraph.resolve_ref`).
        """
        names = self.names

        def resolver(ref: Ref) -> Any:
            name = names.get(ref.op_id)
            if name is not None:
                return render_ref(name, ref.path)
            return resolve(ref)

        wire: list[BatchOp] = []
        for op in self.ops:
            raw_path = op.path
            if type(raw_path) is str:
                path = raw_path.strip("/")
            else:
                path = "/".join(
                    _path_text(resolver(part)) if isinstance(part, Ref) else part.strip("/")
                    for part in op.path_parts
                )
            name = names.get(op.op_id)
            wire.append(
                BatchOp(
                    method=op.method,
                    relative_url=path,
                    # Without references the params go out as they are (encoding never mutates them).
                    params=_substitute_params(op.params, resolver) if op.refs else op.params,
                    name=name,
                    omit_response_on_success=False if name is not None else None,
                    attached_files=_attached(op),
                )
            )
        return wire


_SCALARS = (str, int, float, bool, type(None))


def _substitute_params(params: Mapping[str, Any], resolver: Callable[[Ref], Any]) -> dict[str, Any]:
    """:func:`~bulk_engine.protocol.refs.substitute` for one op's params, without walking the
    values that cannot hold a reference (most of them: names, statuses, budgets)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        kind = type(value)
        if kind is Ref:
            out[key] = resolver(value)
        elif kind in _SCALARS:
            out[key] = value
        else:
            out[key] = substitute(value, resolver)
    return out


def _path_text(value: Any) -> str:
    return str(value).strip("/")


def _attached(op: Operation) -> tuple[str, ...]:
    upload = op.upload
    return (upload.part,) if upload is not None and upload.path is not None else ()


class Batcher:
    """Claims ready operations of a :class:`DependencyGraph` and packs them into batches.

    Runner protocol (the graph is not thread-safe: touch it from one task)::

        batches = batcher.next_batches(accounts=not_throttled, flush=account_idle)
        # Every returned batch depends only on operations that already SUCCEEDED: send them in
        # any order, concurrently. Their operations are now IN_FLIGHT.
        wire = batcher.render(batch)                       # refs → {result=..} or real values
        items = decode_batch_response(text, len(wire), http_status=status)
        for op, item in zip(batch.ops, items):             # in request order: parents first
            if graph.state(op.op_id) is not OpState.IN_FLIGHT:
                continue                                   # skipped by an earlier cascade
            if an in-batch parent was requeued:  graph.requeue(op.op_id)   # whatever it says
            elif item.ok:                        graph.mark_succeeded(op.op_id, item.body)
            elif transient / throttled / null:   graph.requeue(op.op_id)   # reconcile creates first
            else:                                graph.mark_failed(op.op_id, reason)
        # every mark_* returns the Cascade of dependents it failed or skipped: report them too.
    """

    def __init__(self, graph: DependencyGraph, limits: BatchLimits | None = None) -> None:
        self.graph = graph
        self.limits = limits or BatchLimits()
        self._view = graph.planning_view()
        # Complete batches (full or saturated with ad creations) that a capped pass packed beyond its
        # cap, per account, oldest first. Their operations stay PENDING; they are emitted by later
        # calls before anything is packed afresh, so a runner asking for a few batches per call does
        # not re-pack the same ready window again and again.
        self._held: dict[str, deque[BatchDraft]] = {}

    def render(self, batch: PlannedBatch) -> list[BatchOp]:
        return batch.to_batch_ops(self.graph.resolve_ref)

    def next_batches(
        self,
        *,
        accounts: Iterable[str] | None = None,
        flush: bool = True,
        max_per_account: int | None = None,
    ) -> list[PlannedBatch]:
        """Pack currently ready operations (plus dependents that can ride along) into batches.

        Emitted operations are marked IN_FLIGHT; batches of one call are independent of each other
        and of everything still in flight. ``accounts`` restricts planning (e.g. to accounts that
        are not throttled). With ``flush=False`` only batches that are full (``max_ops``) or
        saturated with ad creations are emitted and the rest stays PENDING, to be packed with
        operations that become ready later: pass ``flush=True`` when the account has nothing in
        flight (otherwise nothing more will become ready). ``max_per_account`` caps the batches
        emitted per account; surplus operations stay PENDING, and complete batches a pass packed
        beyond the cap are held (ops still PENDING) and emitted first by the next calls, as long as
        none of their ops changed state meanwhile. Cost: O(ready ops + edges touched) per packing
        pass; a call served from held batches costs O(ops emitted).
        """
        graph = self.graph
        chosen = graph.ready_accounts() if accounts is None else list(accounts)
        out: list[PlannedBatch] = []
        for account in chosen:
            bins = self._take_held(account, max_per_account)
            self._emit(account, bins, out)  # claimed before packing: a fresh pass must not see them
            want = None if max_per_account is None else max_per_account - len(bins)
            if want is None or want > 0:
                fresh, spare = self._pack_account(account, flush, want)
                self._emit(account, fresh, out)
                if spare:
                    self._held.setdefault(account, deque()).extend(spare)
        return out

    def _emit(self, account: str, bins: list[BatchDraft], out: list[PlannedBatch]) -> None:
        claim = self._view.claim
        for b in bins:
            claim(account, [op.op_id for op in b.ops])
            out.append(PlannedBatch(account_id=account, ops=tuple(b.ops), names=_names(b.ops)))

    # ------------------------------------------------------------------ packing

    def _take_held(self, account: str, cap: int | None) -> list[BatchDraft]:
        """Up to ``cap`` held batches of ``account`` that are still valid, oldest first.

        A held batch stays valid while every one of its operations is PENDING: its dependencies
        outside the batch had succeeded when it was packed (terminal, so they still have), the
        others are in the batch. If one of its operations was skipped, failed or claimed meanwhile,
        the batch is dropped and its remaining operations are packed afresh.
        """
        queue = self._held.get(account)
        out: list[BatchDraft] = []
        if not queue:
            return out
        state = self._view.states
        pending = OpState.PENDING
        while queue and (cap is None or len(out) < cap):
            b = queue.popleft()
            if all(state.get(op.op_id) is pending for op in b.ops):
                out.append(b)
        if not queue:
            del self._held[account]
        return out

    def _pack_account(
        self, account: str, flush: bool, max_batches: int | None
    ) -> tuple[list[BatchDraft], list[BatchDraft]]:
        """One packing pass: (batches to emit, complete batches packed beyond ``max_batches``)."""
        packer = AccountPacker(self._view, self.limits, account, self.graph.resolve_ref)
        return packer.pack(flush, max_batches)


def _names(ops: Iterable[Operation]) -> dict[str, str]:
    """Batch names for ops referenced inside the batch: the op id when it is safe to embed in
    ``{result=NAME:...}``, otherwise positional names ``op<i>`` for the whole batch."""
    ops = list(ops)
    members = {op.op_id: i for i, op in enumerate(ops)}
    referenced = [
        ref_id for ref_id in dict.fromkeys(ref.op_id for op in ops for ref in op.refs) if ref_id in members
    ]
    if all(_SAFE_NAME.fullmatch(ref_id) for ref_id in referenced):
        return {ref_id: ref_id for ref_id in referenced}
    return {ref_id: f"op{members[ref_id]}" for ref_id in referenced}


def plan_all(operations: Iterable[Operation], limits: BatchLimits | None = None) -> list[PlannedBatch]:
    """Plan a whole job assuming every operation succeeds (dry runs, estimates, benchmarks).

    Returns the batches in a valid sending order: each batch depends only on earlier batches.
    """
    graph = DependencyGraph(operations)
    batcher = Batcher(graph, limits)
    planned: list[PlannedBatch] = []
    while not graph.is_finished:
        batches = batcher.next_batches()
        if not batches:  # pragma: no cover - impossible for a validated acyclic graph
            raise RuntimeError("planning stalled with unfinished operations")
        for batch in batches:
            for op in batch.ops:
                graph.mark_succeeded(op.op_id, DRY_RUN_RESULT)
        planned.extend(batches)
    return planned
