"""The dependency graph that orders a job's operations (:mod:`bulk_engine.planning.operation`).

Why: a bulk job is a DAG (campaign → ad set → ad ← creative ← image). "Independent operations are
processed in parallel while dependent operations are processed sequentially" (S003 §Batch
Requests) -- but only inside one batch; across batches the engine must sequence them itself and
substitute real ids (SPEC-DIGEST §9.2). Every operation must end in exactly one terminal state
(DESIGN.md principle 3), so the graph also owns the state machine and the cascade "parent failed
→ dependents skipped".

Validation happens when operations are added, before anything is sent: duplicate ids, references
to unknown operations and cycles raise :class:`PlanningError` subclasses naming the op ids.

Streaming: :meth:`DependencyGraph.add` can be called repeatedly with windows of operations. A
window may reference operations of earlier windows (pending, in flight or already succeeded) and
ids registered with :meth:`DependencyGraph.add_resolved` (e.g. completed in a previous run, from the
journal). It cannot reference operations of a *later* window, which is what keeps the check for
cycles local to the window.

State machine (``mark_*`` raise :class:`InvalidTransitionError` on anything else)::

    PENDING ──mark_in_flight──▶ IN_FLIGHT ──requeue──▶ PENDING
    PENDING|IN_FLIGHT ──mark_succeeded──▶ SUCCEEDED
    PENDING|IN_FLIGHT ──mark_failed──▶ FAILED      (dependents → SKIPPED, transitively)
    PENDING|IN_FLIGHT ──mark_skipped──▶ SKIPPED    (dependents → SKIPPED, transitively)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from bulk_engine.errors import BulkEngineError, JobValidationError
from bulk_engine.planning.operation import AD_CREATING_KINDS, ADSET_CREATING_KINDS, Operation, OpKind
from bulk_engine.protocol.refs import Ref, UnresolvedReferenceError, resolve_value

__all__ = [
    "ADSET_CREATING_KINDS",
    "AD_CREATING_KINDS",
    "DRY_RUN_RESULT",
    "Cascade",
    "DependencyCycleError",
    "DependencyGraph",
    "DuplicateOperationError",
    "InvalidTransitionError",
    "OpKind",
    "OpState",
    "Operation",
    "PlanningError",
    "UnknownReferenceError",
]


@dataclass(frozen=True, slots=True)
class Cascade:
    """An operation that reached a terminal state as a side effect of another one."""

    op_id: str
    state: OpState
    reason: str
    cause_op_id: str


class OpState(StrEnum):
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


_TERMINAL: Final = frozenset({OpState.SUCCEEDED, OpState.FAILED, OpState.SKIPPED})
_ACTIVE: Final = frozenset({OpState.PENDING, OpState.IN_FLIGHT})


class _DryRunResult:
    """Sentinel result: every reference to it resolves to a readable placeholder."""

    def __repr__(self) -> str:
        return "DRY_RUN_RESULT"


DRY_RUN_RESULT: Final = _DryRunResult()
"""Pass to :meth:`DependencyGraph.mark_succeeded` when simulating success (dry runs, planning)."""


class PlanningError(JobValidationError, ValueError):
    """The job cannot be planned; raised before anything is sent."""


class DuplicateOperationError(PlanningError):
    def __init__(self, op_ids: Iterable[str]) -> None:
        self.op_ids = tuple(sorted(set(op_ids)))
        super().__init__(f"duplicate operation ids: {', '.join(self.op_ids)}")


class UnknownReferenceError(PlanningError):
    def __init__(self, missing: Mapping[str, Iterable[str]]) -> None:
        self.missing = {op_id: tuple(sorted(refs)) for op_id, refs in missing.items()}
        detail = "; ".join(f"{op_id} → {', '.join(refs)}" for op_id, refs in sorted(self.missing.items()))
        super().__init__(
            f"references to unknown operations: {detail} (in a streamed job, a reference must point to an "
            "operation of the same or a recent window: finished operations beyond the reference horizon "
            "are forgotten)"
        )


class DependencyCycleError(PlanningError):
    def __init__(self, cycle: list[str]) -> None:
        self.cycle = tuple(cycle)
        super().__init__(f"dependency cycle: {' -> '.join([*cycle, cycle[0]])}")


class InvalidTransitionError(BulkEngineError, RuntimeError):
    """A ``mark_*`` call that the state machine does not allow (an engine bug)."""


@dataclass(frozen=True, slots=True)
class GraphView:
    """What the batcher reads of a graph, read-only, plus the one transition it makes (package-internal).

    Why: packing visits every ready operation and edge, so it reads the graph's own tables at dict speed
    (:meth:`DependencyGraph.state` would cost a call per edge, :meth:`~DependencyGraph.dependents` a copy
    too) -- through this view instead of the graph's private fields. The mappings are live: they follow
    the graph as it changes; the batcher never writes through them.
    """

    operations: Mapping[str, Operation]
    states: Mapping[str, OpState]
    dependents: Mapping[str, Sequence[str]]
    ready: Mapping[str, Mapping[str, None]]
    """Per account, its ready op ids in the order they became ready."""
    claim: Callable[[str, list[str]], None]
    """``claim(account, op_ids)``: the batcher's fast :meth:`DependencyGraph.mark_in_flight` of PENDING
    ops of one account."""


class DependencyGraph:
    """Operations, their dependencies and their states; pure and single-threaded.

    Lookups and transitions are O(1) amortised; :meth:`add` is O(window + edges).
    """

    def __init__(self, operations: Iterable[Operation] = ()) -> None:
        self._ops: dict[str, Operation] = {}
        self._state: dict[str, OpState] = {}
        self._results: dict[str, Any] = {}
        self._resolved: dict[str, dict[str, Any]] = {}  # op id -> {JSONPath: value}
        self._settled: deque[str] = deque()  # terminal ops, oldest first, for forget_settled()
        self._dependents: dict[str, list[str]] = {}
        self._unmet: dict[str, int] = {}
        self._ready: dict[str, dict[str, None]] = {}
        self._reasons: dict[str, str] = {}
        self._active = 0
        ops = list(operations)
        if ops:
            self.add(ops)

    # ------------------------------------------------------------------ building

    def add(self, operations: Iterable[Operation]) -> list[Cascade]:
        """Validate and add a window of operations (atomically: on error nothing is added).

        Returns the operations that ended immediately because a dependency had already failed or
        been skipped, or because a reference did not resolve against an already-known result.
        """
        window = list(operations)
        seen: set[str] = set()
        dupes: list[str] = []
        for op in window:
            if op.op_id in self._state or op.op_id in seen:
                dupes.append(op.op_id)
            seen.add(op.op_id)
        if dupes:
            raise DuplicateOperationError(dupes)
        missing: dict[str, set[str]] = {}
        for op in window:
            for dep in op.dependencies:
                if dep not in seen and dep not in self._state:
                    missing.setdefault(op.op_id, set()).add(dep)
        if missing:
            raise UnknownReferenceError(missing)
        self._check_acyclic(window, seen)

        state, dependents, unmet_of = self._state, self._dependents, self._unmet
        pending, succeeded = OpState.PENDING, OpState.SUCCEEDED
        external: list[Operation] = []  # ops with dependencies outside the window
        for op in window:
            op_id = op.op_id
            self._ops[op_id] = op
            state[op_id] = pending
            unmet = 0
            outside = False
            for dep in op.dependencies:
                dependents.setdefault(dep, []).append(op_id)
                if dep not in seen:
                    outside = True
                if state.get(dep) is not succeeded:
                    unmet += 1
            unmet_of[op_id] = unmet
            if outside:
                external.append(op)
        self._active += len(window)

        cascades: list[Cascade] = []
        for op in external:
            if state[op.op_id] is not pending:
                continue  # already skipped by an earlier cascade in this loop
            dead = [d for d in op.dependencies if state[d] in (OpState.FAILED, OpState.SKIPPED)]
            if dead:
                cause = min(dead)
                reason = f"dependency {cause!r} {state[cause].value}"
                cascades.extend(self._terminate(op.op_id, OpState.SKIPPED, reason, cause))
                continue
            failure = self._resolve_known_refs(op)
            if failure is not None:
                cascades.extend(self._terminate(op.op_id, OpState.FAILED, failure[1], failure[0]))
        ready = self._ready
        for op in window:
            if unmet_of[op.op_id] == 0 and state[op.op_id] is pending:
                account_ready = ready.get(op.account_id)
                if account_ready is None:
                    account_ready = ready[op.account_id] = {}
                account_ready[op.op_id] = None
        return cascades

    def add_resolved(self, op_id: str, result: Any) -> None:
        """Register an id that already succeeded outside this graph (e.g. a previous run).

        Later operations may reference it; it has no :class:`Operation`.
        """
        if op_id in self._state:
            raise DuplicateOperationError([op_id])
        self._state[op_id] = OpState.SUCCEEDED
        self._results[op_id] = result

    def _check_acyclic(self, window: list[Operation], ids: set[str]) -> None:
        """Raise :class:`DependencyCycleError` if the window has a cycle.

        Fast path: a window listed parents-first is acyclic. Otherwise Kahn's algorithm restricted
        to ops with in-window dependencies (only they can form a cycle: earlier windows cannot
        reference this one).
        """
        earlier: set[str] = set()
        forward = False
        for op in window:
            for dep in op.dependencies:
                if dep in ids and dep not in earlier:
                    forward = True
                    break
            if forward:
                break
            earlier.add(op.op_id)
        if not forward:
            return  # every in-window dependency precedes its dependent: topologically ordered
        inner = {op.op_id: op for op in window if any(dep in ids for dep in op.dependencies)}
        indegree = {op_id: 0 for op_id in inner}
        children: dict[str, list[str]] = {op_id: [] for op_id in inner}
        for op_id, op in inner.items():
            for dep in op.dependencies:
                if dep in inner:
                    indegree[op_id] += 1
                    children[dep].append(op_id)
        queue = deque(i for i, n in indegree.items() if n == 0)
        done = 0
        while queue:
            node = queue.popleft()
            done += 1
            for child in children[node]:
                indegree[child] -= 1
                if indegree[child] == 0:
                    queue.append(child)
        if done == len(inner):
            return
        stuck = {i for i, n in indegree.items() if n > 0}
        # Every stuck node has a stuck dependency; walking them must revisit a node: that's a cycle.
        node = min(stuck)
        path: list[str] = []
        index: dict[str, int] = {}
        while node not in index:
            index[node] = len(path)
            path.append(node)
            node = min(d for d in inner[node].dependencies if d in stuck)
        cycle = path[index[node] :]
        cycle.reverse()  # report in dependency order: parent -> child
        raise DependencyCycleError(cycle)

    # ------------------------------------------------------------------ queries

    def __contains__(self, op_id: object) -> bool:
        return op_id in self._state

    def __len__(self) -> int:
        return len(self._ops)

    def operation(self, op_id: str) -> Operation:
        return self._ops[op_id]

    def operations(self) -> list[Operation]:
        return list(self._ops.values())

    def state(self, op_id: str) -> OpState:
        return self._state[op_id]

    def result(self, op_id: str) -> Any:
        """The result recorded by :meth:`mark_succeeded` (``KeyError`` if none)."""
        return self._results[op_id]

    def reason(self, op_id: str) -> str | None:
        """Why an operation was failed or skipped (as given to ``mark_*``), else ``None``."""
        return self._reasons.get(op_id)

    def dependents(self, op_id: str) -> tuple[str, ...]:
        return tuple(self._dependents.get(op_id, ()))

    def ready_accounts(self) -> list[str]:
        """Accounts with ready operations, in the order they first became ready."""
        return [account for account, ready in self._ready.items() if ready]

    def ready_ops(self, account_id: str | None = None) -> list[Operation]:
        """Pending operations whose dependencies have all succeeded (FIFO by readiness)."""
        if account_id is not None:
            return [self._ops[i] for i in self._ready.get(account_id, ())]
        return [self._ops[i] for ready in self._ready.values() for i in ready]

    def first_ready(self, account_id: str) -> Operation | None:
        """The account's longest-ready pending operation, if any (O(1))."""
        for op_id in self._ready.get(account_id, ()):
            return self._ops[op_id]
        return None

    def ready_ids(self, account_id: str) -> list[str]:
        return list(self._ready.get(account_id, ()))

    def planning_view(self) -> GraphView:
        """The live read-only tables the batcher packs from (package-internal: see :class:`GraphView`)."""
        return GraphView(self._ops, self._state, self._dependents, self._ready, self._claim)

    def counts(self) -> dict[OpState, int]:
        out = dict.fromkeys(OpState, 0)
        for op_id in self._ops:
            out[self._state[op_id]] += 1
        return out

    @property
    def unfinished(self) -> int:
        """Operations still pending or in flight."""
        return self._active

    @property
    def is_finished(self) -> bool:
        return self._active == 0

    def resolve_ref(self, ref: Ref) -> Any:
        """The real value of a reference to a *succeeded* operation (cached).

        Raises :class:`~bulk_engine.protocol.refs.UnresolvedReferenceError` if the target has
        not succeeded or its result lacks the path.
        """
        cached = self._resolved.get(ref.op_id)
        if cached is not None and ref.path in cached:
            return cached[ref.path]
        if self._state.get(ref.op_id) is not OpState.SUCCEEDED:
            raise UnresolvedReferenceError(ref.op_id, ref.path, "target has not succeeded")
        result = self._results[ref.op_id]
        if result is DRY_RUN_RESULT:
            value: Any = f"<{ref.op_id}:{ref.path}>"
        else:
            value = resolve_value(result, ref)
        self._resolved.setdefault(ref.op_id, {})[ref.path] = value
        return value

    def forget_settled(self, keep: int) -> int:
        """Drop the records of the oldest finished operations beyond the newest ``keep``.

        Why: a streamed job must run in memory bounded by its window, not by its length. An operation
        that an active operation still depends on is kept. A later window that references a forgotten
        operation is rejected like any unknown reference, so streamed jobs must keep their references
        within ``keep`` finished operations (``EngineConfig.reference_horizon``). Returns how many
        records were dropped.
        """
        settled, state, dependents = self._settled, self._state, self._dependents
        pinned: list[str] = []
        dropped = 0
        while len(settled) > keep:
            op_id = settled.popleft()
            if op_id not in state:
                continue
            if any(state.get(child) in _ACTIVE for child in dependents.get(op_id, ())):
                pinned.append(op_id)
                continue
            self._forget(op_id)
            dropped += 1
        settled.extendleft(reversed(pinned))
        return dropped

    def _forget(self, op_id: str) -> None:
        op = self._ops.pop(op_id, None)
        if op is not None:
            for dep in op.dependencies:  # an active parent must not list a child it cannot look up
                if self._state.get(dep) in _ACTIVE:
                    siblings = self._dependents.get(dep)
                    if siblings is not None and op_id in siblings:
                        siblings.remove(op_id)
        for table in (
            self._state,
            self._results,
            self._resolved,
            self._dependents,
            self._unmet,
            self._reasons,
        ):
            table.pop(op_id, None)

    # ------------------------------------------------------------------ transitions

    def mark_in_flight(self, op_ids: Iterable[str]) -> None:
        ids = list(op_ids)
        state = self._state
        for op_id in ids:
            if state.get(op_id) is not OpState.PENDING:
                self._require(op_id, {OpState.PENDING}, "mark_in_flight")
        for op_id in ids:
            state[op_id] = OpState.IN_FLIGHT
            self._unready(op_id)

    def _claim(self, account_id: str, op_ids: list[str]) -> None:
        """Batcher fast path of :meth:`mark_in_flight` for PENDING ops of one account."""
        state = self._state
        ready = self._ready.get(account_id, {})
        for op_id in op_ids:
            if state[op_id] is not OpState.PENDING:  # pragma: no cover - batcher invariant
                raise InvalidTransitionError(f"claim: {op_id!r} is {state[op_id].value}")
            state[op_id] = OpState.IN_FLIGHT
            ready.pop(op_id, None)

    def requeue(self, op_id: str) -> None:
        """IN_FLIGHT → PENDING, e.g. after a ``null`` entry, a transient error or a throttle."""
        self._require(op_id, {OpState.IN_FLIGHT}, "requeue")
        self._state[op_id] = OpState.PENDING
        if self._unmet[op_id] == 0:
            self._ready.setdefault(self._ops[op_id].account_id, {})[op_id] = None

    def mark_succeeded(self, op_id: str, result: Any) -> list[Cascade]:
        """Record success and release dependents.

        Every dependency must already have succeeded: record a batch's results in request order,
        and reconcile a parent whose entry was ``null`` before accepting its child's success.

        References of still-active dependents are resolved against ``result`` now; a dependent
        whose reference has no value there is FAILED (its own dependents SKIPPED) and returned.
        """
        state = self._state
        if state.get(op_id) not in _ACTIVE or op_id not in self._ops:
            self._require(op_id, _ACTIVE, "mark_succeeded")
        if self._unmet[op_id]:
            waiting = sorted(d for d in self._ops[op_id].dependencies if state[d] is not OpState.SUCCEEDED)
            raise InvalidTransitionError(f"mark_succeeded: {op_id!r} still depends on {', '.join(waiting)}")
        previous = state[op_id]
        state[op_id] = OpState.SUCCEEDED
        self._results[op_id] = result
        self._settled.append(op_id)
        self._active -= 1
        if previous is OpState.PENDING:
            self._unready(op_id)
        cascades: list[Cascade] = []
        children = self._dependents.get(op_id)
        if not children:
            return cascades
        dry_run = result is DRY_RUN_RESULT
        for child in children:
            if state.get(child) not in _ACTIVE:
                continue
            self._unmet[child] -= 1
            child_op = self._ops[child]
            if not dry_run:
                failure = self._resolve_refs_to(child_op, op_id)
                if failure is not None:
                    cascades.extend(self._terminate(child, OpState.FAILED, failure, op_id))
                    continue
            if self._unmet[child] == 0 and state[child] is OpState.PENDING:
                self._ready.setdefault(child_op.account_id, {})[child] = None
        return cascades

    def mark_failed(self, op_id: str, reason: str = "failed") -> list[Cascade]:
        """Record failure; returns every dependent skipped because of it (transitively)."""
        self._require(op_id, _ACTIVE, "mark_failed")
        return self._terminate(op_id, OpState.FAILED, reason, op_id)[1:]

    def mark_skipped(self, op_id: str, reason: str = "skipped") -> list[Cascade]:
        """Skip an operation (e.g. cancelled); returns its dependents skipped with it."""
        self._require(op_id, _ACTIVE, "mark_skipped")
        return self._terminate(op_id, OpState.SKIPPED, reason, op_id)[1:]

    # ------------------------------------------------------------------ internals

    def _require(self, op_id: str, allowed: Iterable[OpState], action: str) -> None:
        state = self._state.get(op_id)
        if state is None or op_id not in self._ops:
            raise InvalidTransitionError(f"{action}: unknown operation {op_id!r}")
        if state not in allowed:
            raise InvalidTransitionError(f"{action}: {op_id!r} is {state.value}")

    def _unready(self, op_id: str) -> None:
        op = self._ops.get(op_id)
        if op is not None:
            self._ready.get(op.account_id, {}).pop(op_id, None)

    def _terminate(self, op_id: str, state: OpState, reason: str, cause: str) -> list[Cascade]:
        """End ``op_id`` in ``state`` and skip its active dependents transitively (BFS order)."""
        out = [Cascade(op_id, state, reason, cause)]
        self._set_terminal(op_id, state, reason)
        queue = deque([op_id])
        while queue:
            parent = queue.popleft()
            for child in self._dependents.get(parent, ()):
                if self._state.get(child) in _ACTIVE:
                    why = f"dependency {parent!r} {self._state[parent].value}"
                    self._set_terminal(child, OpState.SKIPPED, why)
                    out.append(Cascade(child, OpState.SKIPPED, why, cause))
                    queue.append(child)
        return out

    def _set_terminal(self, op_id: str, state: OpState, reason: str) -> None:
        self._state[op_id] = state
        self._reasons[op_id] = reason
        self._active -= 1
        self._unready(op_id)
        self._settled.append(op_id)

    def _resolve_refs_to(self, op: Operation, target: str) -> str | None:
        for ref in op.refs:
            if ref.op_id == target:
                try:
                    self.resolve_ref(ref)
                except UnresolvedReferenceError as exc:
                    return str(exc)
        return None

    def _resolve_known_refs(self, op: Operation) -> tuple[str, str] | None:
        for ref in op.refs:
            if self._state[ref.op_id] is OpState.SUCCEEDED:
                try:
                    self.resolve_ref(ref)
                except UnresolvedReferenceError as exc:
                    return ref.op_id, str(exc)
        return None
