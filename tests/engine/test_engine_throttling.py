"""Throttling: parking per (account, BUC), resumption, other accounts keep flowing (S003 §Rate Limits)."""

from __future__ import annotations

from typing import Any

from engine_support import campaign_op

from bulk_engine import BulkEngine, GovernorConfig, OutcomeState, ScaledClock

SCALE = 600.0  # 1 real second = 10 virtual minutes, for the simulator and the engine alike


def _throttled_requests(core: Any) -> set[int]:
    return {c.http_request for c in core.calls if c.error_code == 80004}


async def test_throttled_account_is_parked_then_resumes(start_sim: Any) -> None:
    sim = await start_sim(time_scale=SCALE)
    act = sim.accounts[0]
    core = sim.server.core
    blocked_for = 300.0
    start = core.clock.now()
    core.rate_limiter.force_block(act, "ads_management", blocked_for, start)
    ops = [campaign_op(f"c{i}", act) for i in range(120)]
    config = sim.engine_config(governor=GovernorConfig(initial_concurrency=2))
    async with BulkEngine(config, clock=ScaledClock(SCALE)) as engine:
        result = await engine.run(ops)
    assert result.counts == {"succeeded": 120, "failed": 0, "skipped": 0}
    assert result.throttle_events >= 1
    throttled = _throttled_requests(core)
    assert throttled, "the engine must have met the block"
    # While parked the engine sends nothing: only the batches already in flight when the first
    # throttle answer arrived (≤ the initial concurrency) hit the block.
    during_block = [r for r in core.http_requests if r["time"] < start + blocked_for]
    assert len(during_block) <= 2
    assert all(r["seq"] in throttled for r in during_block)
    after = [r for r in core.http_requests if r["time"] >= start + blocked_for]
    assert after and all(r["seq"] not in throttled for r in after)


async def test_one_throttled_account_does_not_stall_the_other(start_sim: Any) -> None:
    sim = await start_sim(time_scale=SCALE)
    blocked, free = sim.accounts[0], sim.accounts[1]
    core = sim.server.core
    core.rate_limiter.force_block(blocked, "ads_management", 1800.0, core.clock.now())
    ops = [campaign_op(f"b{i}", blocked) for i in range(20)] + [
        campaign_op(f"f{i}", free) for i in range(100)
    ]
    order: list[str] = []
    async with BulkEngine(sim.engine_config(), clock=ScaledClock(SCALE)) as engine:
        async for outcome in engine.stream(ops):
            assert outcome.state is OutcomeState.SUCCEEDED, outcome
            order.append(outcome.account_id)
    assert order.count(free) == 100 and order.count(blocked) == 20
    # every op of the free account finished before the blocked account got anything through
    assert order.index(blocked) > max(i for i, a in enumerate(order) if a == free)


async def test_governor_keeps_usage_under_the_ceiling(start_sim: Any) -> None:
    """With a small quota the governor paces at the quota rate instead of tripping the throttle."""
    sim = await start_sim(time_scale=SCALE * 10, quota_override=400)
    act = sim.accounts[0]
    ops = [campaign_op(f"c{i}", act) for i in range(900)]
    async with BulkEngine(sim.engine_config(), clock=ScaledClock(SCALE * 10)) as engine:
        result = await engine.run(ops)
    assert result.counts["succeeded"] == 900
    # 900 calls against 400/h: needs > 1 window; few throttle answers along the way.
    assert result.throttle_events <= 50


async def test_on_park_stops_the_account_and_ends_the_job_without_waiting(start_sim: Any) -> None:
    """``on_park`` lets a scheduler free its worker: the stopped account's ops stay unfinished, unsent."""
    sim = await start_sim(time_scale=SCALE)
    blocked, free = sim.accounts[0], sim.accounts[1]
    core = sim.server.core
    core.rate_limiter.force_block(blocked, "ads_management", 3600.0, core.clock.now())
    ops = [campaign_op(f"b{i}", blocked) for i in range(30)] + [campaign_op(f"f{i}", free) for i in range(30)]
    parks: list[Any] = []

    async def on_park(park: Any) -> bool:
        parks.append(park)
        return park.seconds >= 600

    async with BulkEngine(sim.engine_config(), clock=ScaledClock(SCALE)) as engine:
        result = await engine.run(ops, on_park=on_park)
    assert result.counts == {"succeeded": 30, "failed": 0, "skipped": 0}
    assert {o.account_id for o in result.outcomes} == {free}
    assert sorted(result.unfinished) == sorted(f"b{i}" for i in range(30))
    assert [p.account_id for p in result.stopped] == [blocked]
    assert parks and parks[0].seconds >= 600
    assert result.elapsed_s < 1800  # virtual seconds: the run did not wait out the hour-long block
    blocked_campaigns = [n for n in core.store.nodes("campaign") if n.account_id == blocked]
    assert blocked_campaigns == []


async def test_on_park_hears_of_a_long_pacing_wait_and_may_stop_the_account(start_sim: Any) -> None:
    """A window another client filled to the ceiling is an hour-long wait without any throttle: ``on_park``
    hears of it like a park (reason ``pacing…``), so a scheduler can free its worker for that too."""
    sim = await start_sim(time_scale=SCALE, access_tier="development_access")
    act = sim.accounts[0]
    core = sim.server.core
    core.rate_limiter.charge(act, "ads_management", 288, core.clock.now())  # 96 % of the 300 calls an hour
    ops = [campaign_op(f"c{i}", act) for i in range(40)]
    holds: list[Any] = []

    async def on_park(park: Any) -> bool:
        holds.append(park)
        return park.seconds >= 600

    async with BulkEngine(sim.engine_config(), clock=ScaledClock(SCALE)) as engine:
        result = await engine.run(ops, on_park=on_park)
    assert [p.account_id for p in result.stopped] == [act]
    assert result.stopped[0].reason.startswith("pacing") and result.stopped[0].seconds >= 600
    assert result.unfinished and result.counts["succeeded"] + len(result.unfinished) == 40
    assert result.elapsed_s < 1800  # virtual seconds: the run did not wait for the window to drain
    assert not any(c.error_code == 80004 for c in core.calls)  # a pacing wait, not a throttle
