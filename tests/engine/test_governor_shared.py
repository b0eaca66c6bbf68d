"""Workers sharing an ad account: a batch larger than a worker's quota estimate must not wait forever."""

from __future__ import annotations

import time

from bulk_engine.config import GovernorConfig
from bulk_engine.execution.clock import SystemClock
from bulk_engine.execution.governor import Governor
from bulk_engine.protocol.usage import BucUsage, UsageSnapshot

ACT = "act_1"


def reading(pct: float) -> UsageSnapshot:
    return UsageSnapshot(
        buc=(BucUsage(object_id="1", type="ads_management", call_count=pct),), account_id=ACT
    )


async def test_a_batch_above_the_estimate_goes_once_our_calls_left_the_window() -> None:
    """Other workers filled the account: our 50 calls read 100 %, so our quota estimate is 50 and the
    ceiling allows 45 — a planned batch of 50 never fits beside anything. Found by bench/scale_out.py
    (scenario D): such a worker waited forever, since nothing it sent could bring a better reading."""
    config = GovernorConfig()
    governor = Governor(config, SystemClock())
    ticket = await governor.acquire(ACT, 50)
    governor.release(ACT, 50, ticket=ticket)
    governor.observe(ACT, reading(100.0), ticket=ticket)
    pair = governor.pair(ACT)
    assert pair.quota_estimate == 50.0
    now = time.monotonic()
    assert governor._headroom_wait(pair, 50, now) > 0  # our 50 calls are still in the window
    later = now + config.window_s + config.aging_margin_s + 1  # they have left it
    assert governor._headroom_wait(pair, 50, later) == 0.0
    assert governor._headroom_wait(pair, 10, later) == 0.0


async def test_at_the_ceiling_the_estimate_follows_this_workers_share() -> None:
    """Readings are of the whole account. Below the ceiling the estimate keeps its best lower bound; at the
    ceiling the latest reading wins, so a worker that shares the account paces to its share of it."""
    governor = Governor(GovernorConfig(), SystemClock())
    pair = governor.pair(ACT)
    ticket = await governor.acquire(ACT, 50)
    governor.release(ACT, 50, ticket=ticket)
    governor.observe(ACT, reading(10.0), ticket=ticket)  # alone: 50 calls are 10 % of a 500-call quota
    assert pair.quota_estimate == 500.0
    ticket = await governor.acquire(ACT, 50)
    governor.release(ACT, 50, ticket=ticket)
    governor.observe(ACT, reading(40.0), ticket=ticket)  # others joined, below the ceiling: kept
    assert pair.quota_estimate == 500.0
    ticket = await governor.acquire(ACT, 50)
    governor.release(ACT, 50, ticket=ticket)
    governor.observe(ACT, reading(100.0), ticket=ticket)  # our 150 calls of a full window: our share
    assert pair.quota_estimate == 150.0
    assert governor.headroom(ACT) == int(150 * 0.9) - 150  # nothing more until our calls age out
