"""One packing pass: an account's ready operations → batches within :class:`BatchLimits`.

The rules every batch keeps are listed in :mod:`bulk_engine.planning.batcher` (which runs the passes,
claims what they pack and holds what a capped call does not emit). How a pass packs (per account,
O(n + edges); ``BatchLimits.open_batches`` batches stay open):

* Ready operations are taken in readiness order, ad-creating and ad-set kinds first (they decide
  how many batches are needed; the rest fills the room they leave).
* For each one the planner surveys its chain (pending same-account descendants, capped at one
  batch) and picks: the open batch that already holds another parent of a descendant (so
  ``creative`` and ``ad set`` meet their ``ad``) if the whole chain fits there; else the first open
  batch where it fits; else a new batch while fewer than ``open_batches`` are open; else, if the
  chain needs ad capacity no open batch has, the operation is *deferred* and seeds the next new
  batch; else the chain is split (first batch that takes the operation itself).
* After each placement, dependents are pulled into the same batch, bringing along pending
  ancestors that are not placed anywhere yet (bounded), so the result does not depend on the
  order in which the job lists its operations.

Measured (tests assert the bounds): flat jobs and flat ads/updates mixes hit the lower bound
``max(ceil(n / 50), ceil(ads / 10))`` exactly; 1,000 campaign → ad set → creative → ad trees take
100 batches of 40 (bound 100) with every chain kept in one batch, ~104 when the job lists its
operations in random order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import chain, islice
from typing import Any

from bulk_engine.planning.graph import GraphView, OpState
from bulk_engine.planning.operation import AD_CREATING_KINDS, ADSET_CREATING_KINDS, Operation, OpKind
from bulk_engine.protocol.batch import MAX_BATCH_OPS
from bulk_engine.protocol.refs import Ref

__all__ = ["AccountPacker", "BatchDraft", "BatchLimits", "campaign_identity", "upload_bytes"]

_MAX_ANCESTOR_DEPTH = 3
_MAX_ANCESTORS = 8

Need = tuple[int, int]
"""What keeping a chain in one batch takes: (operations, ad creations)."""


@dataclass(frozen=True)
class BatchLimits:
    """Per-batch limits. Defaults are the documented maxima; lower them, never raise them."""

    max_ops: int = MAX_BATCH_OPS
    max_ad_creates: int = 10
    ad_create_kinds: frozenset[OpKind] = AD_CREATING_KINDS
    adset_kinds: frozenset[OpKind] = ADSET_CREATING_KINDS
    open_batches: int = 8
    """How many partially filled batches per account stay open while packing (packing quality
    vs. work per operation)."""
    max_upload_bytes: int = 32 * 1024 * 1024
    """Upload bytes (``Operation.upload``) one batch request may carry."""

    def __post_init__(self) -> None:
        if not 1 <= self.max_ops <= MAX_BATCH_OPS:
            raise ValueError(f"max_ops must be within 1..{MAX_BATCH_OPS}")
        if self.max_ad_creates < 1:
            raise ValueError("max_ad_creates must be >= 1")
        if self.open_batches < 1:
            raise ValueError("open_batches must be >= 1")
        if self.max_upload_bytes < 1:
            raise ValueError("max_upload_bytes must be >= 1")


def upload_bytes(op: Operation) -> int:
    """Bytes ``op``'s upload adds to its batch request (0 for every other operation)."""
    return op.upload.wire_bytes if op.upload is not None else 0


class BatchDraft:
    """A batch under construction (mutable, private to one planning pass and the batcher)."""

    __slots__ = ("ads", "campaigns", "closed", "ops", "upload_bytes")

    def __init__(self) -> None:
        self.ops: list[Operation] = []
        self.ads = 0
        self.upload_bytes = 0
        self.campaigns: set[str] = set()
        self.closed = False


class AccountPacker:
    """One packing pass over one account's ready operations; build one per pass, call :meth:`pack`.

    The attributes are the pass's working state: which batch each operation went to (``placed``), the
    batches still open (``open_drafts``) and those already closed (``emitted``), and the operations
    waiting for a new batch (``deferred_ads``, ``deferred_adsets``). The graph's tables and the limits
    are copied to attributes too: the loops below read them once per edge.
    """

    __slots__ = (
        "_campaign_keys",
        "_needs",
        "account",
        "ad_kinds",
        "adset_kinds",
        "deferred_ads",
        "deferred_adsets",
        "dependents",
        "emitted",
        "limits",
        "max_ads",
        "max_bytes",
        "max_ops",
        "open_drafts",
        "operations",
        "placed",
        "ready",
        "resolve",
        "states",
    )

    def __init__(
        self, view: GraphView, limits: BatchLimits, account: str, resolve: Callable[[Ref], Any]
    ) -> None:
        self.operations = view.operations
        self.states = view.states
        self.dependents = view.dependents
        self.ready = view.ready
        self.limits = limits
        self.account = account
        self.resolve = resolve
        self.max_ops = limits.max_ops
        self.max_ads = limits.max_ad_creates
        self.ad_kinds = limits.ad_create_kinds
        self.adset_kinds = limits.adset_kinds
        self.max_bytes = limits.max_upload_bytes
        self.placed: dict[str, BatchDraft] = {}
        self.open_drafts: list[BatchDraft] = []
        self.emitted: list[BatchDraft] = []
        # Ready ops whose chain needs ad capacity no open batch has, and ad sets whose campaign is
        # in every open batch, wait here and seed the next new batch: the order of the input then
        # does not decide how well batches fill, and chains are not split to use leftover room.
        self.deferred_ads: deque[Operation] = deque()
        self.deferred_adsets: dict[str, deque[Operation]] = {}
        self._campaign_keys: dict[str, str | None] = {}
        self._needs: dict[str, Need] = {}

    # ------------------------------------------------------------------ the pass, step by step

    def pack(self, flush: bool, max_batches: int | None) -> tuple[list[BatchDraft], list[BatchDraft]]:
        """Batches to emit, and the complete batches packed beyond ``max_batches`` (to hold)."""
        operations = self.operations
        placed = self.placed
        emitted = self.emitted
        for op_id in self._ready_in_order(max_batches):
            if max_batches is not None and len(emitted) >= max_batches:
                break
            if op_id in placed:
                continue
            self._place_ready(operations[op_id])
        else:
            self._drain_deferred()
        return self._select(flush, max_batches)

    def _ready_in_order(self, max_batches: int | None) -> Iterator[str]:
        """The account's ready op ids, constrained kinds first.

        Constrained ops first: they decide how many batches are needed; the unconstrained ones
        then fill the remaining room (otherwise "4000 updates, then 1000 ads" packs 80 full
        batches of updates plus 100 batches of 10 ads instead of 100 batches in all).
        With a cap on emitted batches only a bounded window of the ready queue is considered, so a
        runner asking for one batch at a time does not pay for the whole queue on every call.
        """
        operations = self.operations
        ready: Iterable[str] = self.ready.get(self.account, {})
        if max_batches is not None:
            ready = list(islice(ready, (max_batches + self.limits.open_batches) * self.max_ops * 2))
        constrained = self.ad_kinds | self.adset_kinds
        first = [op_id for op_id in ready if operations[op_id].kind in constrained]
        if not first:
            return iter(ready)
        rest = (op_id for op_id in ready if operations[op_id].kind not in constrained)
        return chain(first, rest)

    def _place_ready(self, op: Operation) -> None:
        """Put a ready operation where :meth:`_choose` says (a new batch is seeded from the deferred
        queues, a full one closed), or defer it."""
        target = self._choose(op)
        if target is None:
            self._defer(op)
            return
        fresh = not target.ops
        self._put(op, target)
        if fresh:
            self._seed(target)
        if len(target.ops) >= self.max_ops:
            self._close(target)

    def _choose(self, op: Operation) -> BatchDraft | None:
        """Where ``op`` goes; ``None`` = defer it (see the module docstring)."""
        need, homes = self._survey(op)
        self._needs[op.op_id] = need
        need_ops, need_ads = need
        max_ops, max_ads = self.max_ops, self.max_ads
        open_drafts = self.open_drafts
        # 1. the open batch holding another parent of one of its descendants, if the chain fits
        for b in homes:
            if self._fits(b, op) and self._room(b, need):
                return b
        # 2. the first open batch with room for the whole chain
        for b in open_drafts:
            if len(b.ops) + need_ops <= max_ops and b.ads + need_ads <= max_ads and self._fits(b, op):
                return b
        # 3. a new batch, while fewer than ``open_batches`` are open
        if len(open_drafts) < self.limits.open_batches:
            return self._new_batch()
        # 4. the chain needs ad capacity no open batch has: wait for a new batch
        if need_ads:
            for b in open_drafts:
                if b.ads + need_ads <= max_ads:
                    break
            else:
                return None
        # 5. split the chain: the first open batch that takes the op itself
        for b in open_drafts:
            if self._fits(b, op):
                return b
        return None

    def _defer(self, op: Operation) -> None:
        """Queue an operation no open batch can take for the next new batch: an ad set whose campaign is
        already in an open batch (and whose chain needs no ad capacity) waits in its campaign's queue, so
        ad sets of one campaign seed successive batches; anything else waits in order."""
        key = self._campaign_key(op) if op.kind in self.adset_kinds else None
        if key is not None and any(key in b.campaigns for b in self.open_drafts) and not self._demand(op)[1]:
            self.deferred_adsets.setdefault(key, deque()).append(op)
        else:
            self.deferred_ads.append(op)

    def _drain_deferred(self) -> None:
        """Once the ready queue is through, open new batches for what was deferred until none is left."""
        deferred_ads, deferred_adsets = self.deferred_ads, self.deferred_adsets
        # Each round places or drops (already placed as a co-parent) at least one deferred op.
        budget = len(deferred_ads) + sum(len(q) for q in deferred_adsets.values()) + 1
        while deferred_ads or deferred_adsets:
            budget -= 1
            if budget < 0:  # pragma: no cover - guarded invariant
                raise RuntimeError("batch packing made no progress")
            b = self._new_batch()
            self._seed(b)
            if not b.ops:
                self.open_drafts.remove(b)
            elif len(b.ops) >= self.max_ops:
                self._close(b)

    def _select(self, flush: bool, max_batches: int | None) -> tuple[list[BatchDraft], list[BatchDraft]]:
        """What the pass emits: the closed batches, then the open ones (all of them with ``flush``, else
        only those saturated with ad creations).

        Beyond ``max_batches`` the complete batches are returned apart, for the batcher to hold for the
        next calls; partial ones are released (their ops stay PENDING) so they can be packed together
        with ops that become ready later.
        """
        emitted = self.emitted
        max_ads = self.max_ads
        emitted.extend(self.open_drafts if flush else (b for b in self.open_drafts if b.ads >= max_ads))
        if max_batches is None or len(emitted) <= max_batches:
            return emitted, []
        spare = [b for b in emitted[max_batches:] if len(b.ops) >= self.max_ops or b.ads >= max_ads]
        for b in spare:
            b.closed = True
        return emitted[:max_batches], spare

    # ------------------------------------------------------------------ placing

    def _put(self, op: Operation, b: BatchDraft) -> None:
        """Place ``op`` and pull its dependents after it."""
        self._place(op, b)
        self._pull(op, b)

    def _place(self, op: Operation, b: BatchDraft) -> None:
        """Append ``op`` to ``b`` and count it toward ``b``'s limits (ads, upload bytes, campaigns)."""
        b.ops.append(op)
        self.placed[op.op_id] = b
        if op.upload is not None:
            b.upload_bytes += upload_bytes(op)
        kind = op.kind
        if kind in self.ad_kinds:
            b.ads += 1
        if kind in self.adset_kinds:
            key = self._campaign_key(op)
            if key is not None:
                b.campaigns.add(key)

    def _pull(self, root: Operation, b: BatchDraft) -> None:
        """Add dependents whose unresolved deps are all in ``b`` (depth-first, keeps chains).

        A dependent still missing pending ancestors that are not placed anywhere yet (e.g. the
        ad set + campaign of an ad whose creative was just placed) brings them along, so
        chains do not depend on the order in which the job lists its operations.
        """
        operations, states, dependents = self.operations, self.states, self.dependents
        placed, account, max_ops = self.placed, self.account, self.max_ops
        pending = OpState.PENDING
        stack = [root.op_id]
        while stack:
            children = dependents.get(stack.pop())
            if not children:
                continue
            for child_id in children:
                if states[child_id] is not pending or child_id in placed:
                    continue
                child = operations[child_id]
                if child.account_id != account:
                    continue
                missing = self._missing_ancestors(child, b)
                if missing is None:
                    continue
                if missing:
                    if not self._fits_group(b, [*missing, child]):
                        continue
                    for parent in missing:
                        self._place(parent, b)
                        stack.append(parent.op_id)
                elif not self._fits(b, child):
                    continue
                self._place(child, b)
                if len(b.ops) >= max_ops:
                    return
                stack.append(child_id)

    def _missing_ancestors(self, child: Operation, b: BatchDraft) -> list[Operation] | None:
        """Unplaced pending ancestors ``child`` still needs in ``b`` (parents first), or
        ``None`` if one is in flight, in another batch, in another account, or too far away."""
        out: list[Operation] = []
        return out if self._visit_ancestors(child, 0, b, out, set()) else None

    def _visit_ancestors(
        self, op: Operation, depth: int, b: BatchDraft, out: list[Operation], seen: set[str]
    ) -> bool:
        """Depth-first step of :meth:`_missing_ancestors`; ``False`` = the child cannot join ``b``."""
        states, placed = self.states, self.placed
        succeeded, pending = OpState.SUCCEEDED, OpState.PENDING
        for dep in sorted(op.dependencies):  # sorted: a frozenset's order changes with PYTHONHASHSEED
            if dep in seen or states[dep] is succeeded or placed.get(dep) is b:
                continue
            if dep in placed or states[dep] is not pending or depth >= _MAX_ANCESTOR_DEPTH:
                return False
            parent = self.operations[dep]
            if parent.account_id != self.account:
                return False
            seen.add(dep)
            if not self._visit_ancestors(parent, depth + 1, b, out, seen):
                return False
            out.append(parent)
            if len(out) > _MAX_ANCESTORS:
                return False
        return True

    def _seed(self, b: BatchDraft) -> None:
        """Fill a new batch from the deferred queues (bounded scan; skipped ops keep their turn)."""
        deferred_ads, deferred_adsets, placed = self.deferred_ads, self.deferred_adsets, self.placed
        max_ops, max_ads = self.max_ops, self.max_ads
        skipped: list[Operation] = []
        scanned = 0
        while deferred_ads and len(b.ops) < max_ops and b.ads < max_ads and scanned < max_ops:
            op = deferred_ads.popleft()
            scanned += 1
            if op.op_id in placed:
                continue
            if self._fits(b, op) and (not b.ops or self._room(b, self._demand(op))):
                self._put(op, b)
            else:
                skipped.append(op)
        deferred_ads.extendleft(reversed(skipped))
        for key in list(deferred_adsets):
            if len(b.ops) >= max_ops:
                break
            queue = deferred_adsets[key]
            while queue and queue[0].op_id in placed:
                queue.popleft()
            if queue and self._fits(b, queue[0]):
                self._put(queue.popleft(), b)
            if not queue:
                del deferred_adsets[key]

    def _new_batch(self) -> BatchDraft:
        """Open a new batch (callers decide when: :meth:`_choose` below ``open_batches``, :meth:`_drain_deferred`)."""
        b = BatchDraft()
        self.open_drafts.append(b)
        return b

    def _close(self, b: BatchDraft) -> None:
        if not b.closed:
            b.closed = True
            self.open_drafts.remove(b)
            self.emitted.append(b)

    # ------------------------------------------------------------------ measuring

    def _survey(self, op: Operation) -> tuple[Need, list[BatchDraft]]:
        """What keeping ``op``'s chain together needs: (ops, ad creations) of ``op`` and its
        pending same-account descendants (capped at one batch), and the open batches already
        holding another parent of one of those descendants."""
        ad_kinds, max_ops = self.ad_kinds, self.max_ops
        n_ops = 1
        n_ads = 1 if op.kind in ad_kinds else 0
        homes: list[BatchDraft] = []
        dependents = self.dependents
        if not dependents.get(op.op_id):
            return (n_ops, n_ads), homes
        operations, states = self.operations, self.states
        placed, account = self.placed, self.account
        pending = OpState.PENDING
        seen = {op.op_id}
        stack = [op.op_id]
        while stack and n_ops < max_ops:
            children = dependents.get(stack.pop())
            if not children:
                continue
            for child_id in children:
                if child_id in seen or states[child_id] is not pending or child_id in placed:
                    continue
                child = operations[child_id]
                if child.account_id != account:
                    continue
                seen.add(child_id)
                n_ops += 1
                if child.kind in ad_kinds:
                    n_ads += 1
                for dep in sorted(child.dependencies):  # the same batches in every process
                    home = placed.get(dep)
                    if home is not None and not home.closed and home not in homes:
                        homes.append(home)
                stack.append(child_id)
        return (min(n_ops, max_ops), min(n_ads, self.max_ads)), homes

    def _demand(self, op: Operation) -> Need:
        """Cached :meth:`_survey` need (an estimate: it can only shrink as the pass goes on)."""
        need = self._needs.get(op.op_id)
        if need is None:
            need = self._needs[op.op_id] = self._survey(op)[0]
        return need

    def _room(self, b: BatchDraft, need: Need) -> bool:
        """Whether ``b`` has room for a whole chain (``need`` from :meth:`_survey`)."""
        return len(b.ops) + need[0] <= self.max_ops and b.ads + need[1] <= self.max_ads

    def _fits(self, b: BatchDraft, op: Operation) -> bool:
        """Whether ``b`` can take ``op`` itself under every per-batch rule."""
        if len(b.ops) >= self.max_ops:
            return False
        if op.upload is not None and b.upload_bytes and b.upload_bytes + upload_bytes(op) > self.max_bytes:
            return False  # over the byte budget (one upload alone may exceed it)
        kind = op.kind
        if kind in self.ad_kinds and b.ads >= self.max_ads:
            return False
        if kind in self.adset_kinds:
            key = self._campaign_key(op)
            if key is not None and key in b.campaigns:
                return False
        return True

    def _fits_group(self, b: BatchDraft, group: list[Operation]) -> bool:
        """Whether ``b`` can take all of ``group`` (a dependent and the ancestors it brings along)."""
        if len(b.ops) + len(group) > self.max_ops:
            return False
        uploads = [upload_bytes(o) for o in group if o.upload is not None]
        if (
            uploads
            and b.upload_bytes + sum(uploads) > self.max_bytes
            and (b.upload_bytes or len(uploads) > 1)
        ):
            return False
        ads = b.ads
        keys: set[str] = set()
        for o in group:
            kind = o.kind
            if kind in self.ad_kinds:
                ads += 1
            if kind in self.adset_kinds:
                key = self._campaign_key(o)
                if key is not None:
                    if key in b.campaigns or key in keys:
                        return False
                    keys.add(key)
        return ads <= self.max_ads

    def _campaign_key(self, op: Operation) -> str | None:
        """The campaign an ad-set-creating op goes under (rule 3 of the batcher), cached per op."""
        keys = self._campaign_keys
        if op.op_id not in keys:
            keys[op.op_id] = campaign_identity(op, self.states, self.resolve)
        return keys[op.op_id]


def campaign_identity(
    op: Operation, states: Mapping[str, OpState], resolve: Callable[[Ref], Any]
) -> str | None:
    """Rule 3's campaign of an ad-set-creating op: ``campaign_key``, else ``params["campaign_id"]`` -- a
    literal id, or a reference (its op id while the campaign is unresolved, the real id once it
    succeeded, so a literal and a resolved reference to the same campaign collide)."""
    if op.campaign_key is not None:
        return f"id:{op.campaign_key}"
    campaign = op.params.get("campaign_id")
    if isinstance(campaign, Ref):
        if states[campaign.op_id] is OpState.SUCCEEDED:
            return f"id:{resolve(campaign)}"
        return f"ref:{campaign.op_id}"
    if isinstance(campaign, str | int) and not isinstance(campaign, bool):
        return f"id:{campaign}"
    return None
