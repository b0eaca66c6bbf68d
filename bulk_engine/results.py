"""Per-operation outcomes and the job result. Every operation ends in exactly one terminal state."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, Protocol

from bulk_engine.protocol.errors import GraphError


class HasOpId(Protocol):
    """An operation's stand-in: a :class:`~bulk_engine.builder.Handle` or an ``Operation``."""

    @property
    def op_id(self) -> str: ...


class OutcomeState(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Outcome:
    """The terminal state of one operation.

    ``result`` is the Graph answer (e.g. ``{"id": "…"}``) for ``succeeded``; ``error`` the full Graph
    error (code, subcode, message, user title/msg, blame_field_specs, fbtrace_id) for ``failed`` when the
    API answered; ``reason`` a human explanation for ``failed``/``skipped``.
    """

    op_id: str
    state: OutcomeState
    account_id: str
    kind: str
    result: Any = None
    error: GraphError | None = None
    reason: str | None = None
    attempts: int = 0
    # ``failed`` after an attempt whose outcome was unknown (a null entry, a connection lost after sending):
    # it may have been carried out all the same (an update applied, e.g.: its undo restores it)
    unknown: bool = False

    @property
    def id(self) -> str | None:
        """The Graph id the operation created or copied (``graph_id``): ``result[handle].id``."""
        return self.graph_id

    @property
    def graph_id(self) -> str | None:
        if isinstance(self.result, dict):
            for key in ("id", "copied_campaign_id", "copied_adset_id", "copied_ad_id"):
                if self.result.get(key) is not None:
                    return str(self.result[key])
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "op_id": self.op_id,
            "state": self.state.value,
            "account_id": self.account_id,
            "kind": self.kind,
            "graph_id": self.graph_id,
            "result": self.result,
            "error": self.error.to_dict() if self.error else None,
            "reason": self.reason,
            "attempts": self.attempts,
            **({"unknown": True} if self.unknown else {}),
        }


@dataclass
class JobStats:
    """Counters the runner keeps while a job runs."""

    http_requests: int = 0
    graph_calls: int = 0
    retries: int = 0
    throttle_events: int = 0
    unknown_outcomes: int = 0
    peak_tracked_ops: int = 0  # most operation records held at once: bounded by window + horizon
    lookups: int = 0  # idempotency-key lookups sent before re-sending creates with unknown outcomes
    recovered: int = 0  # creates found on the server by their key: succeeded without being re-sent
    from_journal: int = 0  # operations that had succeeded in an earlier run (answered from the journal)


RUN_COUNTERS = (
    "http_requests",
    "graph_calls",
    "retries",
    "throttle_events",
    "unknown_outcomes",
    "lookups",
    "recovered",
)
"""The counters of a run that add up over runs: fields of :class:`RunTotals`, ``RunRecord`` and ``JobStats``."""


@dataclass(frozen=True)
class RunTotals:
    """An engine job's counters summed over every run of it that its journal recorded, this one included.

    Why: an interrupted job (stopped, deferred by Airflow, retried after a crash) runs again under the same
    id, and each run's :class:`JobResult` counts only that run. A run killed before its last write counts
    with its last refresh (``GovernorConfig.persist_every_s``), once. ``elapsed_s`` is engine-clock seconds
    (as ``JobResult.elapsed_s``), summed over the runs.
    """

    runs: int = 0
    http_requests: int = 0
    graph_calls: int = 0
    retries: int = 0
    throttle_events: int = 0
    unknown_outcomes: int = 0
    lookups: int = 0
    recovered: int = 0
    elapsed_s: float = 0.0

    @classmethod
    def over(cls, runs: Iterable[RunTotals]) -> RunTotals:
        """Successive runs of one engine job: every field adds up, ``runs`` included."""
        parts = list(runs)
        return cls._sum(parts, runs=sum(p.runs for p in parts))

    @classmethod
    def combine(cls, parts: Iterable[RunTotals | None]) -> RunTotals | None:
        """Several engine jobs side by side (a task's phases, a job's tasks): the counters add up, ``runs`` is
        the most runs of any part — each run of a task or job file runs each of its engine jobs once, so
        adding them would count engine jobs, not runs. Parts without totals (no journal) are left out;
        ``None`` when none has any."""
        known = [part for part in parts if part is not None]
        return cls._sum(known, runs=max(p.runs for p in known)) if known else None

    @classmethod
    def _sum(cls, parts: list[RunTotals], *, runs: int) -> RunTotals:
        counters = {name: sum(getattr(p, name) for p in parts) for name in RUN_COUNTERS}
        return cls(runs=runs, elapsed_s=sum((p.elapsed_s for p in parts), 0.0), **counters)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        data["elapsed_s"] = round(self.elapsed_s, 3)
        return data


@dataclass(frozen=True)
class JobResult:
    job_id: str
    outcomes: tuple[Outcome, ...]
    http_requests: int
    graph_calls: int
    retries: int
    throttle_events: int
    elapsed_s: float
    counts: dict[str, int] = field(default_factory=dict)
    unknown_outcomes: int = 0  # attempts whose outcome was unknown (null entry, dropped connection…)
    lookups: int = 0  # idempotency-key lookups (journaled runs)
    recovered: int = 0  # creates found on the server by their key instead of being re-sent
    from_journal: int = 0  # operations that had succeeded in an earlier run (not sent again)
    unfinished: tuple[
        str, ...
    ] = ()  # operations left without an outcome because on_park stopped their account
    stopped: tuple[Any, ...] = ()  # the execution.events.Park of each account stopped through on_park
    peak_tracked_ops: int = 0  # most operation records held at once: bounded by window + horizon
    engine_jobs: tuple[str, ...] = ()  # a combined result: the engine jobs it is made of, in order
    # The counters over every run of this engine job the journal recorded, this run included (the fields
    # above count this run only); None without a journal (nothing records earlier runs: not "1 run").
    all_runs: RunTotals | None = None
    # How it was sent (EngineConfig.backend; docs/scale.md "sync or async backend"): "sync" or "async", why
    # (auto says what it counted), and the async request sets submitted (or adopted from the journal).
    backend: str = "sync"
    backend_reason: str = ""
    async_sets: int = 0

    @property
    def ok(self) -> bool:
        return self.counts.get("failed", 0) == 0 and self.counts.get("skipped", 0) == 0

    def __getitem__(self, key: str | HasOpId) -> Outcome:
        """The outcome of an operation, by op id or by anything carrying one (a builder's handle, an
        ``Operation``): ``result[ad].id`` is the ad's Graph id. ``KeyError`` for an op id not in the job."""
        op_id = key if isinstance(key, str) else key.op_id
        found = self._by_op_id.get(op_id)
        if found is None:
            raise KeyError(op_id)
        return found

    @functools.cached_property
    def _by_op_id(self) -> dict[str, Outcome]:
        return {outcome.op_id: outcome for outcome in self.outcomes}

    @classmethod
    def combine(cls, job_id: str, results: Iterable[JobResult]) -> JobResult:
        """Several engine jobs (the phases of a task, the tasks of a job) as one result: outcomes in order,
        every counter summed, nothing dropped (``all_runs``: :meth:`RunTotals.combine`)."""
        parts = list(results)
        counts = {state.value: 0 for state in OutcomeState}
        for part in parts:
            for state, n in part.counts.items():
                counts[state] = counts.get(state, 0) + n
        return cls(
            job_id=job_id,
            outcomes=tuple(o for part in parts for o in part.outcomes),
            http_requests=sum(p.http_requests for p in parts),
            graph_calls=sum(p.graph_calls for p in parts),
            retries=sum(p.retries for p in parts),
            throttle_events=sum(p.throttle_events for p in parts),
            elapsed_s=sum(p.elapsed_s for p in parts),
            counts=counts,
            unknown_outcomes=sum(p.unknown_outcomes for p in parts),
            lookups=sum(p.lookups for p in parts),
            recovered=sum(p.recovered for p in parts),
            from_journal=sum(p.from_journal for p in parts),
            unfinished=tuple(op_id for p in parts for op_id in p.unfinished),
            stopped=tuple(park for p in parts for park in p.stopped),
            peak_tracked_ops=max((p.peak_tracked_ops for p in parts), default=0),
            engine_jobs=tuple(job for p in parts for job in (p.engine_jobs or (p.job_id,))),
            all_runs=RunTotals.combine(p.all_runs for p in parts),
            backend="+".join(dict.fromkeys(p.backend for p in parts)) or "sync",
            backend_reason="; ".join(dict.fromkeys(p.backend_reason for p in parts if p.backend_reason)),
            async_sets=sum(p.async_sets for p in parts),
        )

    def outcome(self, op_id: str) -> Outcome:
        for outcome in self.outcomes:
            if outcome.op_id == op_id:
                return outcome
        raise KeyError(op_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "counts": dict(self.counts),
            "http_requests": self.http_requests,
            "graph_calls": self.graph_calls,
            "retries": self.retries,
            "throttle_events": self.throttle_events,
            "elapsed_s": round(self.elapsed_s, 3),
            "unknown_outcomes": self.unknown_outcomes,
            "lookups": self.lookups,
            "recovered": self.recovered,
            "from_journal": self.from_journal,
            "unfinished": list(self.unfinished),
            "stopped": [getattr(park, "account_id", str(park)) for park in self.stopped],
            "engine_jobs": list(self.engine_jobs or (self.job_id,)),
            "all_runs": self.all_runs.to_dict() if self.all_runs is not None else None,
            "backend": self.backend,
            "backend_reason": self.backend_reason,
            "async_sets": self.async_sets,
            "operations": [o.to_dict() for o in self.outcomes],
        }
