"""Progress of one bulk job across deferrals and retries, and resuming from it.

Until the engine's journal (issue 4) lands, the operator keeps the terminal outcomes it has seen in
Airflow's task state store (``context["task_state_store"]``, Airflow >= 3.3), which is scoped to
``(dag_id, run_id, task_id, map_index)`` and so survives deferrals *and* retries of the same task instance,
on any worker. Resuming re-compiles the job (deterministic op ids), drops the operations that already
ended, and replaces references to operations that succeeded earlier by the values they produced.

Seam: :class:`ProgressStore` is what the operator talks to. A journal-backed store (``bulk_engine``'s
``Journal``) replaces :class:`TaskStateProgressStore` without touching the operator; with it, the engine
also reconciles unknown outcomes with the server (what a crash between two saves here cannot do).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bulk_engine import Operation, Outcome, OutcomeState, Ref
from bulk_engine.protocol.refs import UnresolvedReferenceError, resolve_value, substitute

PROGRESS_KEY = "meta_bulk_progress"
STAT_KEYS = ("http_requests", "graph_calls", "retries", "throttle_events")


def job_id_for(dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
    """The engine job id of one task instance: stable across deferrals, retries and workers.

    ``airflow-`` + the first 32 hex digits of SHA-256 over ``dag_id / run_id / task_id / map_index``, so it
    is safe in file names and object-storage keys whatever the run id contains.
    """
    key = "\x1f".join((dag_id, run_id, task_id, str(map_index)))
    return "airflow-" + hashlib.sha256(key.encode()).hexdigest()[:32]


@dataclass
class Progress:
    """What a job has finished so far. ``done`` maps op id → ``Outcome.to_dict()``."""

    job_id: str
    done: dict[str, dict[str, Any]] = field(default_factory=dict)
    stats: dict[str, float] = field(default_factory=dict)
    deferrals: int = 0
    waited_s: float = 0.0
    deferred_at: float | None = None  # wall-clock time of the pending deferral

    def record(self, outcome: Outcome) -> None:
        self.done[outcome.op_id] = outcome.to_dict()

    def add_stats(self, **counters: float) -> None:
        for key, value in counters.items():
            self.stats[key] = self.stats.get(key, 0) + value

    def forget_unsuccessful(self) -> int:
        """Drop failed and skipped outcomes so a new try runs them again; returns how many."""
        again = [op_id for op_id, o in self.done.items() if o.get("state") != OutcomeState.SUCCEEDED.value]
        for op_id in again:
            del self.done[op_id]
        return len(again)

    def counts(self) -> dict[str, int]:
        counts = {state.value: 0 for state in OutcomeState}
        for outcome in self.done.values():
            counts[str(outcome.get("state"))] = counts.get(str(outcome.get("state")), 0) + 1
        return counts

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "job_id": self.job_id,
            "done": dict(
                self.done
            ),  # outcome dicts are replaced, never mutated: a shallow copy is a snapshot
            "stats": dict(self.stats),
            "deferrals": self.deferrals,
            "waited_s": self.waited_s,
            "deferred_at": self.deferred_at,
        }

    def snapshot(self) -> Progress:
        """An independent copy, safe to save from another thread while this one keeps recording."""
        return Progress.from_json(self.to_json())

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Progress:
        return cls(
            job_id=str(data["job_id"]),
            done={str(k): dict(v) for k, v in dict(data.get("done") or {}).items()},
            stats={str(k): float(v) for k, v in dict(data.get("stats") or {}).items()},
            deferrals=int(data.get("deferrals") or 0),
            waited_s=float(data.get("waited_s") or 0.0),
            deferred_at=None if data.get("deferred_at") is None else float(data["deferred_at"]),
        )


class ProgressStore(Protocol):
    """Where the operator keeps :class:`Progress` between deferrals and retries."""

    def load(self, job_id: str) -> Progress | None: ...

    def save(self, progress: Progress) -> None: ...


class TaskStateProgressStore:
    """Progress in Airflow's task state store (one JSON value under ``meta_bulk_progress``)."""

    def __init__(self, accessor: Any, key: str = PROGRESS_KEY) -> None:
        self._accessor = accessor
        self.key = key

    def load(self, job_id: str) -> Progress | None:
        raw = self._accessor.get(self.key)
        if not raw:
            return None
        data = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(data, Mapping) or data.get("job_id") != job_id:
            return None
        return Progress.from_json(data)

    def save(self, progress: Progress) -> None:
        self._accessor.set(self.key, progress.to_json())


class MemoryProgressStore:
    """Progress kept in memory only (no task state store available): deferral-safe within one process."""

    def __init__(self) -> None:
        self._data: dict[str, dict[str, Any]] = {}

    def load(self, job_id: str) -> Progress | None:
        data = self._data.get(job_id)
        return Progress.from_json(data) if data is not None else None

    def save(self, progress: Progress) -> None:
        self._data[progress.job_id] = json.loads(json.dumps(progress.to_json()))


@dataclass
class Remaining:
    """What is left of a job: operations to send, and those that became terminal while resolving."""

    operations: list[Operation]
    outcomes: list[Outcome]


def remaining_operations(ops: Iterable[Operation], done: Mapping[str, Mapping[str, Any]]) -> Remaining:
    """The operations of ``ops`` that have not ended yet, with references to earlier successes resolved.

    A reference to an operation that succeeded in an earlier slice becomes the value it produced (the same
    JSONPath evaluation the engine uses across batches); references between remaining operations stay
    symbolic. An operation whose reference cannot be resolved (no value at its path) fails, and whatever
    depends on it — or on an operation that ended unsuccessfully — is skipped, as the engine would.
    """
    results = {
        op_id: outcome.get("result")
        for op_id, outcome in done.items()
        if outcome.get("state") == OutcomeState.SUCCEEDED.value
    }
    pending = [op for op in ops if op.op_id not in done]
    ended: dict[str, Outcome] = {}
    resolved: dict[str, Operation] = {}
    for op in pending:
        dead = sorted(dep for dep in op.dependencies if dep in done and dep not in results)
        if dead:
            ended[op.op_id] = _skipped(op, f"{dead[0]} did not succeed")
            continue
        try:
            resolved[op.op_id] = _resolve(op, results) if op.dependencies & results.keys() else op
        except UnresolvedReferenceError as err:
            ended[op.op_id] = Outcome(
                op.op_id, OutcomeState.FAILED, op.account_id, op.kind.value, reason=str(err)
            )
    changed = True
    while changed:  # cascade to dependents still pending
        changed = False
        for op_id, op in list(resolved.items()):
            gone = sorted(dep for dep in op.dependencies if dep in ended)
            if gone:
                ended[op_id] = _skipped(op, f"{gone[0]} did not succeed")
                del resolved[op_id]
                changed = True
    return Remaining(
        [resolved[op.op_id] for op in pending if op.op_id in resolved],
        [ended[op.op_id] for op in pending if op.op_id in ended],
    )


def _skipped(op: Operation, reason: str) -> Outcome:
    return Outcome(op.op_id, OutcomeState.SKIPPED, op.account_id, op.kind.value, reason=reason)


def _resolve(op: Operation, results: Mapping[str, Any]) -> Operation:
    def resolve(ref: Ref) -> Any:
        return resolve_value(results[ref.op_id], ref) if ref.op_id in results else ref

    path: str | Ref | tuple[str | Ref, ...]
    if isinstance(op.path, tuple):
        path = tuple(_part(resolve(p)) if isinstance(p, Ref) else p for p in op.path)
    elif isinstance(op.path, Ref):
        path = _part(resolve(op.path))
    else:
        path = op.path
    return Operation(
        op_id=op.op_id,
        method=op.method,
        path=path,
        params=substitute(op.params, resolve),
        account_id=op.account_id,
        kind=op.kind,
        campaign_key=op.campaign_key,
    )


def _part(value: Any) -> str | Ref:
    return value if isinstance(value, Ref) else str(value)
