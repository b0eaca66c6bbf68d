"""Pacing from what the server reports, per real scope: the app, an ad account, an (account, use case) pair.

One governor per engine, shared by every task and run of it; its state is written to the journal so the next
run, Airflow try or process starts from it (``export``/``restore``), and the journal's parks are read again
while it runs (``refresh``), so a park another worker met on a shared account holds this one too.
``docs/scale.md`` explains it for users.

**Scopes** (S003 §Rate Limits). Business Use Case limits apply "to the ad account across the same Business
Use Case", so each (account, BUC type) pair has its own rolling window; Platform limits (``X-App-Usage``,
codes 4/17) count every call of the app, so the app is a window every send also passes; a throttle whose
scope Graph does not document holds the whole account. A throttle parks its scope: a parked app holds every
account, a parked account every use case of it, a parked pair only itself ("Switch to other ad accounts
and come back to this account later"), until the documented regain time, capped by ``max_park_s``.

**Estimate from the server's numbers.** A reading gives each metric's usage (call count, CPU time, total
time) as a percentage of a quota that is not reported. The call quota is the higher of two lower bounds:
the documented floor of the reported ``ads_api_access_tier`` ("300 + 40 × Number of Active ads" calls an
hour for ads management at the development tier, S003 §Business Use Case Rate Limits) and our counted
calls over the reported percentage; CPU and time are converted at the rate they moved with the call count.
Whatever the reading shows beyond our own calls is *others'* usage (other runs, workers, tools), taken as
standing until a later reading says otherwise — so a window someone else filled to 90 % leaves exactly
the room under the ceiling, not the hour-long wait that estimating the quota from our few calls gave.

**Grants.** The first call to a window goes alone (the window may already be full). Each *fresh* reading —
of a batch sent after the previous grant, so it shows what others did since — grants our calls of then
plus half the free room under the ceiling (our share of it while the account is shared); other readings
only shrink the grant. Room our own calls leave as they age (our send log says when) is ours again at once.
No reading for a whole window: look again with a probe, as at first contact.

**Shared accounts.** Others' usage that grows between readings, or others' calls still there a window
after we first saw them, means other workers send: for two windows
the account is shared — each worker takes its share (its calls ÷ all calls of the reading) of half the
room, at most twice what the server counted of its own, ``shared_margin_pct`` further below the ceiling —
so workers reading the same server-side usage converge without a coordinator. A first reading that shows
others starts a probation that a fresh reading without growth ends (the calls were left by someone gone).

**Probes.** While only others' calls block, a probe of a few calls goes at an interval that doubles while
readings show no room coming back; probes together fill at most half the margin above the ceiling.

**No silent waits**: a wait longer than ``announce_after_s`` wall seconds goes to ``announce`` (the engine
emits a :class:`~bulk_engine.execution.events.Waiting` event and a log line) once per scope and episode.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import anyio

from bulk_engine.config import GovernorConfig
from bulk_engine.persistence.journal import PacingRecord
from bulk_engine.protocol.usage import (
    BucType,
    Reading,
    UsageSnapshot,
    app_reading,
    normalize_account_id,
    reading_for,
)
from bulk_engine.wording import wait_subject

from .clock import Clock
from .events import Waiting

logger = logging.getLogger(__name__)

ScopeKey = tuple[str, ...]
"""``("app",)``, ``("account", act)`` or ``("pair", act, buc_type)``."""

APP: ScopeKey = ("app",)
ADS_MANAGEMENT = BucType.ADS_MANAGEMENT.value

# S003 §Business Use Case Rate Limits: calls within one hour at 0 active ads (audiences), per tier.
TIER_FLOORS: dict[tuple[str, str], float] = {
    ("ads_management", "development_access"): 300.0,
    ("ads_management", "standard_access"): 100_000.0,
    ("ads_insights", "development_access"): 600.0,
    ("ads_insights", "standard_access"): 190_000.0,
    ("custom_audience", "development_access"): 5_000.0,
    ("custom_audience", "standard_access"): 190_000.0,
}
_METRICS = ("calls", "cputime", "time")
_MIN_SHARE = 1 / 8
_KEPT_EXPIRED = 256  # records kept behind the heads of a send log (see SendLog.dropped_since)
_GREED = 0.5  # the part of the free room taken before the next reading
_PARK_SLACK_S = 1.0  # a journal's park this much longer than ours replaces it (not every rewrite of one)


def account_scope(account_id: str) -> ScopeKey:
    return ("account", account_id)


def pair_scope(account_id: str, buc_type: str) -> ScopeKey:
    return ("pair", account_id, buc_type)


def scope_name(key: ScopeKey) -> str:
    """``"app"``, ``"account:act_1"``, ``"pair:act_1:ads_management"`` (the journal's key)."""
    return ":".join(key)


def scope_label(key: ScopeKey) -> str:
    """For people: ``all accounts (app)``, ``ad account act_1 (every use case)``, ``ad account act_1
    (ads_management)``."""
    return wait_subject(key[0], key[1] if len(key) > 1 else None, key[2] if len(key) > 2 else None)


def _scope_key(name: str) -> ScopeKey | None:
    parts = tuple(name.split(":"))
    if (
        parts == APP
        or (len(parts) == 2 and parts[0] == "account")
        or (len(parts) == 3 and parts[0] == "pair")
    ):
        return parts
    return None


class SendLog:
    """Our own calls of one window, seen two ways that bracket the server's count.

    The server counts a call at some moment between our send and its answer. Ageing calls from their
    *send* time gives a count that is never above the server's (a safe base for estimating the quota:
    ``count × 100 / pct`` is then never above the true quota); ageing them from their *answer* time gives
    a count never below it (a safe base for headroom: we never believe calls left the window before the
    server does). Records are kept in send order; both views advance a head over them.
    """

    __slots__ = ("_answer_head", "_records", "_send_head", "answer_view", "send_view")

    def __init__(self) -> None:
        self._records: list[list[float]] = []  # [sent_at, answered_at (inf while in flight), ops, answers]
        self._send_head = 0
        self._answer_head = 0
        self.send_view = 0
        self.answer_view = 0

    def add(self, now: float, ops: int, answers_so_far: int) -> list[float]:
        record = [now, math.inf, float(ops), float(answers_so_far)]
        self._records.append(record)
        self.send_view += ops
        self.answer_view += ops
        return record

    @staticmethod
    def answered(record: list[float], now: float) -> None:
        record[1] = now

    def expire(self, now: float, window_s: float, margin_s: float) -> None:
        records = self._records
        while self._send_head < len(records) and records[self._send_head][0] < now - window_s:
            self.send_view -= int(records[self._send_head][2])
            self._send_head += 1
        while self._answer_head < len(records) and records[self._answer_head][1] <= now - window_s - margin_s:
            self.answer_view -= int(records[self._answer_head][2])
            self._answer_head += 1
        head = min(self._send_head, self._answer_head) - _KEPT_EXPIRED
        if head > 1024 and head * 2 > len(records):
            del records[:head]
            self._send_head -= head
            self._answer_head -= head

    def dropped_since(self, answered_after: float) -> int:
        """Our calls the answer view already dropped that were answered after ``answered_after`` (a
        reading taken earlier than now may still count them)."""
        records = self._records
        dropped = 0
        i = self._answer_head - 1
        while i >= 0 and records[i][1] > answered_after:
            dropped += int(records[i][2])
            i -= 1
        return dropped

    def free_at(self, calls: float, window_s: float, margin_s: float) -> float | None:
        """When ``calls`` of our calls will have left the window by the answer view (None: not known)."""
        dropped = 0.0
        for _sent_at, answered_at, ops, _ in self._records[self._answer_head :]:
            dropped += ops
            if dropped >= calls:
                return None if answered_at == math.inf else answered_at + window_s + margin_s
        return None


@dataclass
class Ticket:
    """One booked batch: its records in the pair's and the app's send logs."""

    pair: list[float]
    app: list[float]


@dataclass
class ParkState:
    until: float  # engine clock (monotonic)
    reason: str
    usage_pct: float | None = None
    adopted: bool = False  # read from the journal (an earlier run's or another worker's), not met by us


@dataclass
class Window:
    """The governor's view of one rolling window: a pair (``buc_type`` set) or the app.

    Per metric: the last reported percentage, our acknowledged calls at that reading, and the best lower
    bound of its quota from our own calls; the call metric also has the tier's documented floor.
    """

    key: ScopeKey
    limit: int
    in_flight: int = 0
    in_flight_ops: int = 0
    answers: int = 0  # answered batches so far
    throttle_events: int = 0
    log: SendLog = field(default_factory=SendLog)
    pct: dict[str, float] = field(default_factory=dict)  # metric → last reported percent
    bound: dict[str, float] = field(default_factory=dict)  # metric → quota lower bound from our calls
    floor: float | None = None  # the tier's documented call quota (call metric only)
    acked_at_reading: float = 0.0  # our answered calls in the window at the last reading (answer view)
    reading_at: float | None = None  # engine clock of the last reading
    prev_others: float | None = None
    shared_until: float = -math.inf  # others' usage grew: share the room until then
    probe_at: float = -math.inf  # when a probe may go while only others' calls block
    probe_interval: float = 0.0  # 0: the base interval
    probing: bool = False  # a probe is out; its reading adjusts the interval
    own_at_reading: float = 0.0  # our calls in the window (answer view) at the last reading
    share: float = 1.0  # our part of the account's usage at the last reading (when shared)
    probation: bool = False  # the first reading showed others: shared until a fresh reading tells
    quiet_since: float = math.inf  # since when no reading showed others' usage growing
    others_since: float = math.inf  # since when every reading has shown others' calls
    allowance: dict[str, float] = field(default_factory=dict)  # metric → our calls the window may hold
    granted_at: float = -math.inf  # when the allowance was last granted (see Governor._grant)
    reset_at: float | None = None  # the server's "usage back to 0" time of the last reading
    last_pct: float | None = None  # the highest metric of the last reading (views, concurrency)
    changed: anyio.Event = field(default_factory=anyio.Event)

    @property
    def account_id(self) -> str | None:
        return self.key[1] if len(self.key) > 1 else None

    @property
    def buc_type(self) -> str | None:
        return self.key[2] if len(self.key) > 2 else None

    def notify(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()

    def quota(self, metric: str) -> float | None:
        """The metric's quota in calls (a lower bound). The call count: the tier floor or our own counted
        calls over the percentage, whichever is higher. CPU and total time have no documented quota: their
        percentage is converted at the rate the two moved together in the last reading (calls ÷ their
        share), so the one that is further along binds."""
        calls = max([v for v in (self.bound.get("calls"), self.floor) if v], default=None)
        if metric == "calls" or calls is None:
            return calls
        pct, call_pct = self.pct.get(metric, 0.0), self.pct.get("calls", 0.0)
        if pct <= 0 or call_pct < 1:
            return None  # nothing to convert with: the call count paces
        return calls * call_pct / pct

    def room_for_probes(self, now: float, window_s: float, ceiling: float) -> float:
        """Calls probes may still add: up to half the margin between the ceiling and 100 % (the server
        refuses once the window holds the quota), by our conservative count of the call metric; ``inf``
        while the quota is unknown."""
        quota = self.quota("calls")
        if quota is None:
            return math.inf
        limit = quota * (100.0 + ceiling) / 200.0
        return limit - self.others("calls", quota, now, window_s) - self.log.answer_view

    def others(self, metric: str, quota: float, now: float, window_s: float) -> float:
        """Calls of others in the window at the last reading (standing until a reading says otherwise)."""
        if self.reading_at is None or (now - self.reading_at > window_s and now >= self.shared_until):
            return 0.0  # every call of that reading has left the window since
        return max(0.0, self.pct.get(metric, 0.0) * quota / 100.0 - self.acked_at_reading)


class Governor:
    """Admission control for batches: ``await acquire(account, ops, buc)`` … ``release(...)`` … ``observe(...)``."""

    def __init__(self, config: GovernorConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self._pairs: dict[ScopeKey, Window] = {}
        self._app: Window | None = None
        self._parks: dict[ScopeKey, ParkState] = {}
        self._total: anyio.CapacityLimiter | None = None
        self.throttle_events = 0
        self._park_capped: set[ScopeKey] = set()  # scopes already warned about a capped park
        self._announced: dict[ScopeKey, float] = {}  # scope → end of the wait last announced
        self.announce: Callable[[Waiting], None] | None = None  # set by the engine: event + log line
        self.persist: Callable[[list[PacingRecord]], None] | None = None  # set by the engine: the journal
        self.refresh: Callable[[], Iterable[PacingRecord]] | None = None  # set by the engine: the journal
        self._persisted_at = -math.inf
        self._refreshed_at = -math.inf
        self._persist_failed = False
        self._refresh_failed = False
        # parks lifted here (clear_parks), to be cleared in the journal by the next save
        self._lifted: set[ScopeKey] = set()

    # --- windows ---------------------------------------------------------------------------------
    def pair(self, account_id: str, buc_type: str = ADS_MANAGEMENT) -> Window:
        key = pair_scope(account_id, buc_type)
        state = self._pairs.get(key)
        if state is None:
            state = Window(key, limit=self.config.initial_concurrency)
            self._pairs[key] = state
        return state

    def app(self) -> Window:
        if self._app is None:
            self._app = Window(APP, limit=self.config.max_total_concurrency)
        return self._app

    def ceiling(self, window: Window) -> float:
        name = "app" if window.key == APP else (window.buc_type or ADS_MANAGEMENT)
        return self.config.ceilings.get(name, self.config.ceiling_pct)

    # --- parks -----------------------------------------------------------------------------------
    def _scopes(self, account_id: str, buc_type: str) -> tuple[ScopeKey, ScopeKey, ScopeKey]:
        return APP, account_scope(account_id), pair_scope(account_id, buc_type)

    def park_of(self, account_id: str, buc_type: str = ADS_MANAGEMENT) -> tuple[ScopeKey, ParkState] | None:
        """The park holding (account, buc) the longest, if any is running."""
        now = self.clock.monotonic()
        best: tuple[ScopeKey, ParkState] | None = None
        for key in self._scopes(account_id, buc_type):
            park = self._parks.get(key)
            if park is not None and park.until > now and (best is None or park.until > best[1].until):
                best = (key, park)
        return best

    def parked_for(self, account_id: str, buc_type: str = ADS_MANAGEMENT) -> float:
        """Seconds until (account, buc) may send, by the parks of the app, the account and the pair."""
        held = self.park_of(account_id, buc_type)
        return 0.0 if held is None else held[1].until - self.clock.monotonic()

    def _park(self, key: ScopeKey, until: float, reason: str, pct: float | None) -> None:
        """Park ``key`` until ``until`` unless a longer park holds it already (every throttled entry of an
        answer repeats the regain time: only a park that changed wakes the waiters and goes to the journal)."""
        park = self._parks.get(key)
        if park is not None and until <= park.until:
            return
        self._parks[key] = ParkState(until, reason, pct)
        self._notify_scope(key)
        self._save(force=True)

    def clear_parks(self, account_id: str, why: str) -> None:
        """Forget the parks of the account and its pairs (not the app's): fresher news says it is usable,
        e.g. a read just now, against a park an earlier run wrote to the journal."""
        now = self.clock.monotonic()
        lifted = [
            k for k, park in self._parks.items() if k != APP and k[1] == account_id and park.until > now
        ]
        for key in lifted:
            logger.info("%s: park lifted (%s)", scope_label(key), why)
            del self._parks[key]
            self._lifted.add(key)
            self._notify_scope(key)
        if lifted:
            self._save(force=True)

    def _notify_scope(self, key: ScopeKey) -> None:
        if key == APP:
            for window in self._pairs.values():
                window.notify()
        elif key[0] == "account":
            for window in self._pairs.values():
                if window.account_id == key[1]:
                    window.notify()
        elif key in self._pairs:
            self._pairs[key].notify()

    # --- admission -------------------------------------------------------------------------------
    async def acquire(self, account_id: str, ops: int, buc_type: str = ADS_MANAGEMENT) -> Ticket:
        """Wait until (account, buc) may send a batch of ``ops`` calls; book it as in flight."""
        state = self.pair(account_id, buc_type)
        app = self.app()
        while True:
            self._refresh_if_due()
            now = self.clock.monotonic()
            if self.park_of(account_id, buc_type) is not None:
                await self.wait_out_park(account_id, buc_type)
                continue
            wait = self._pacing_wait(state, ops, now)
            if wait > 0:
                await self._sleep_unless_changed(state, wait)
                continue
            if state.in_flight >= self._limit(state):
                await self._sleep_unless_changed(state, math.inf)
                continue
            break
        # Book the send before any await, so concurrent acquirers see it in their checks.
        for window in (state, app):
            room = self._headroom(window, now, probe=False)
            if room is not None and room < self._need(window, ops):  # it goes as a probe
                window.probe_at = now + (window.probe_interval or self._base_probe_interval())
                window.probing = True
            window.in_flight += 1
            window.in_flight_ops += ops
        ticket = Ticket(state.log.add(now, ops, state.answers), app.log.add(now, ops, app.answers))
        self._expire(state, now)
        self._expire(app, now)
        if self._total is None:
            self._total = anyio.CapacityLimiter(self.config.max_total_concurrency)
        try:
            await self._total.acquire()
        except BaseException:  # cancelled before sending: free the slot; the calls age out as if answered
            for window, record in ((state, ticket.pair), (app, ticket.app)):
                window.in_flight -= 1
                window.in_flight_ops -= ops
                SendLog.answered(record, now)
            raise
        return ticket

    async def wait_out_park(self, account_id: str, buc_type: str = ADS_MANAGEMENT) -> None:
        """Return once no park of the app, the account or the pair holds (account, buc); a long wait is
        announced like any other. With a journal, the wait is cut in slices between which its parks are read
        again: another worker lifting or lengthening the park is heard before the deadline."""
        state = self.pair(account_id, buc_type)
        while True:
            self._refresh_if_due()
            held = self.park_of(account_id, buc_type)
            if held is None:
                return
            key, park = held
            wait = park.until - self.clock.monotonic()
            self._announce_wait(key, wait, park.reason, park.usage_pct)
            await self._sleep_unless_changed(state, min(wait, self._refresh_slice()))

    def _refresh_slice(self) -> float:
        """The longest sleep between two reads of the journal's parks (engine seconds)."""
        if self.refresh is None:
            return math.inf
        return max(self.config.persist_every_s, 1.0) * self.clock.scale

    def _base_probe_interval(self) -> float:
        return self.config.window_s / 60.0

    async def _sleep_unless_changed(self, state: Window, seconds: float) -> None:
        """Sleep ``seconds`` but wake early when the pair or the app changes (a new reading, a release, a
        park); the caller re-checks. A wait computed from an early reading must not outlive a better one."""
        events = (state.changed, self.app().changed)
        async with anyio.create_task_group() as tg:

            async def timer() -> None:
                await self.clock.sleep(seconds)
                tg.cancel_scope.cancel()

            async def wake_on(event: anyio.Event) -> None:
                await event.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(timer)
            for event in events:
                tg.start_soon(wake_on, event)

    def _limit(self, state: Window) -> int:
        """One batch at a time until a batch of ours was answered with a reading (a probe's reading before
        any batch says nothing of a batch's share), then the pair's concurrency limit."""
        return 1 if state.last_pct is None or state.answers == 0 else state.limit

    def _headroom(self, window: Window, now: float, *, probe: bool = True) -> float | None:
        """Calls that fit under the window's ceiling now (``None``: no reading yet, nothing to pace by).

        Per metric, from the last reading: the free room is ceiling × quota − others' calls − ours; until
        the next reading we may hold our calls of then plus half of that room (our share of it when the
        account is shared) — several workers reading the same free room before any sees the others'
        answers then take it together at most once. Room that our own calls leave as they age is ours
        again at once. With ``probe``, a probe's few calls while only others' calls block and a probe is
        due (it brings the reading that shows their calls leaving).
        """
        if window.reading_at is None:
            if window.key == APP or window.answers > 0:
                return None  # no reading (yet: Meta sends the headers "once enough calls have been made")
            # First contact: one call alone, so the first reading is taken before the window is used —
            # it may already be full (others' calls, an earlier run) and the quota is not known yet.
            return 1.0 if window.in_flight == 0 else 0.0
        self._expire(window, now)
        if window.key == APP and (self._stale(window, now) or not window.allowance):
            return None  # the app's quota is not documented: it paces only while its readings bound it
        if self._stale(window, now):
            # No reading for a whole window: what it said has aged out and nothing says what came since
            # (other workers?): look again with a probe's few calls, as at first contact.
            return float(max(1, self._probe_calls(window))) if window.in_flight == 0 else 0.0
        allowed = min(window.allowance.values()) if window.allowance else None
        if allowed is None:
            return None
        room = allowed - window.log.answer_view
        if probe and room < 1 and self._probe_due(window, now):
            return float(self._probe_calls(window)) or room
        return room

    def _stale(self, window: Window, now: float) -> bool:
        return window.reading_at is not None and now - window.reading_at > self.config.window_s

    def _blocked_by_others(self, window: Window, now: float) -> bool:
        quota = window.quota("calls")
        return quota is not None and window.others("calls", quota, now, self.config.window_s) >= 1

    def _probe_due(self, window: Window, now: float) -> bool:
        """A probe may go: only others' calls block, it is time, and — when other workers are sending —
        the last reading was under the ceiling (a probe then would only add to their load)."""
        if now < window.probe_at or not self._blocked_by_others(window, now):
            return False
        shared_ceiling = self.ceiling(window) - self.config.shared_margin_pct
        return now >= window.shared_until or (window.last_pct or 0.0) < shared_ceiling

    def _probe_calls(self, window: Window) -> int:
        """A probe's size: half the margin between the ceiling and 100 %, one call while other workers
        send, never more than fit before the server refuses by our count (others' calls never fewer than
        the last reading showed while nobody sends, so a probe cannot reach the throttle); 0: no probe."""
        now = self.clock.monotonic()
        quota = window.quota("calls") or 0.0
        calls = (
            1 if now < window.shared_until else max(1, int(quota * (100.0 - self.ceiling(window)) / 200.0))
        )
        fits = window.room_for_probes(now, self.config.window_s, self.ceiling(window))
        return calls if fits >= calls else max(0, int(fits))

    def _need(self, window: Window, ops: int) -> float:
        """Room a batch of ``ops`` needs: a batch larger than the whole allowance (a quota estimate made
        while others filled the window) needs the whole allowance, or it would never go."""
        quota = window.quota("calls")
        if quota is None:
            return float(ops)
        return float(min(ops, max(1, int(quota * self.ceiling(window) / 100.0))))

    def _headroom_wait(self, window: Window, ops: int, now: float) -> float:
        """Seconds until ``ops`` more calls fit: our calls leaving the window (our log says when), or the
        next probe while others' calls block — never beyond the server's reset time of the last reading."""
        room = self._headroom(window, now)
        need = self._need(window, ops)
        if room is None or room >= need:
            return 0.0
        first_contact = window.reading_at is None and window.answers == 0
        if window.key != APP and (first_contact or self._stale(window, now)):  # first contact, or
            # looking again after a window without readings:
            return 0.0 if window.in_flight == 0 else math.inf  # the batch that goes, or the reading it brings
        waits: list[float] = []
        free_at = window.log.free_at(need - max(0.0, room), self.config.window_s, self.config.aging_margin_s)
        if free_at is not None:
            waits.append(free_at - now)
        if self._blocked_by_others(window, now) and window.probe_at > now:
            waits.append(window.probe_at - now)  # a due probe that is too small for this batch: not a wait
        if not waits:  # nothing we know of frees room: pace at the quota rate until a reading says more
            quota = window.quota("calls") or 1.0
            waits.append(need * self.config.window_s / quota)
        wait = min(waits)
        if window.reset_at is not None and window.reset_at > now:  # "usage back to 0" by then
            wait = min(wait, window.reset_at + self.config.aging_margin_s - now)
        return max(1e-3, wait)

    def expected_wait(self, account_id: str, ops: int = 1, buc_type: str = ADS_MANAGEMENT) -> float:
        """Seconds until ``ops`` calls are expected to fit in the pair and the app if nothing new is learnt.

        Not the runner's next wake-up (:meth:`headroom_wait`), which may be a probe's look a few seconds
        ahead; this is how long the account is held, what a scheduler deciding whether to free its worker
        needs — an hour-long full window must not look like a series of 12-second waits."""
        now = self.clock.monotonic()
        return max(self._expected_wait(w, ops, now) for w in (self.pair(account_id, buc_type), self.app()))

    def _expected_wait(self, window: Window, ops: int, now: float) -> float:
        """The hold of one window: our calls leaving it, others' calls of the last reading leaving it (a
        window after that reading at most), or the server's reset time, whichever the reading allows."""
        room = self._headroom(window, now, probe=False)
        need = self._need(window, ops)
        if room is None or room >= need:
            return 0.0
        if window.in_flight > 0:
            return 0.0  # answers on their way bring the next reading: nothing to expect beyond it yet
        if window.key != APP and (window.reading_at is None or self._stale(window, now)):
            return 0.0  # first contact or a stale reading: a batch goes to look
        waits: list[float] = []
        free_at = window.log.free_at(need - max(0.0, room), self.config.window_s, self.config.aging_margin_s)
        if free_at is not None:
            waits.append(free_at - now)
        others = self._blocked_by_others(window, now) and window.reading_at is not None
        if others and window.reading_at is not None:
            waits.append(window.reading_at + self.config.window_s + self.config.aging_margin_s - now)
        if not waits:
            waits.append(need * self.config.window_s / (window.quota("calls") or 1.0))
        wait = min(waits)  # whichever frees room first: then it is looked at again
        if window.reset_at is not None and window.reset_at > now:
            wait = min(wait, window.reset_at + self.config.aging_margin_s - now)
        return max(0.0, wait)

    def headroom(self, account_id: str, buc_type: str = ADS_MANAGEMENT) -> int | None:
        """Calls that fit under the ceilings of the pair and the app right now (None while unknown)."""
        now = self.clock.monotonic()
        rooms = [
            r
            for r in (self._headroom(self.pair(account_id, buc_type), now), self._headroom(self.app(), now))
            if r is not None
        ]
        return int(min(rooms)) if rooms else None

    def headroom_wait(self, account_id: str, ops: int, buc_type: str = ADS_MANAGEMENT) -> float:
        """Seconds until ``ops`` more calls fit under the ceilings of the pair and the app (the runner's
        next wake-up when nothing fits)."""
        return self._pacing_wait(self.pair(account_id, buc_type), ops, self.clock.monotonic())

    def _pacing_wait(self, state: Window, ops: int, now: float) -> float:
        """The longer of the pair's and the app's waits for ``ops`` calls; a long one is announced."""
        wait, window = 0.0, state
        for candidate in (state, self.app()):
            candidate_wait = self._headroom_wait(candidate, ops, now)
            if candidate_wait > wait:
                wait, window = candidate_wait, candidate
        if wait > 0:  # announced as the hold it is, not the next look (a probe's, a few seconds ahead)
            held = max(wait, self._expected_wait(window, ops, now))
            self._announce_wait(window.key, held, self._pacing_reason(window), window.last_pct)
        return wait

    def _expire(self, window: Window, now: float) -> None:
        window.log.expire(now, self.config.window_s, self.config.aging_margin_s)

    def release(
        self, account_id: str, ops: int, buc_type: str = ADS_MANAGEMENT, ticket: Ticket | None = None
    ) -> None:
        """The batch of ``ticket`` was answered (or failed): free its slot, age its calls from now."""
        state = self.pair(account_id, buc_type)
        app = self.app()
        now = self.clock.monotonic()
        for window, record in (
            (state, ticket.pair if ticket else None),
            (app, ticket.app if ticket else None),
        ):
            window.answers += 1
            if record is not None:
                SendLog.answered(record, now)
            window.in_flight = max(0, window.in_flight - 1)
            window.in_flight_ops = max(0, window.in_flight_ops - ops)
        if self._total is not None:
            self._total.release()
        self._adjust_limit(state)
        state.notify()
        app.notify()  # batches of other accounts may wait for the app's room

    def _adjust_limit(self, state: Window) -> None:
        """Additive increase while usage is low, decrease near the ceiling; once per answered batch."""
        pct = state.last_pct
        if pct is None:
            return
        if pct >= self.ceiling(state):
            state.limit = max(1, state.limit // 2)
        elif pct >= self.config.slow_pct:
            state.limit = max(1, state.limit - 1)
        elif state.limit < self.config.max_concurrency:
            # Slow start: double while usage is far from the slow threshold, then add one at a time.
            grown = state.limit * 2 if pct < self.config.slow_pct / 2 else state.limit + 1
            state.limit = min(self.config.max_concurrency, grown)

    # --- readings --------------------------------------------------------------------------------
    def observe(
        self,
        account_id: str,
        usage: UsageSnapshot,
        buc_type: str = ADS_MANAGEMENT,
        ticket: Ticket | None = None,
    ) -> None:
        """Feed the usage headers of an answer (after ``release``): the pair the batch was charged to, every
        other use case the headers report for the account, and the app. ``ticket`` is the batch's (``None``
        for a read of the engine's own or a reading that only carries a regain time)."""
        now = self.clock.monotonic()
        charged = self.pair(account_id, buc_type)
        types = {entry.type for entry in usage.buc if entry.object_id == normalize_account_id(account_id)}
        types.add(buc_type)
        for buc in sorted(types):
            reading = reading_for(usage, account_id, buc)
            if reading is None:
                continue
            window = charged if buc == buc_type else self.pair(account_id, buc)
            if reading.regain_after_s > 0:
                seconds = self._cap_park(window.key, reading.regain_after_s)
                minutes = math.ceil(reading.regain_after_s / 60)
                self._park(
                    window.key, now + seconds, f"usage headers: regain in {minutes} min", reading.max_pct
                )
            self._read(window, reading, ticket.pair if ticket and window is charged else None, now)
        app = app_reading(usage)
        if app is not None:
            self._read(self.app(), app, ticket.app if ticket else None, now)
        self._save()

    def _read(self, window: Window, reading: Reading, record: list[float] | None, now: float) -> None:
        """Take one reading into ``window``: percentages, quota bounds, others' usage, sharing, probes."""
        self._expire(window, now)
        first = window.last_pct is None
        window.last_pct = reading.max_pct
        if reading.tier is not None and window.buc_type is not None:
            floor = TIER_FLOORS.get((window.buc_type, reading.tier))
            if floor is not None and self.config.trust_tier_floors:
                window.floor = floor
        # Our answered calls, two ways. The send view ages them first, so its count is never above the
        # server's: the base of a quota bound. The answer view ages them last: counted as ours in the
        # reading, a call the server already dropped is also still in our count of now, and the two cancel
        # in the room — while calls sent an hour ago and still counted are not mistaken for others' (at
        # 3600x a round trip is a tenth of the window: bench/README.md, scenario P).
        counted = float(max(0, window.log.send_view - window.in_flight_ops))
        acked = float(max(0, window.log.answer_view - window.in_flight_ops))
        # A clean reading (no other batch of the window answered meanwhile) bounds the call quota. Graph's
        # call_count is a whole percentage rounded down, so under 1 % says the quota is over 100 × our calls:
        # that raises a tier floor (40 calls per active ad make millions for a big account) — else 97,000
        # calls read as 0 % of the standard tier's floor of 100,000 waited an hour. Without a floor such a
        # bound from a few calls would only hold the first sends back, so it waits for a reading of 1 %.
        clean = record is not None and window.answers - 1 == int(record[3])
        values = {"calls": reading.calls, "cputime": reading.cputime, "time": reading.time}
        below_one = reading.calls < 1.0 and window.floor is not None
        if clean and counted > 0 and (reading.calls >= 1.0 or below_one):
            bound = counted * 100.0 / max(reading.calls, 1.0)
            if bound > window.bound.get("calls", 0.0):
                window.bound["calls"] = bound
        fresh = record is not None and record[0] >= window.granted_at
        quota = window.quota("calls")
        if quota is not None:
            # Judged by the fewest calls of others the reading allows (ours counted by the answer view,
            # the most the server can hold of them): calls of ours the server counts a little after our
            # send view dropped them must not look like another worker starting.
            taken_from = record[0] if record is not None else now  # the server read it after our send
            margin = self.config.window_s + self.config.aging_margin_s
            own_most = window.log.answer_view + window.log.dropped_since(taken_from - margin)
            others_now = max(0.0, reading.calls * quota / 100.0 - own_most)
            self._judge_sharing(window, others_now, quota, reading.precise, fresh, now)
            window.prev_others = others_now
        window.own_at_reading = float(window.log.answer_view)
        if quota is not None:
            others_now = max(0.0, reading.calls * quota / 100.0 - acked)
            window.share = min(1.0, max(_MIN_SHARE, acked / max(1.0, acked + others_now)))
        window.pct = values
        window.acked_at_reading = acked
        window.reading_at = now
        self._grant(window, fresh=fresh, now=now)
        window.reset_at = now + reading.reset_after_s if reading.reset_after_s > 0 else None
        if first and record is not None and reading.max_pct < self.config.slow_pct / 2:
            # Slow start from the first reading of a batch of ours: as many batches like it as fit below
            # half the slow threshold may go at once (the headroom check still paces).
            fit = int(self.config.slow_pct / 2 / max(reading.max_pct, 0.01))
            window.limit = max(window.limit, min(self.config.max_concurrency, fit))
        window.notify()

    def _judge_sharing(
        self, window: Window, others: float, quota: float, precise: bool, fresh: bool, now: float
    ) -> None:
        """Is someone else sending on this window? Others' usage that grows between readings says so
        (remembered for two windows: their calls age out meanwhile, and they come back). The first
        reading showing others starts a probation: alone only if a fresh reading shows no growth — the
        calls were left by someone who stopped (an earlier run, another tool) — so workers starting
        together do not each take the room as their own. Probes adapt to what their readings show."""
        tolerance = 1.0 if precise else max(1.0, quota / 100.0)  # whole percentages hide up to 1 %
        previous = window.prev_others
        if previous is None:
            window.quiet_since = now
            if others >= 1.0:
                window.shared_until, window.probation = math.inf, True
            return
        grew = others - previous
        # Others' calls still there a window after we first saw them are new ones: someone is sending,
        # though their usage may hold steady (workers at the ceiling replace their own calls).
        if others < max(1.0, tolerance):
            window.others_since = math.inf
        elif window.others_since == math.inf:
            window.others_since = now
        lasting = now - window.others_since > self.config.window_s
        if grew > tolerance or lasting or (window.probation and grew >= 0.5):  # on probation any growth tells
            window.shared_until, window.probation = now + 2 * self.config.window_s, False
            window.quiet_since = now
        elif window.probation and fresh:
            window.shared_until, window.probation = -math.inf, False
        if window.probing and fresh:  # the reading a probe brought
            window.probing = False
            if grew < -1.0:
                window.probe_interval = 0.0  # room came back: probe at the base interval again
            else:  # nothing left yet: probe half as often (the server's reset time bounds it)
                base = self._base_probe_interval()
                window.probe_interval = min(self.config.window_s / 4, max(base, window.probe_interval * 2))

    def _grant(self, window: Window, *, fresh: bool, now: float) -> None:
        """From the reading just taken: how many calls of ours the window may hold until the next grant.

        Per metric, the free room is ceiling × quota − others' calls − ours. A *fresh* reading (of a batch
        sent after the last grant, so it shows what others did since) grants our calls of now plus half of
        that room — our share of it when the account is shared: workers reading the same room before any
        sees the others' answers then take it together at most once. Any other reading only shrinks the
        grant when it shows less room (several answers of one round trip are one look at the server).
        """
        shared = now < window.shared_until
        # Shared: a margin more below the ceiling, for the others' answers still on their way to us.
        ceiling = self.ceiling(window) - (self.config.shared_margin_pct if shared else 0.0)
        grants: dict[str, float] = {}
        for metric in _METRICS:
            quota = window.quota(metric)
            if quota is None:
                continue
            others = window.others(metric, quota, now, self.config.window_s)
            free = quota * ceiling / 100.0 - others - window.own_at_reading
            if free <= 0:
                grant = window.own_at_reading + free
            elif shared:  # our share of half the room, and at most twice what the server counted of ours
                grant = window.own_at_reading + free * _GREED * window.share
                grant = min(grant, max(float(self._probe_calls(window)), 2 * window.acked_at_reading))
            else:  # alone: half the room, all of it once a whole window showed nobody else sending
                settled = now - window.quiet_since >= self.config.window_s
                grant = window.own_at_reading + free * (1.0 if settled else _GREED)
            previous = window.allowance.get(metric)
            grants[metric] = (
                grant if fresh or previous is None else min(previous, window.own_at_reading + free)
            )
        window.allowance = grants
        if fresh:
            window.granted_at = now

    # --- throttles -------------------------------------------------------------------------------
    def throttled(
        self,
        account_id: str,
        buc_type: str,
        usage: UsageSnapshot | None,
        scope: BucType | str | None = None,
        code: int | None = None,
    ) -> float:
        """A throttle error: park its scope until the documented regain time; returns the park seconds.

        ``scope`` is :attr:`GraphError.throttle_scope`: ``platform`` parks the app (every account),
        ``unknown`` the account (every use case), a BUC type that pair of the account.
        """
        if scope == BucType.PLATFORM:
            key = APP
        elif scope == BucType.UNKNOWN:
            key = account_scope(account_id)
        else:
            key = pair_scope(account_id, str(scope) if scope else buc_type)
        window = self.app() if key == APP else self.pair(account_id, key[2] if key[0] == "pair" else buc_type)
        now = self.clock.monotonic()
        regain = 0.0
        if usage is not None and key[0] == "pair":
            regain = usage.regain_after_s(account_id, key[2])
        if regain > 0:
            regain = self._cap_park(key, regain)
        else:
            # No estimate: back off harder each time it happens.
            regain = min(
                self.config.default_park_s * (2 ** min(window.throttle_events, 5)), self.config.max_park_s
            )
        window.throttle_events += 1
        self.throttle_events += 1
        window.limit = 1
        window.shared_until = now + 2 * self.config.window_s  # someone else took room we counted on
        window.quiet_since = now
        for metric, bound in list(window.bound.items()):  # the quota shrank (fewer active ads) or is shared
            window.bound[metric] = bound * 0.9
        label = f"throttled (code {code})" if code is not None else "throttled"
        self._park(key, now + regain, label, window.last_pct)
        return regain

    def _cap_park(self, key: ScopeKey, seconds: float) -> float:
        """``seconds`` the headers asked for, at most ``max_park_s``: a broken or hostile header must not
        park a scope for ever (the parser already bounds it to a finite value). Warns once per scope."""
        cap = self.config.max_park_s
        if seconds <= cap:
            return seconds
        if key not in self._park_capped:
            self._park_capped.add(key)
            logger.warning(
                "%s: the server reported %.0f s to regain access; parking for the cap, max_park_s=%.0f s",
                scope_label(key),
                seconds,
                cap,
            )
        return cap

    def usage_pct(self, account_id: str, buc_type: str = ADS_MANAGEMENT) -> float | None:
        return self.pair(account_id, buc_type).last_pct

    # --- waits users see -------------------------------------------------------------------------
    def _pacing_reason(self, window: Window) -> str:
        pct = window.last_pct
        ceiling = self.ceiling(window)
        usage = "unknown" if pct is None else f"{pct:.0f} %"
        return f"pacing: usage {usage} at the {ceiling:.0f} % ceiling; waiting for calls to leave the window"

    def _announce_wait(self, key: ScopeKey, seconds: float, reason: str, pct: float | None) -> None:
        """Hand a wait longer than ``announce_after_s`` to ``announce``, once per scope and episode."""
        if seconds / self.clock.scale <= self.config.announce_after_s or self.announce is None:
            return  # short in wall time (a sped-up clock's minutes can be milliseconds)
        if math.isinf(seconds):
            return  # an infinite wait is for the answer in flight: it ends with that answer
        now = self.clock.monotonic()
        until = now + seconds
        last = self._announced.get(key)
        if last is not None and last > now and abs(until - last) <= max(1.0, 0.1 * seconds):
            return
        self._announced[key] = until
        account = key[1] if len(key) > 1 else None
        buc = key[2] if len(key) > 2 else None
        try:
            self.announce(Waiting(key[0], account, buc, reason, pct, seconds))
        except Exception:  # an observer must never break a job
            logger.exception("announcing a wait failed")

    # --- memory across runs ----------------------------------------------------------------------
    def export(self) -> list[PacingRecord]:
        """Every scope's park and last reading, in wall-clock time, for the journal."""
        now, wall = self.clock.monotonic(), self.clock.wall()
        # only what this governor knows: a park read from the journal is not written back (the journal keeps
        # it until it runs out or its writer lifts it), a window without a reading says nothing
        own = {k for k, p in self._parks.items() if p.until > now and not p.adopted}
        read = {k for k, w in self._pairs.items() if w.reading_at is not None}
        keys = own | read | self._lifted
        if self._app is not None and self._app.reading_at is not None:
            keys.add(APP)
        records: list[PacingRecord] = []
        for key in sorted(keys):
            park = self._parks.get(key) if key in own else None
            parked = park is not None
            window = self._app if key == APP else self._pairs.get(key)
            state: dict[str, Any] = {}
            if window is not None and window.reading_at is not None:
                state = {
                    "pct": dict(window.pct),
                    "bound": dict(window.bound),
                    "floor": window.floor,
                    "reading_at": wall - (now - window.reading_at),
                    "shared_until": (
                        wall + min(window.shared_until - now, 2 * self.config.window_s)
                        if window.shared_until > now
                        else 0.0
                    ),
                    "reset_at": wall + (window.reset_at - now) if window.reset_at is not None else 0.0,
                    # our calls in the window become "others" for whoever reads this record
                }
            records.append(
                PacingRecord(
                    scope=scope_name(key),
                    parked_until=wall + (park.until - now) if parked and park else 0.0,
                    reason=park.reason if parked and park else "",
                    usage_pct=window.last_pct if window is not None else (park.usage_pct if park else None),
                    state=state,
                    updated_at=wall,
                    lifted=key in self._lifted and not parked,
                )
            )
        return records

    def restore(self, records: Iterable[PacingRecord]) -> None:
        """Start from what an earlier run (or another process) wrote: parks still running hold their scope,
        readings younger than a window count as others' usage (none of their calls is ours)."""
        records = list(records)
        self._adopt_parks(records, running=False)
        now, wall = self.clock.monotonic(), self.clock.wall()
        self._refreshed_at = now
        for record in records:
            key = _scope_key(record.scope)
            if key is None:
                continue
            state = record.state
            reading_at = _number(state.get("reading_at"))
            if (
                not state
                or reading_at is None
                or wall - reading_at > self.config.window_s
                or key[0] == "account"
            ):
                continue
            window = self.app() if key == APP else self.pair(key[1], key[2])
            if window.reading_at is not None:
                continue  # this process already has fresher knowledge
            window.pct = {m: v for m in _METRICS if (v := _number(_get(state, "pct", m))) is not None}
            window.bound = {m: v for m in _METRICS if (v := _number(_get(state, "bound", m))) is not None}
            window.floor = _number(state.get("floor"))
            window.reading_at = now - (wall - reading_at)
            window.acked_at_reading = 0.0
            window.last_pct = record.usage_pct
            shared = _number(state.get("shared_until")) or 0.0
            if shared > wall:
                window.shared_until = now + shared - wall
            reset = _number(state.get("reset_at")) or 0.0
            if reset > wall:
                window.reset_at = now + reset - wall
            window.prev_others = None  # judged afresh from this run's readings
            self._grant(window, fresh=True, now=now)

    def _adopt_parks(self, records: Iterable[PacingRecord], *, running: bool) -> None:
        """Take the journal's parks: an earlier run's, or another worker's on an account we share. One running
        longer than ours (by more than ``_PARK_SLACK_S``) replaces ours; one adopted before follows the
        journal (lengthened, shortened, lifted or run out there: here too). While ``running``, a change is
        logged and wakes the scope's waiters, who look again."""
        now, wall = self.clock.monotonic(), self.clock.wall()
        parked: dict[ScopeKey, PacingRecord] = {}
        for record in records:
            key = _scope_key(record.scope)
            if key is not None and record.parked_until > wall:
                parked[key] = record
        changed: list[ScopeKey] = []
        for key, record in parked.items():
            ours = self._parks.get(key)
            until = now + record.parked_until - wall
            if ours is not None and ours.until > now:
                longer = until > ours.until + _PARK_SLACK_S
                if not (longer or (ours.adopted and abs(until - ours.until) > _PARK_SLACK_S)):
                    continue
            where = "from the journal: another worker's" if running else "restored from the journal"
            self._parks[key] = ParkState(
                until, f"{record.reason or 'parked'} ({where})", record.usage_pct, adopted=True
            )
            changed.append(key)
        for key, park in list(self._parks.items()):
            if park.adopted and park.until > now and key not in parked:
                del self._parks[key]  # lifted (or rewritten unparked) by its writer
                changed.append(key)
        if not running:
            return
        for key in changed:
            now_held = self._parks.get(key)
            if now_held is None:
                logger.info("%s: park lifted in the journal by another worker", scope_label(key))
            else:
                logger.info(
                    "%s: parked for %.0f s by the journal (%s)",
                    scope_label(key),
                    now_held.until - now,
                    now_held.reason,
                )
            self._notify_scope(key)

    def _refresh_if_due(self) -> None:
        """Read the journal's parks again, at most every ``persist_every_s`` of wall time (see ``restore``)."""
        if self.refresh is None:
            return
        now = self.clock.monotonic()
        if (now - self._refreshed_at) / self.clock.scale < self.config.persist_every_s:
            return
        self._refreshed_at = now
        try:
            records = list(self.refresh())
        except Exception as err:  # pacing memory is advice: a journal that cannot give it must not stop a job
            if not self._refresh_failed:
                self._refresh_failed = True
                logger.warning("could not read the pacing state from the journal: %s", err)
            return
        self._adopt_parks(records, running=True)

    def _save(self, *, force: bool = False) -> None:
        """Write the state to the journal: at once after a park, else at most every ``persist_every_s`` of
        wall time (a sped-up clock's ten seconds would be a write per batch)."""
        if self.persist is None:
            return
        now = self.clock.monotonic()
        if not force and (now - self._persisted_at) / self.clock.scale < self.config.persist_every_s:
            return
        self._persisted_at = now
        lifted = set(self._lifted)
        try:
            self.persist(self.export())
            self._lifted -= lifted
        except Exception as err:  # pacing memory is advice: a journal that cannot take it must not stop a job
            if not self._persist_failed:
                self._persist_failed = True
                logger.warning("could not save the pacing state to the journal: %s", err)

    def flush(self) -> None:
        """Write the state now (end of a run)."""
        self._save(force=True)


def _get(state: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(state, dict):
            return None
        state = state.get(part)
    return state


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)
