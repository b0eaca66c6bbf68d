"""What a run looked like while it ran: counters, per-(account, BUC) state and a time series.

A :class:`RunRecorder` is the engine's observer (``BulkEngine(config, observer=recorder.observe)``): it folds
every :mod:`~bulk_engine.execution.events` event into

- progress per operation kind (done / expected, with the states reached),
- per (ad account, BUC type): the latest and peak usage %, the concurrency the governor allows, batches in
  flight, throttle count and when a parked pair may send again (wall time),
- per waiting scope (the app, an ad account, or an (ad account, BUC type) pair — :class:`Waiting` events):
  the latest wait (reason, usage %, when it ends: it no longer shows once that time passed or the next wait
  of the scope replaced it), and how many waits and how many seconds waited in all, for the summary,
- counters (HTTP requests, Graph calls, retries, throttle events, outcomes per state, HTTP answers per
  status and batches that got none) — never the outcomes themselves: each goes to ``sink`` (the run's spill
  file, :mod:`.spill`) as it arrives, so the recorder's memory does not grow with the job,
- a bounded time series sampled by :meth:`RunRecorder.tick` (operations and calls completed, usage % per
  pair, parked pairs), which the HTML report charts.

Time comes from the injected ``now`` (wall seconds, monotonic) and ``wall`` (UNIX time, for clock times);
``time_scale`` converts the engine clock's seconds (``parked_s``, retry delays, waits) into wall seconds when
the engine runs on a scaled clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bulk_engine.execution.events import (
    AsyncSetProgress,
    BatchDone,
    BatchSent,
    EngineEvent,
    OperationFinished,
    RetryScheduled,
    Throttled,
    Waiting,
)
from bulk_engine.results import Outcome, OutcomeState

__all__ = ["KindProgress", "PairView", "RunRecorder", "Sample", "WaitView"]

MAX_SAMPLES = 720
WAIT_SCOPES = ("app", "account", "pair")  # widest first: the order views list current waits in


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
class WaitView:
    """The waits of one scope (see :class:`~bulk_engine.execution.events.Waiting`): the latest, and totals.

    ``since`` / ``until`` are recorder-clock times of the latest wait (``until`` ≤ now: not waiting);
    ``resumes_at_epoch`` is its end as a UNIX time. A wait ends at ``until`` or when the scope's next wait
    replaces it, whichever comes first: ``waited_s`` counts the time actually covered, never an overlap twice.
    ``waits`` counts episodes: a wait announced again before the last one ended (a new estimate) is the same.
    """

    scope: str
    account_id: str | None
    buc_type: str | None
    reason: str = ""
    usage_pct: float | None = None
    since: float = 0.0
    until: float = 0.0
    resumes_at_epoch: float = 0.0
    waits: int = 0
    waited_before_s: float = 0.0  # the earlier waits of the scope

    def remaining(self, now: float) -> float:
        return max(0.0, self.until - now)

    def waited_s(self, now: float) -> float:
        return self.waited_before_s + max(0.0, min(self.until, now) - self.since)

    def start(self, event: Waiting, now: float, wall_s: float, epoch: float) -> None:
        """A new wait of ``wall_s`` wall seconds from ``now``: the previous one (if still running) ends now."""
        if wall_s > 0 and (self.waits == 0 or self.until <= now):
            self.waits += 1
        self.waited_before_s = self.waited_s(now)
        self.since, self.until, self.resumes_at_epoch = now, now + wall_s, epoch + wall_s
        self.reason, self.usage_pct = event.reason, event.usage_pct

    def current(self, now: float) -> dict[str, Any]:
        """The wait as it stands (the JSON view's progress records)."""
        return {
            "scope": self.scope,
            "account_id": self.account_id,
            "buc_type": self.buc_type,
            "reason": self.reason,
            "usage_pct": self.usage_pct,
            "remaining_s": round(self.remaining(now), 3),
            "resumes_at": _iso(self.resumes_at_epoch),
        }

    def to_dict(self, now: float) -> dict[str, Any]:
        """The scope's summary (the report's ``waits``)."""
        return {
            "scope": self.scope,
            "account_id": self.account_id,
            "buc_type": self.buc_type,
            "waits": self.waits,
            "waited_s_total": round(self.waited_s(now), 3),
            "last_reason": self.reason,
            "last_usage_pct": self.usage_pct,
        }


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
    wait: WaitView | None = None  # its own waits (scope "pair"); the app's and account's: RunRecorder.waits

    @property
    def key(self) -> str:
        return f"{self.account_id}/{self.buc_type}"

    def parked_for(self, now: float) -> float:
        return max(0.0, self.parked_until - now)

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        """The report's ``accounts`` entry; ``now`` (recorder clock) bounds a wait still running (default: the
        whole of it counts)."""
        wait = self.wait
        waited = 0.0 if wait is None else wait.waited_s(wait.until if now is None else now)
        return {
            "account_id": self.account_id,
            "buc_type": self.buc_type,
            "last_usage_pct": self.usage_pct,
            "peak_usage_pct": self.peak_pct,
            "batches": self.batches,
            "calls": self.calls,
            "throttle_events": self.throttles,
            "parked_s_total": round(self.parked_total_s, 3),
            "waits": 0 if wait is None else wait.waits,
            "waited_s_total": round(waited, 3),
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


def _widest_first(views: Iterable[WaitView]) -> list[WaitView]:
    """App waits, then accounts', then pairs' (a stable sort: each in arrival order)."""
    return sorted(
        views,
        key=lambda view: WAIT_SCOPES.index(view.scope) if view.scope in WAIT_SCOPES else len(WAIT_SCOPES),
    )


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
    sink: Callable[[Outcome], None] | None = None  # every outcome, as it arrives (the run's spill file)

    def __post_init__(self) -> None:
        self.started = self.now()
        self.started_epoch = self.wall()
        self.kinds: dict[str, KindProgress] = {}
        self.pairs: dict[tuple[str, str], PairView] = {}
        # (scope, account id, BUC type) → its waits: ("app", None, None), ("account", act, None), ("pair", act, buc)
        self.waits: dict[tuple[str, str | None, str | None], WaitView] = {}
        # HTTP answers per status code, and batches that got none (transport errors, timeouts): whether a
        # run that no request succeeded in heard from a server at all
        self.answers: dict[int, int] = {}
        self.unanswered = 0
        # op id → account, for operations sent at least once that have no terminal outcome yet: after an
        # interruption their outcome is unknown (the server may have applied them)
        self.unsettled: dict[str, str] = {}
        self.http_requests = 0
        self.graph_calls = 0
        self.calls_done = 0
        # the async backend: request set id -> the state its last AsyncSetProgress event reported
        self.async_sets: dict[str, str] = {}
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
            if event.http_status is None:
                self.unanswered += 1
            else:
                self.answers[event.http_status] = self.answers.get(event.http_status, 0) + 1
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
        elif isinstance(event, Waiting):
            self._wait(event, now)
        elif isinstance(event, RetryScheduled):
            self.retries += 1
        elif isinstance(event, AsyncSetProgress):
            self.async_sets[event.set_id] = event.state
        for listener in self.listeners:
            listener(event)
        self.tick()

    def set_counts(self) -> tuple[int, int, int]:
        """Async request sets of the run: (submitted, in progress, done)."""
        states = list(self.async_sets.values())
        done = states.count("done")
        return len(states), len(states) - done, done

    def _finished(self, outcome: Outcome) -> None:
        if self.sink is not None:
            self.sink(outcome)
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

    @staticmethod
    def wait_key(event: Waiting) -> tuple[str, str | None, str | None]:
        """The key of :attr:`waits` ``event`` is about (no account for the app, no BUC type for an account)."""
        account = None if event.scope == "app" else event.account_id
        return event.scope, account, event.buc_type if event.scope not in ("app", "account") else None

    def _wait(self, event: Waiting, now: float) -> None:
        key = self.wait_key(event)
        view = self.waits.get(key)
        if view is None:
            view = self.waits[key] = WaitView(*key)
        view.start(event, now, max(0.0, event.seconds) / self.time_scale, self.wall())
        scope, account, buc = key
        if scope == "pair" and account is not None and buc is not None:
            self.pair(account, buc).wait = view

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
        return sum(k.done for k in self.kinds.values())

    @property
    def elapsed_s(self) -> float:
        return self.now() - self.started

    def parked(self) -> list[PairView]:
        now = self.now()
        return [view for view in self.pairs.values() if view.parked_until > now]

    def waiting(self) -> list[WaitView]:
        """The waits not over yet: the app's first, then accounts', then pairs' (each in arrival order)."""
        now = self.now()
        return _widest_first(view for view in self.waits.values() if view.until > now)

    def wait_for(self, account_id: str, buc_type: str) -> WaitView | None:
        """The current wait that holds (``account_id``, ``buc_type``) the longest: its own, its account's or
        the app's; ``None`` when none does."""
        holding = [
            view
            for view in self.waiting()
            if view.scope == "app"
            or (view.scope == "account" and view.account_id == account_id)
            or (view.account_id, view.buc_type) == (account_id, buc_type)
        ]
        return max(holding, key=lambda view: view.until, default=None)

    def waits_summary(self) -> list[dict[str, Any]]:
        """Every scope that waited: how often, how long in all (up to now), the last reason (the report)."""
        now = self.now()
        return [view.to_dict(now) for view in _widest_first(self.waits.values())]

    def counts(self) -> dict[str, int]:
        """Outcomes per state, over every kind (each outcome counts in its kind's progress)."""
        return {s.value: sum(getattr(k, s.value) for k in self.kinds.values()) for s in OutcomeState}

    def timeseries(self) -> dict[str, Any]:
        return {"interval_s": self.interval_s, "samples": [s.to_dict() for s in self.samples]}
