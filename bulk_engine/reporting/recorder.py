"""What a run looked like while it ran: counters, per-(account, BUC) state and a time series.

A :class:`RunRecorder` is the engine's observer (``BulkEngine(config, observer=recorder.observe)``): it folds
every :mod:`~bulk_engine.execution.events` event into

- progress per operation kind (done / expected, with the states reached),
- per (ad account, BUC type): the latest and peak usage %, the concurrency the governor allows, batches in
  flight, throttle count and when a parked pair may send again (wall time),
- counters (HTTP requests, Graph calls, retries, throttle events) and the outcomes seen so far — what the
  report falls back on when a run is interrupted before the operations layer returns its report,
- a bounded time series sampled by :meth:`RunRecorder.tick` (operations and calls completed, usage % per
  pair, parked pairs), which the HTML report charts.

Time comes from the injected ``now`` (wall seconds, monotonic); ``time_scale`` converts the engine clock's
seconds (``parked_s``, retry delays) into wall seconds when the engine runs on a scaled clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bulk_engine.execution.events import (
    BatchDone,
    BatchSent,
    EngineEvent,
    OperationFinished,
    RetryScheduled,
    Throttled,
)
from bulk_engine.results import Outcome

__all__ = ["KindProgress", "PairView", "RunRecorder", "Sample"]

MAX_SAMPLES = 720


@dataclass
class KindProgress:
    """Progress of one operation kind (``create_ad``…)."""

    kind: str
    expected: int | None = None
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0

    @property
    def done(self) -> int:
        return self.succeeded + self.failed + self.skipped


@dataclass
class PairView:
    """The live state of one (ad account, BUC type)."""

    account_id: str
    buc_type: str
    usage_pct: float | None = None
    peak_pct: float | None = None
    concurrency: int = 0
    in_flight: int = 0
    batches: int = 0
    calls: int = 0
    throttles: int = 0
    parked_until: float = 0.0  # wall (recorder clock) time; 0 = not parked
    parked_total_s: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.account_id}/{self.buc_type}"

    def parked_for(self, now: float) -> float:
        return max(0.0, self.parked_until - now)

    def to_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "buc_type": self.buc_type,
            "last_usage_pct": self.usage_pct,
            "peak_usage_pct": self.peak_pct,
            "batches": self.batches,
            "calls": self.calls,
            "throttle_events": self.throttles,
            "parked_s_total": round(self.parked_total_s, 3),
        }


@dataclass(frozen=True)
class Sample:
    """One point of the time series (``t`` seconds since the run started)."""

    t: float
    ops_done: int
    calls_done: int
    in_flight: int
    usage: dict[str, float]
    parked: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "t": round(self.t, 3),
            "ops_done": self.ops_done,
            "calls_done": self.calls_done,
            "in_flight": self.in_flight,
            "usage": {k: round(v, 2) for k, v in self.usage.items()},
            "parked": list(self.parked),
        }


@dataclass(frozen=True)
class ThrottleRecord:
    t: float
    account_id: str
    buc_type: str
    parked_s: float  # wall seconds
    code: int | None
    subcode: int | None
    usage_pct: float | None
    resumes_at_epoch: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "t": round(self.t, 3),
            "account_id": self.account_id,
            "buc_type": self.buc_type,
            "parked_s": round(self.parked_s, 3),
            "code": self.code,
            "subcode": self.subcode,
            "usage_pct": self.usage_pct,
            "resumes_at": _iso(self.resumes_at_epoch),
        }


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


@dataclass
class RunRecorder:
    """Folds engine events into live state and a bounded time series (see the module docstring)."""

    now: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    time_scale: float = 1.0
    interval_s: float = 0.25
    listeners: list[Callable[[EngineEvent], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.started = self.now()
        self.started_epoch = self.wall()
        self.kinds: dict[str, KindProgress] = {}
        self.pairs: dict[tuple[str, str], PairView] = {}
        self.outcomes: dict[str, Outcome] = {}
        # op id → account, for operations sent at least once that have no terminal outcome yet: after an
        # interruption their outcome is unknown (the server may have applied them)
        self.unsettled: dict[str, str] = {}
        self.http_requests = 0
        self.graph_calls = 0
        self.calls_done = 0
        self.retries = 0
        self.throttle_events = 0
        self.throttles: list[ThrottleRecord] = []
        self.samples: list[Sample] = []
        self._last_sample = -float("inf")
        self.tick(force=True)

    # --- expectations -----------------------------------------------------------------------------------
    def expect(self, kinds: dict[str, int]) -> None:
        """Expected operations per kind (``JobSpec.summarize_kinds``); kinds found later are added."""
        for kind, count in kinds.items():
            self._kind(kind).expected = count

    def _kind(self, kind: str) -> KindProgress:
        progress = self.kinds.get(kind)
        if progress is None:
            progress = self.kinds[kind] = KindProgress(kind)
        return progress

    def pair(self, account_id: str, buc_type: str) -> PairView:
        key = (account_id, buc_type)
        view = self.pairs.get(key)
        if view is None:
            view = self.pairs[key] = PairView(account_id, buc_type)
        return view

    # --- events -----------------------------------------------------------------------------------------
    def observe(self, event: EngineEvent) -> None:
        """The engine observer: fold ``event`` in, then tell the listeners (the live view, the log)."""
        now = self.now()
        if isinstance(event, OperationFinished):
            self._finished(event.outcome)
        elif isinstance(event, BatchSent):
            view = self.pair(event.account_id, event.buc_type)
            view.in_flight += 1
            view.batches += 1
            view.calls += event.calls
            self.http_requests += 1
            self.graph_calls += event.calls
            for op_id in event.op_ids:
                self.unsettled[op_id] = event.account_id
            if view.parked_until and view.parked_until <= now:
                view.parked_until = 0.0
        elif isinstance(event, BatchDone):
            view = self.pair(event.account_id, event.buc_type)
            view.in_flight = max(0, view.in_flight - 1)
            self.calls_done += event.calls
            view.concurrency = event.concurrency
            self._usage(view, event.usage_pct)
            self._park(view, event.parked_s, now)
        elif isinstance(event, Throttled):
            view = self.pair(event.account_id, event.buc_type)
            view.throttles += 1
            self.throttle_events += 1
            self._usage(view, event.usage_pct)
            wall_s = event.parked_s / self.time_scale
            self._park(view, event.parked_s, now)
            self.throttles.append(
                ThrottleRecord(
                    now - self.started,
                    event.account_id,
                    event.buc_type,
                    wall_s,
                    event.code,
                    event.subcode,
                    event.usage_pct,
                    self.wall() + wall_s,
                )
            )
        elif isinstance(event, RetryScheduled):
            self.retries += 1
        for listener in self.listeners:
            listener(event)
        self.tick()

    def _finished(self, outcome: Outcome) -> None:
        self.outcomes[outcome.op_id] = outcome
        self.unsettled.pop(outcome.op_id, None)
        progress = self._kind(outcome.kind)
        setattr(progress, outcome.state.value, getattr(progress, outcome.state.value) + 1)

    @staticmethod
    def _usage(view: PairView, pct: float | None) -> None:
        if pct is None:
            return
        view.usage_pct = pct
        view.peak_pct = pct if view.peak_pct is None else max(view.peak_pct, pct)

    def _park(self, view: PairView, parked_s: float, now: float) -> None:
        if parked_s <= 0:
            return
        until = now + parked_s / self.time_scale
        if until > view.parked_until:
            view.parked_total_s += until - max(now, view.parked_until)
            view.parked_until = until

    # --- time series ------------------------------------------------------------------------------------
    def tick(self, *, force: bool = False) -> None:
        """Take a sample if ``interval_s`` passed (or ``force``); keeps at most ``MAX_SAMPLES`` points."""
        now = self.now()
        if not force and now - self._last_sample < self.interval_s:
            return
        self._last_sample = now
        usage = {view.key: view.usage_pct for view in self.pairs.values() if view.usage_pct is not None}
        self.samples.append(
            Sample(
                now - self.started,
                self.ops_done,
                self.calls_done,
                sum(v.in_flight for v in self.pairs.values()),
                {k: v for k, v in usage.items() if v is not None},
                tuple(v.key for v in self.pairs.values() if v.parked_until > now),
            )
        )
        if len(self.samples) > MAX_SAMPLES:  # halve the resolution, keep the last point
            self.samples = [*self.samples[:-1:2], self.samples[-1]]
            self.interval_s *= 2

    # --- views ------------------------------------------------------------------------------------------
    @property
    def ops_done(self) -> int:
        return len(self.outcomes)

    @property
    def elapsed_s(self) -> float:
        return self.now() - self.started

    def parked(self) -> list[PairView]:
        now = self.now()
        return [view for view in self.pairs.values() if view.parked_until > now]

    def counts(self) -> dict[str, int]:
        counts = {"succeeded": 0, "failed": 0, "skipped": 0}
        for outcome in self.outcomes.values():
            counts[outcome.state.value] += 1
        return counts

    def timeseries(self) -> dict[str, Any]:
        return {"interval_s": self.interval_s, "samples": [s.to_dict() for s in self.samples]}
