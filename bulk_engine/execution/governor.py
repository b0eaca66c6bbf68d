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

import math
from collections import deque
from dataclasses import dataclass, field

import anyio

from bulk_engine.config import GovernorConfig
from bulk_engine.protocol.usage import UsageSnapshot

from .clock import Clock


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
    sent: deque[tuple[float, int]] = field(default_factory=deque)  # (time, ops) in the window
    sent_total: int = 0
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

    async def acquire(self, account_id: str, ops: int, buc_type: str = "ads_management") -> None:
        """Wait until the pair may send a batch of ``ops`` calls, then count it as in flight."""
        state = self.pair(account_id, buc_type)
        while True:
            now = self.clock.monotonic()
            wait = state.parked_until - now
            if wait <= 0:
                wait = self._headroom_wait(state, ops, now)
            if wait > 0:
                await self.clock.sleep(wait)
                continue
            if state.in_flight >= self._limit(state):
                await state.changed.wait()
                continue
            break
        # Book the send before any await, so concurrent acquirers see it in their checks.
        state.in_flight += 1
        state.in_flight_ops += ops
        self._record_send(state, ops, now)
        await self._total.acquire()

    def _limit(self, state: PairState) -> int:
        """One batch at a time until the first usage reading tells us where the account stands."""
        return 1 if state.last_pct is None else state.limit

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
        excess = state.sent_total + ops - allowed
        if excess <= 0:
            return 0.0
        dropped = 0
        for sent_at, count in state.sent:
            dropped += count
            if dropped >= excess:
                return max(0.0, sent_at + self.config.window_s + self.config.aging_margin_s - now)
        # Our log cannot explain the usage (other clients share the account): pace at the quota rate.
        return ops * self.config.window_s / quota

    def _expire(self, state: PairState, now: float) -> None:
        horizon = now - self.config.window_s - self.config.aging_margin_s
        while state.sent and state.sent[0][0] < horizon:
            state.sent_total -= state.sent.popleft()[1]

    def release(self, account_id: str, ops: int, buc_type: str = "ads_management") -> None:
        state = self.pair(account_id, buc_type)
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

    def _record_send(self, state: PairState, ops: int, now: float) -> None:
        state.sent.append((now, ops))
        state.sent_total += ops
        self._expire(state, now)

    def observe(self, account_id: str, usage: UsageSnapshot, buc_type: str = "ads_management") -> None:
        """Feed the usage headers of a response (success or error, outer or inner batch entry)."""
        state = self.pair(account_id, buc_type)
        pct = usage.max_pct_for(account_id, buc_type)
        regain = usage.regain_after_s(account_id, buc_type)
        now = self.clock.monotonic()
        if regain > 0:
            self._park(state, now + regain)
        if pct is None:
            return
        # Answers of concurrent batches arrive out of order; a reading lower than the previous one
        # while other batches are in flight is stale, and would inflate the quota estimate.
        fresh = state.last_pct is None or pct >= state.last_pct or state.in_flight == 0
        if not fresh:
            return
        state.last_pct = pct
        self._expire(state, now)
        acknowledged = state.sent_total - state.in_flight_ops  # calls the server has surely counted
        if pct >= 1.0 and acknowledged > 0:
            estimate = acknowledged * 100.0 / pct
            state.quota_estimate = (
                estimate if state.quota_estimate is None else min(state.quota_estimate * 1.25, estimate)
            )
        state.notify()

    def throttled(self, account_id: str, buc_type: str, usage: UsageSnapshot | None) -> float:
        """A throttle error: park the pair until the documented regain time; returns the park seconds."""
        state = self.pair(account_id, buc_type)
        now = self.clock.monotonic()
        regain = usage.regain_after_s(account_id, buc_type) if usage is not None else 0.0
        if regain <= 0:
            # No estimate: back off harder each time it happens while parked.
            regain = self.config.default_park_s * (2 ** min(state.throttle_events, 5))
        state.throttle_events += 1
        self.throttle_events += 1
        state.limit = 1
        self._park(state, now + regain)
        return regain

    def _park(self, state: PairState, until: float) -> None:
        if until > state.parked_until:
            state.parked_until = until
        state.notify()

    def usage_pct(self, account_id: str, buc_type: str = "ads_management") -> float | None:
        return self.pair(account_id, buc_type).last_pct

    @staticmethod
    def minutes(seconds: float) -> int:
        return math.ceil(seconds / 60)
