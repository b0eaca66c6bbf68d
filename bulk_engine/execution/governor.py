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
    next_send_at: float = 0.0
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
            wait = max(state.parked_until, state.next_send_at) - now
            if wait > 0:
                await self.clock.sleep(wait)
                continue
            if state.in_flight >= state.limit:
                await state.changed.wait()
                continue
            break
        await self._total.acquire()
        state.in_flight += 1
        self._record_send(state, ops, now)

    def release(self, account_id: str, buc_type: str = "ads_management") -> None:
        state = self.pair(account_id, buc_type)
        state.in_flight = max(0, state.in_flight - 1)
        self._total.release()
        state.notify()

    def _record_send(self, state: PairState, ops: int, now: float) -> None:
        state.sent.append((now, ops))
        state.sent_total += ops
        horizon = now - self.config.window_s
        while state.sent and state.sent[0][0] < horizon:
            state.sent_total -= state.sent.popleft()[1]
        pct = state.last_pct or 0.0
        if pct >= self.config.ceiling_pct and state.quota_estimate:
            # Steady state: send at the rate calls leave the rolling window.
            state.next_send_at = now + ops * self.config.window_s / state.quota_estimate
        elif pct >= self.config.slow_pct and state.quota_estimate:
            state.next_send_at = now + ops * self.config.window_s / (2 * state.quota_estimate)

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
        state.last_pct = pct
        if pct >= 1.0 and state.sent_total > 0:
            estimate = state.sent_total * 100.0 / pct
            state.quota_estimate = (
                estimate if state.quota_estimate is None else min(state.quota_estimate * 1.25, estimate)
            )
        if pct >= self.config.slow_pct:
            state.limit = (
                max(1, state.limit // 2) if pct >= self.config.ceiling_pct else max(1, state.limit - 1)
            )
        elif state.limit < self.config.max_concurrency:
            state.limit += 1
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
