"""The governor's estimator against the headers the simulator's rate limiter renders, in a closed loop.

Each test drives a :class:`Governor` and the simulator's :class:`RateLimiter` on one hand-moved clock: the
governor says how many calls may go, the limiter counts (or refuses) them and renders the usage headers
Meta sends (``X-Business-Use-Case-Usage``, ``X-Ad-Account-Usage``, ``X-App-Usage``), which go back to the
governor. No HTTP and no sleeping: time moves only when the governor asks to wait, so every wait is seen.

The quota bound of a scenario is computed by :func:`engine_support.optimal_finish`: the earliest time our calls can all be
made without ever exceeding the quota, given the others' calls — what a perfect client would achieve.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest
from engine_support import HOUR, QUOTA, optimal_finish

from bulk_engine.config import GovernorConfig
from bulk_engine.execution.events import Waiting
from bulk_engine.execution.governor import Governor
from bulk_engine.persistence.memory import MemoryJournal
from bulk_engine.persistence.sqlite import SqliteJournal
from bulk_engine.protocol.usage import BucType, parse_usage_headers
from bulk_engine.simulator import SimulatorConfig
from bulk_engine.simulator.clock import VirtualClock
from bulk_engine.simulator.errors import GraphAPIError
from bulk_engine.simulator.ratelimit import RateLimiter

ACT = "act_1"


class ManualClock:
    """The governor's clock: the same hand-moved time as the limiter's."""

    def __init__(self, now: list[float]) -> None:
        self._now = now

    def monotonic(self) -> float:
        return self._now[0]

    scale = 1.0

    def wall(self) -> float:
        return self._now[0]

    async def sleep(self, seconds: float) -> None:  # the loop moves time itself; nothing sleeps
        raise AssertionError("the closed loop never sleeps")


@dataclass
class Loop:
    """One governor, one rate limiter, one clock; ``others`` calls are charged straight to the limiter."""

    now: list[float] = field(default_factory=lambda: [10_000.0])
    config: GovernorConfig = field(default_factory=GovernorConfig)
    tier: str = "development_access"
    refused: int = 0
    sent: int = 0
    waits: list[tuple[float, float]] = field(default_factory=list)  # (seconds, server's reset/regain then)
    last_reset: float = math.inf

    def __post_init__(self) -> None:
        clock = VirtualClock(0.0, 1.0, monotonic=lambda: self.now[0])
        self.limiter = RateLimiter(SimulatorConfig(access_tier=self.tier), clock)
        self.governor = Governor(self.config, ManualClock(self.now))

    def others(self, calls: int, account: str = ACT) -> None:
        for _ in range(calls):
            self.limiter.charge(account, "ads_management", 1, self.now[0])

    def headers(self, account: str = ACT) -> dict[str, str]:
        return self.limiter.headers(account, self.now[0])

    async def batch(self, calls: int, account: str = ACT, governor: Governor | None = None) -> None:
        """One batch of ours: booked, counted by the server (refused past the quota), answered."""
        governor = governor or self.governor
        ticket = await governor.acquire(account, calls)
        for _ in range(calls):
            try:
                self.limiter.charge(account, "ads_management", 1, self.now[0])
            except GraphAPIError:
                self.refused += 1
        self.sent += calls
        governor.release(account, calls, ticket=ticket)
        headers = self.headers(account)
        usage = parse_usage_headers(headers, account_id=account)
        self.last_reset = max(usage.ad_account.reset_time_duration_s if usage.ad_account else 0.0, 1.0)
        governor.observe(account, usage, ticket=ticket)

    async def run(self, total: int, *, governor: Governor | None = None, max_batch: int = 50) -> float:
        """Send ``total`` calls as fast as the governor allows; returns the time it took."""
        governor = governor or self.governor
        started = self.now[0]
        done = 0
        while done < total:
            room = governor.headroom(ACT)
            calls = min(total - done, max_batch, max(0, room) if room is not None else max_batch)
            if calls >= 1 and governor.headroom_wait(ACT, calls) == 0.0:
                await self.batch(calls, governor=governor)
                done += calls
                self.now[0] += 1.0  # a round trip
                continue
            wait = governor.headroom_wait(ACT, 1)
            assert wait < math.inf, "nothing in flight, yet the governor waits for an answer"
            self.waits.append((wait, self.last_reset))
            self.now[0] += max(wait, 1e-3)
            assert self.now[0] - started < 50 * HOUR, "the run does not progress"
        return self.now[0] - started


async def test_first_contact_sends_one_call_then_paces_by_the_reading() -> None:
    loop = Loop()
    assert loop.governor.headroom(ACT) == 1  # nothing known yet: one call, to read the usage
    await loop.batch(1)
    room = loop.governor.headroom(ACT)
    assert room is not None and 140 <= room <= 146  # half of the room under the 97 % ceiling of 300


async def test_a_window_others_filled_to_90_pct_is_used_at_once_and_never_waits_an_hour() -> None:
    """Before: the quota was estimated from our own few calls (≈ 1 call) and the first wait was 3,605 s.
    Now the documented tier floor and the reading leave the room under the ceiling at once."""
    loop = Loop()
    loop.others(270)  # someone else, just before we start
    start = loop.now[0]
    took = await loop.run(600)
    bound = optimal_finish([start] * 270, 600, start)
    assert loop.refused == 0
    assert took <= 1.1 * bound, (took / HOUR, bound / HOUR)
    for wait, reset in loop.waits:  # never longer than the server's own "back to 0" estimate, plus margin
        assert wait <= reset + loop.config.aging_margin_s + 1, (wait, reset)


async def test_a_window_others_filled_evenly_is_used_as_their_calls_leave_it() -> None:
    """The others' 270 calls are spread over the last hour and leave it one by one: readings (and probes,
    while only their calls block) show the room coming back; no wait outlasts the server's estimate."""
    loop = Loop()
    spread = [loop.now[0] + i * HOUR / 270 for i in range(270)]
    for t in spread:
        loop.now[0] = t
        loop.others(1)
    loop.now[0] = start = spread[-1] + 1.0
    took = await loop.run(600)
    bound = optimal_finish(spread, 600, start)
    assert loop.refused == 0
    assert took <= 1.1 * bound, (took / HOUR, bound / HOUR)
    for wait, reset in loop.waits:
        assert wait <= reset + loop.config.aging_margin_s + 1, (wait, reset)


async def test_alone_on_a_fresh_account_a_long_run_reaches_95_pct_of_the_bound() -> None:
    loop = Loop()
    took = await loop.run(3000)
    bound = 3000 / QUOTA * HOUR  # scenario Q's bound: the calls at the quota rate
    assert loop.refused == 0
    assert bound / took >= 0.95, (took / HOUR, bound / HOUR)


async def test_two_workers_reading_the_same_account_share_it_without_refusals() -> None:
    """Two governors (two processes) on one account: each sees the other's calls only as the usage the
    headers report; the account is shared, each takes its share of the room, none is refused."""
    loop = Loop()
    other = Governor(GovernorConfig(), ManualClock(loop.now))
    done = {id(loop.governor): 0, id(other): 0}
    target = 450
    start = loop.now[0]
    while min(done.values()) < target:
        progressed = False
        for governor in (loop.governor, other):
            left = target - done[id(governor)]
            room = governor.headroom(ACT)
            calls = min(left, 50, max(0, room) if room is not None else 50)
            if calls >= 1 and governor.headroom_wait(ACT, calls) == 0.0:
                await loop.batch(calls, governor=governor)
                done[id(governor)] += calls
                progressed = True
        loop.now[0] += 1.0
        if not progressed:
            waits = [g.headroom_wait(ACT, 1) for g in (loop.governor, other) if done[id(g)] < target]
            loop.now[0] += max(1e-3, min(waits))
        assert loop.now[0] - start < 20 * HOUR
    assert loop.refused == 0
    assert loop.governor.pair(ACT).shared_until > start and other.pair(ACT).shared_until > start
    assert loop.now[0] - start <= 1.2 * (2 * target / QUOTA * HOUR)


async def test_workers_still_setting_up_do_not_look_gone_after_one_quiet_reading() -> None:
    """Three workers start together: each makes one call (the idempotency probe), then sets up before its
    first batch. The fastest one's readings show the others' two calls standing still — not because they
    stopped, they have not started. It stays on probation (shared: its grants at most double its calls)
    until the others send, and then knows the account is shared. Before: one quiet reading ended the
    probation, the worker took half the room (~145 calls) as its own, and the account refused 8-11 calls
    (issue 19, ``test_postgres_shared_account.py[separate-sqlite-together]``)."""
    loop = Loop()
    loop.others(2)  # the other two workers' probes
    sent = 0
    for _ in range(3):  # three round trips of ours while the others set up
        room = loop.governor.headroom(ACT)
        calls = max(1, int(room or 1))
        await loop.batch(calls)
        sent += calls
        loop.now[0] += 1.0
        pair = loop.governor.pair(ACT)
        assert pair.probation, "the others' calls standing still for seconds do not mean they are gone"
        assert (loop.governor.headroom(ACT) or 0) <= 2 * sent, "on probation grants only double our calls"
    loop.others(40)  # now they send their first batches
    await loop.batch(1)
    pair = loop.governor.pair(ACT)
    assert not pair.probation and pair.shared_until > loop.now[0] + loop.config.window_s
    assert loop.refused == 0


async def test_calls_left_by_a_worker_that_stopped_end_the_probation_within_minutes() -> None:
    """Calls of someone who stopped (an earlier run) stand still: once two fresh readings and a twelfth of
    the window showed no growth, the account is ours alone again (the whole room under the ceiling, not a
    share with its margin) — while the run had kept sending meanwhile, doubling its calls."""
    loop = Loop()
    loop.others(100)
    started = loop.now[0]
    await loop.batch(1)  # first contact: the reading shows the 100 calls, the probation begins
    assert loop.governor.pair(ACT).probation
    while loop.governor.pair(ACT).probation:
        room = loop.governor.headroom(ACT)
        await loop.batch(max(1, min(50, int(room or 1))))
        loop.now[0] += 30.0  # a round trip every 30 s
        assert loop.now[0] - started < loop.config.window_s / 6, "the probation outlasted its evidence"
    pair = loop.governor.pair(ACT)
    assert loop.now[0] - started >= loop.config.window_s / 12
    assert pair.shared_until < loop.now[0] and loop.refused == 0
    assert loop.sent >= 30  # it ramped up meanwhile (1, 2, 4, ... calls), it did not stand still


async def test_a_step_of_a_two_decimal_reading_is_not_another_worker() -> None:
    """At the standard tier 0.01 % of the quota is 10 calls: five GETs of ours the governor did not book
    (the idempotency lookups before a job's first batch) read as 0.01 % beside our one call, which says
    nothing of anyone else. Before, the account was judged shared, the grant cut to twice our calls (14)
    and the batches planned before that reading waited an hour at "usage 0 %" (issue 15's CSV job)."""
    loop = Loop(tier="standard_access")
    await loop.batch(1)
    loop.others(5)  # our own reads, not booked with the governor
    loop.governor.observe(ACT, parse_usage_headers(loop.headers(), account_id=ACT))  # their reading
    await loop.batch(1)
    pair = loop.governor.pair(ACT)
    assert pair.pct["calls"] == pytest.approx(0.01)
    assert pair.shared_until < loop.now[0] and not pair.probation
    assert (loop.governor.headroom(ACT) or 0) > 40_000  # half the room under the ceiling of 100,000


async def test_a_batch_planned_before_the_grant_shrank_is_handed_back_to_be_planned_smaller() -> None:
    """Batches are planned by the headroom of their moment; a reading can then shrink the grant (another
    worker appeared). A batch waiting for room it will not get until our calls leave the window — nothing
    of ours in flight brings the reading that would grow the grant again — is handed back (``None``) so
    the runner plans it within the room now, instead of waiting round after round ("60 min" announced at
    "usage 0 %": issue 15's CSV job, before the two-decimal step was fixed)."""
    loop = Loop(tier="standard_access")
    await loop.batch(1)
    loop.others(300)  # another worker starts: 0.30 % of 100,000
    await loop.batch(1)  # its reading: the account is shared, the grant about twice our calls
    room = loop.governor.headroom(ACT)
    assert room is not None and 1 <= room < 50
    assert await loop.governor.acquire_or_shrink(ACT, 50) is None
    for _ in range(3):  # what acquire() would do: wait, look again, wait — no reading ever comes
        wait = loop.governor.headroom_wait(ACT, 50)
        assert wait > 0
        loop.now[0] += wait
    assert await loop.governor.acquire_or_shrink(ACT, room) is not None  # a batch within the room goes


async def test_without_a_tier_the_quota_is_our_counted_calls_over_the_percentage() -> None:
    loop = Loop(config=GovernorConfig(trust_tier_floors=False))
    await loop.batch(1)
    await loop.batch(29)  # 30 calls = 10 % of 300
    pair = loop.governor.pair(ACT)
    assert pair.floor is None
    assert pair.quota("calls") == pytest.approx(300.0)


async def test_our_calls_leaving_the_window_are_room_again_at_once() -> None:
    loop = Loop()
    while ((room := loop.governor.headroom(ACT)) is not None and room >= 1) or loop.sent == 0:
        await loop.batch(min(50, room or 1))
        loop.now[0] += 1.0
    assert loop.sent >= 285 and loop.refused == 0  # the window is full up to (about) the 97 % ceiling
    wait = loop.governor.headroom_wait(ACT, 50)
    assert HOUR - 60 <= wait <= HOUR + loop.config.aging_margin_s + 1  # when our first calls leave
    loop.now[0] += wait
    assert (loop.governor.headroom(ACT) or 0) >= 50


@pytest.mark.parametrize(
    ("scope", "held", "free"),
    [
        (BucType.PLATFORM, [(ACT, "ads_management"), ("act_2", "ads_management"), (ACT, "ads_insights")], []),
        (BucType.UNKNOWN, [(ACT, "ads_management"), (ACT, "ads_insights")], [("act_2", "ads_management")]),
        (
            BucType.ADS_MANAGEMENT,
            [(ACT, "ads_management")],
            [("act_2", "ads_management"), (ACT, "ads_insights")],
        ),
    ],
)
def test_a_throttle_parks_its_scope(
    scope: BucType, held: list[tuple[str, str]], free: list[tuple[str, str]]
) -> None:
    """App-level (code 4/17) holds every account, undocumented scope the account, a BUC code its pair."""
    loop = Loop()
    seconds = loop.governor.throttled(ACT, "ads_management", None, scope, code=4)
    assert seconds == loop.config.default_park_s
    for account, buc in held:
        assert loop.governor.parked_for(account, buc) == seconds, (account, buc)
    for account, buc in free:
        assert loop.governor.parked_for(account, buc) == 0.0, (account, buc)


async def test_a_regain_time_in_the_headers_parks_the_pair_it_names() -> None:
    loop = Loop()
    await loop.batch(1)
    usage = parse_usage_headers(
        {
            "X-Business-Use-Case-Usage": '{"1": [{"type": "ads_insights", "call_count": 100, '
            '"estimated_time_to_regain_access": 7}]}'
        },
        account_id=ACT,
    )
    loop.governor.observe(ACT, usage)
    assert loop.governor.parked_for(ACT, "ads_insights") == 7 * 60
    assert loop.governor.parked_for(ACT, "ads_management") == 0.0


async def test_waits_longer_than_5_s_are_announced_once_with_reason_and_reading() -> None:
    loop = Loop()
    seen: list[Waiting] = []
    loop.governor.announce = seen.append
    loop.governor.throttled(ACT, "ads_management", None, BucType.ADS_MANAGEMENT, code=80004)
    loop.governor._announce_wait(("pair", ACT, "ads_management"), 60.0, "throttled (code 80004)", 100.0)
    loop.governor._announce_wait(("pair", ACT, "ads_management"), 59.5, "throttled (code 80004)", 100.0)
    loop.governor._announce_wait(("pair", ACT, "ads_management"), 4.0, "short", 10.0)  # not a long wait
    assert seen == [Waiting("pair", ACT, "ads_management", "throttled (code 80004)", 100.0, 60.0)]


async def test_parks_and_readings_survive_in_the_journal() -> None:
    """A run parked by a throttle writes it down; the next run (another governor) starts parked, and a
    recent reading of a busy account counts as others' usage (none of those calls are the new run's)."""
    loop = Loop()
    journal = MemoryJournal()
    loop.governor.persist = journal.save_pacing
    await loop.batch(1)
    await loop.batch(100)
    loop.governor.throttled(ACT, "ads_management", None, BucType.ADS_MANAGEMENT, code=80004)
    loop.now[0] += 10.0
    later = Governor(GovernorConfig(), ManualClock(loop.now))
    later.restore(journal.load_pacing())
    assert later.parked_for(ACT) == pytest.approx(loop.config.default_park_s - 10.0)
    assert "restored from the journal" in later.park_of(ACT)[1].reason  # type: ignore[index]
    loop.now[0] += loop.config.default_park_s
    room = later.headroom(ACT)
    assert room is not None and room <= 291 - 101  # the earlier run's calls still fill the window


async def test_the_app_near_its_ceiling_holds_every_account() -> None:
    """``X-App-Usage`` counts every call of the app: near its ceiling no account may send more."""
    loop = Loop()
    for account in (ACT, "act_2", "act_3"):
        await loop.batch(1, account)
    usage = parse_usage_headers({"X-App-Usage": '{"call_count": 98, "total_cputime": 20, "total_time": 30}'})
    ticket = await loop.governor.acquire(ACT, 1)
    loop.governor.release(ACT, 1, ticket=ticket)
    loop.governor.observe(ACT, usage, ticket=ticket)
    for account in (ACT, "act_2", "act_3"):
        assert (loop.governor.headroom(account) or 0) < 1, account
        assert loop.governor.headroom_wait(account, 1) > 0, account


class JumpClock(ManualClock):
    """A governor's clock whose sleeps move the shared time on: a wait ends at once, at its deadline."""

    async def sleep(self, seconds: float) -> None:
        self._now[0] += seconds
        await anyio.lowlevel.checkpoint()


def _worker(now: list[float], journal_path: Path) -> Governor:
    """A worker's governor wired to its own connection to the shared journal, as the engine wires it."""
    journal = SqliteJournal(journal_path)
    governor = Governor(GovernorConfig(), JumpClock(now))
    governor.restore(journal.load_pacing())
    governor.persist = journal.save_pacing
    governor.refresh = journal.load_pacing
    return governor


def _stored_park(journal_path: Path, scope: str) -> float:
    return {r.scope: r.parked_until for r in SqliteJournal(journal_path).load_pacing()}.get(scope, 0.0)


async def test_a_running_worker_takes_the_park_another_worker_met(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two workers of one account share a journal. B's governor started before A was throttled (so its
    start-up read saw no park); at its next admission it reads the journal again, takes A's park and
    sends nothing before it ends — it does not have to meet the throttle itself."""
    loop = Loop()
    path = tmp_path / "shared.sqlite"
    a, b = _worker(loop.now, path), _worker(loop.now, path)
    await loop.batch(1, governor=b)  # B is running: it has its own reading of the account
    a.throttled(ACT, "ads_management", None, BucType.ADS_MANAGEMENT, code=80004)
    park_ends = loop.now[0] + loop.config.default_park_s
    loop.now[0] += loop.config.persist_every_s  # B's last read of the journal is that old
    with caplog.at_level(logging.INFO, logger="bulk_engine.execution.governor"):
        ticket = await b.acquire(ACT, 1)
    assert loop.now[0] >= park_ends  # admitted only once A's park ran out
    b.release(ACT, 1, ticket=ticket)
    assert "by the journal" in caplog.text and "80004" in caplog.text


async def test_a_save_without_a_park_keeps_the_park_another_worker_wrote(tmp_path: Path) -> None:
    """B saves its readings of the account while A's park runs (B's last read of the journal predates
    it): the journal keeps A's park, so a worker starting now starts parked. (Before, B's record with
    ``parked_until`` 0 erased it.)"""
    loop = Loop()
    path = tmp_path / "shared.sqlite"
    a, b = _worker(loop.now, path), _worker(loop.now, path)
    await loop.batch(1, governor=b)
    a.throttled(ACT, "ads_management", None, BucType.ADS_MANAGEMENT, code=80004)
    scope = "pair:act_1:ads_management"
    written = _stored_park(path, scope)
    assert written == loop.now[0] + loop.config.default_park_s
    loop.now[0] += 1.0
    b.flush()  # B's record of the pair says nothing of a park
    assert _stored_park(path, scope) == written
    assert _worker(loop.now, path).parked_for(ACT) == pytest.approx(loop.config.default_park_s - 1.0)


async def test_a_park_lifted_by_its_worker_frees_the_workers_that_took_it(tmp_path: Path) -> None:
    """A lifts its park on fresher news (``clear_parks``: a read found the account usable). B, which took
    the park from the journal and waits it out, hears of the lift at its next read of the journal (the
    wait is cut in slices of ``persist_every_s``) and goes on long before the park's deadline; a park B
    took from the journal is never written back by B, so it cannot outlive its writer's lift."""
    loop = Loop()
    path = tmp_path / "shared.sqlite"
    a = _worker(loop.now, path)
    a.throttled(ACT, "ads_management", None, BucType.ADS_MANAGEMENT, code=80004)
    b = _worker(loop.now, path)  # starts parked by A's record
    assert b.parked_for(ACT) == loop.config.default_park_s
    a.clear_parks(ACT, "a fresh read found it usable")
    loop.now[0] += 0.5
    b.flush()  # before B reads the journal again: its copy of the park is not written back
    assert _stored_park(path, "pair:act_1:ads_management") == 0.0
    started = loop.now[0]
    ticket = await b.acquire(ACT, 1)
    assert loop.now[0] - started <= loop.config.persist_every_s  # one slice, not the 60 s park
    b.release(ACT, 1, ticket=ticket)
