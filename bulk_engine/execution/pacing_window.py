"""The governor's data: scopes, our send log of a window, parks, and a window's view of the server.

Split from ``governor.py`` (issue 21: modules a newcomer can hold in their head): the governor decides, the
estimator (``pacing_estimate.py``) turns readings into allowances, the journal side (``pacing_memory.py``)
writes and reads this state; all of them share these types.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import anyio

from bulk_engine.protocol.usage import BucType
from bulk_engine.wording import wait_subject

__all__ = [
    "ADS_MANAGEMENT",
    "APP",
    "METRICS",
    "TIER_FLOORS",
    "ParkState",
    "ScopeKey",
    "SendLog",
    "Ticket",
    "Window",
    "account_scope",
    "pair_scope",
    "scope_key",
    "scope_label",
    "scope_name",
]

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
METRICS = ("calls", "cputime", "time")
KEPT_EXPIRED = 256  # records kept behind the heads of a send log (see SendLog.dropped_since)


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


def scope_key(name: str) -> ScopeKey | None:
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
        head = min(self._send_head, self._answer_head) - KEPT_EXPIRED
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
    probation: bool = False  # the first reading showed others: shared until fresh readings tell
    probation_since: float = math.inf  # the first reading of a batch of ours on probation
    quiet_readings: int = 0  # fresh readings in a row without others' growth, on probation
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
