"""Pacing per (ad account, business use case), driven by the usage headers of every response.

Why per pair: BUC limits apply "to the ad account across the same Business Use Case" (S003 §Business
Use Case Rate Limits), so one throttled account must not stall the others ("Switch to other ad accounts
and come back to this account later", S003 §Rate Limits).

Policy for one pair:
- below ``slow_pct`` it raises concurrency by one per good answer (additive increase);
- from ``slow_pct`` it halves concurrency and, from ``ceiling_pct``, paces sends at the estimated quota
  rate (calls per window), so usage plateaus under 100 % instead of tripping the throttle. The quota is
  estimated from our own calls in the window and the reported percentage — other clients on the account
  make the estimate lower, i.e. safer;
- when throttled (or the headers report time to regain access) it parks the pair until then and sends
  it nothing: "Continuing to make calls will … increase the time before calls will be successful".
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import anyio

from bulk_engine.config import GovernorConfig
from bulk_engine.protocol.usage import UsageSnapshot

from .clock import Clock

logger = logging.getLogger(__name__)

Ticket = list[float]
"""One sent batch: [sent_at, answered_at (inf while in flight), ops, answers of the pair before it]."""


class SendLog:
    """Our own calls of one pair in the rolling window, seen two ways that bracket the server's count.

    The server counts a call at some moment between our send and its answer. Ageing calls from their
    *send* time gives a count that is never above the server's (a safe base for estimating the quota:
    ``count × 100 / pct`` is then never above the true quota); ageing them from their *answer* time gives
    a count never below it (a safe base for headroom: we never believe calls left the window before the
    server does). Records are kept in send order; both views advance a head over them.
    """

    __slots__ = ("_answer_head", "_records", "_send_head", "answer_view", "send_view")

    def __init__(self) -> None:
        self._records: list[list[float]] = []  # [sent_at, answered_at (inf while in flight), ops]
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
        while self._answer_head < len(records) and records[self._answer_head][1] < now - window_s - margin_s:
            self.answer_view -= int(records[self._answer_head][2])
            self._answer_head += 1
        head = min(self._send_head, self._answer_head)
        if head > 1024 and head * 2 > len(records):
            del records[:head]
            self._send_head -= head
            self._answer_head -= head

    def free_at(self, calls: float, window_s: float, margin_s: float) -> float | None:
        """When ``calls`` of our calls will have left the window by the answer view (None: unknown yet)."""
        dropped = 0.0
        for _sent_at, answered_at, ops, _ in self._records[self._answer_head :]:
            dropped += ops
            if dropped >= calls:
                return None if answered_at == math.inf else answered_at + window_s + margin_s
        return None


@dataclass
class PairState:
    """The governor's view of one (account, BUC type)."""

    account_id: str
    buc_type: str
    limit: int
    in_flight: int = 0
    parked_until: float = 0.0
    last_pct: float | None = None
    quota_estimate: float | None = None
    in_flight_ops: int = 0
    throttle_events: int = 0
    log: SendLog = field(default_factory=lambda: SendLog())
    answers: int = 0  # answered batches so far
    changed: anyio.Event = field(default_factory=anyio.Event)

    def notify(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()


class Governor:
    """Admission control for batches: ``await acquire(account, buc, ops)`` … ``release(...)``."""

    def __init__(self, config: GovernorConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self._pairs: dict[tuple[str, str], PairState] = {}
        self._total = anyio.CapacityLimiter(config.max_total_concurrency)
        self.throttle_events = 0
        self._park_capped: set[tuple[str, str]] = set()  # pairs already warned about a capped park

    def pair(self, account_id: str, buc_type: str = "ads_management") -> PairState:
        key = (account_id, buc_type)
        state = self._pairs.get(key)
        if state is None:
            state = PairState(account_id, buc_type, limit=self.config.initial_concurrency)
            self._pairs[key] = state
        return state

    def pairs(self) -> list[PairState]:
        return list(self._pairs.values())

    def parked_for(self, account_id: str, buc_type: str = "ads_management") -> float:
        return max(0.0, self.pair(account_id, buc_type).parked_until - self.clock.monotonic())

    async def acquire(self, account_id: str, ops: int, buc_type: str = "ads_management") -> Ticket:
        """Wait until the pair may send a batch of ``ops`` calls, count it as in flight, return its ticket."""
        state = self.pair(account_id, buc_type)
        while True:
            now = self.clock.monotonic()
            wait = state.parked_until - now
            if wait <= 0:
                wait = self._headroom_wait(state, ops, now)
            if wait > 0:
                await self._sleep_unless_changed(state, wait)
                continue
            if state.in_flight >= self._limit(state):
                await state.changed.wait()
                continue
            break
        # Book the send before any await, so concurrent acquirers see it in their checks.
        state.in_flight += 1
        state.in_flight_ops += ops
        ticket = self._record_send(state, ops, now)
        try:
            await self._total.acquire()
        except BaseException:  # cancelled before sending: free the slot; the calls age out as if answered
            state.in_flight -= 1
            state.in_flight_ops -= ops
            SendLog.answered(ticket, now)
            raise
        return ticket

    async def _sleep_unless_changed(self, state: PairState, seconds: float) -> None:
        """Sleep ``seconds`` but wake early when the pair changes (a new usage reading, a release).

        A wait computed from an early, low quota estimate (usage that other clients or earlier runs
        left in the window makes the first estimates far too small) would otherwise hold a batch for
        up to an hour after later readings have corrected the estimate. The caller re-checks.
        """
        changed = state.changed
        async with anyio.create_task_group() as tg:

            async def timer() -> None:
                await self.clock.sleep(seconds)
                tg.cancel_scope.cancel()

            tg.start_soon(timer)
            await changed.wait()
            tg.cancel_scope.cancel()

    def _limit(self, state: PairState) -> int:
        """One batch at a time until the first usage reading tells us where the account stands (a reading
        from a probe, before any batch of ours was answered, does not count: it says nothing of a batch)."""
        return 1 if state.last_pct is None or state.answers == 0 else state.limit

    def _headroom_wait(self, state: PairState, ops: int, now: float) -> float:
        """How long until ``ops`` more calls fit under the ceiling of the rolling window.

        Our own send log says when our calls leave the window; the quota estimate turns the ceiling
        percentage into calls. Unknown quota → no wait (the first readings establish it).
        """
        quota = state.quota_estimate
        if quota is None:
            return 0.0
        self._expire(state, now)
        allowed = quota * self.config.ceiling_pct / 100.0
        # A batch larger than the whole allowance (an estimate made while others' calls filled the window:
        # workers sharing the account, an earlier run) can never fit beside our calls, and no reading comes
        # to raise the estimate while we wait: it goes once none of our calls are left in the window.
        excess = state.log.answer_view + min(ops, allowed) - allowed
        if excess <= 0:
            return 0.0
        free_at = state.log.free_at(excess, self.config.window_s, self.config.aging_margin_s)
        if free_at is not None:
            return max(0.0, free_at - now)
        # Our log cannot explain the usage yet (answers pending, or other clients share the account):
        # pace at the quota rate.
        return ops * self.config.window_s / quota

    def headroom(self, account_id: str, buc_type: str = "ads_management") -> int | None:
        """Calls that fit under the ceiling right now (None while the quota is unknown)."""
        state = self.pair(account_id, buc_type)
        if state.quota_estimate is None:
            return None
        self._expire(state, self.clock.monotonic())
        return int(state.quota_estimate * self.config.ceiling_pct / 100.0) - state.log.answer_view

    def headroom_wait(self, account_id: str, ops: int, buc_type: str = "ads_management") -> float:
        """Seconds until ``ops`` more calls fit under the ceiling."""
        return self._headroom_wait(self.pair(account_id, buc_type), ops, self.clock.monotonic())

    def _expire(self, state: PairState, now: float) -> None:
        state.log.expire(now, self.config.window_s, self.config.aging_margin_s)

    def release(
        self, account_id: str, ops: int, buc_type: str = "ads_management", ticket: Ticket | None = None
    ) -> None:
        """The batch of ``ticket`` was answered (or failed): free its slot, age its calls from now."""
        state = self.pair(account_id, buc_type)
        state.answers += 1
        if ticket is not None:
            SendLog.answered(ticket, self.clock.monotonic())
        state.in_flight = max(0, state.in_flight - 1)
        state.in_flight_ops = max(0, state.in_flight_ops - ops)
        self._total.release()
        self._adjust_limit(state)
        state.notify()

    def _adjust_limit(self, state: PairState) -> None:
        """Additive increase while usage is low, decrease near the ceiling; once per answered batch."""
        pct = state.last_pct
        if pct is None:
            return
        if pct >= self.config.ceiling_pct:
            state.limit = max(1, state.limit // 2)
        elif pct >= self.config.slow_pct:
            state.limit = max(1, state.limit - 1)
        elif state.limit < self.config.max_concurrency:
            # Slow start: double while usage is far from the slow threshold, then add one at a time.
            grown = state.limit * 2 if pct < self.config.slow_pct / 2 else state.limit + 1
            state.limit = min(self.config.max_concurrency, grown)

    def _record_send(self, state: PairState, ops: int, now: float) -> Ticket:
        ticket = state.log.add(now, ops, state.answers)
        self._expire(state, now)
        return ticket

    def observe(
        self,
        account_id: str,
        usage: UsageSnapshot,
        buc_type: str = "ads_management",
        ticket: Ticket | None = None,
    ) -> None:
        """Feed the usage headers of the answer to the batch of ``ticket`` (after ``release``)."""
        state = self.pair(account_id, buc_type)
        pct = usage.max_pct_for(account_id, buc_type)
        regain = usage.regain_after_s(account_id, buc_type)
        now = self.clock.monotonic()
        if regain > 0:
            self._park(state, now + self._cap_park(state, regain))
        if pct is None:
            return
        first = state.last_pct is None
        state.last_pct = pct
        if first and ticket is not None and pct < self.config.slow_pct / 2:  # a batch of ours, not a probe
            # Slow start from the first reading: as many batches like the first one as fit below half
            # the slow threshold may go at once (its usage overstates one batch's share when others'
            # calls are in the window, which only makes this smaller); the headroom check still paces.
            fit = int(self.config.slow_pct / 2 / max(pct, 0.01))
            state.limit = max(state.limit, min(self.config.max_concurrency, fit))
        self._expire(state, now)
        # The send view minus what is in flight is never above the server's count, so each reading gives
        # a lower bound of the quota; the best of them is the estimate (a reading taken just as a burst
        # leaves the window only gives a poor bound, never a wrong one).
        # Only a clean reading counts: no other batch of the pair was answered while this one was in
        # flight (else answers may have crossed and the reading predates calls we count as done).
        clean = ticket is not None and state.answers - 1 == int(ticket[3])
        acknowledged = state.log.send_view - state.in_flight_ops
        if clean and pct >= 1.0 and acknowledged > 0:
            bound = acknowledged * 100.0 / pct
            # At the ceiling the latest reading wins even when lower: alone it is about the quota anyway,
            # but when other workers share the account it is this worker's share (its calls ÷ the usage
            # they all see), so each one paces to its share instead of each pacing to the whole quota.
            at_ceiling = pct >= self.config.ceiling_pct
            if state.quota_estimate is None or bound > state.quota_estimate or at_ceiling:
                state.quota_estimate = bound
        state.notify()

    def throttled(self, account_id: str, buc_type: str, usage: UsageSnapshot | None) -> float:
        """A throttle error: park the pair until the documented regain time; returns the park seconds."""
        state = self.pair(account_id, buc_type)
        now = self.clock.monotonic()
        regain = usage.regain_after_s(account_id, buc_type) if usage is not None else 0.0
        if regain > 0:
            regain = self._cap_park(state, regain)
        else:
            # No estimate: back off harder each time it happens while parked.
            regain = min(
                self.config.default_park_s * (2 ** min(state.throttle_events, 5)), self.config.max_park_s
            )
        state.throttle_events += 1
        self.throttle_events += 1
        state.limit = 1
        if state.quota_estimate is not None:  # the quota shrank (fewer active ads) or others share it
            state.quota_estimate *= 0.9
        self._park(state, now + regain)
        return regain

    def _cap_park(self, state: PairState, seconds: float) -> float:
        """``seconds`` the headers asked for, at most ``max_park_s``: a broken or hostile header must not
        park a pair for ever (the parser already bounds it to a finite value). Warns once per pair."""
        cap = self.config.max_park_s
        if seconds <= cap:
            return seconds
        key = (state.account_id, state.buc_type)
        if key not in self._park_capped:
            self._park_capped.add(key)
            logger.warning(
                "%s/%s: the server reported %.0f s to regain access; parking for the cap, max_park_s=%.0f s",
                state.account_id,
                state.buc_type,
                seconds,
                cap,
            )
        return cap

    def _park(self, state: PairState, until: float) -> None:
        if until > state.parked_until:
            state.parked_until = until
        state.notify()

    def usage_pct(self, account_id: str, buc_type: str = "ads_management") -> float | None:
        return self.pair(account_id, buc_type).last_pct

    @staticmethod
    def minutes(seconds: float) -> int:
        return math.ceil(seconds / 60)
