"""Governor waits are re-evaluated when a new usage reading arrives (no stall on a stale estimate)."""

from __future__ import annotations

import time

import anyio

from bulk_engine.config import GovernorConfig
from bulk_engine.execution.clock import SystemClock
from bulk_engine.execution.governor import Governor
from bulk_engine.protocol.usage import BucUsage, UsageSnapshot

ACT = "act_1"


def reading(pct: float) -> UsageSnapshot:
    """A usage reading for ``ACT``."""
    return UsageSnapshot(
        buc=(BucUsage(object_id="1", type="ads_management", call_count=pct),), account_id=ACT
    )


async def test_a_wait_from_a_low_estimate_ends_when_a_better_reading_arrives() -> None:
    """Usage left in the window by others makes the first quota estimates far too small: the batch
    that does not fit under such an estimate may wait up to an hour. Once a later reading corrects the
    estimate, the waiting batch must go at once instead of sleeping out the stale wait."""
    governor = Governor(GovernorConfig(), SystemClock())
    await governor.acquire(ACT, 40)
    governor.release(ACT, 40)
    pair = governor.pair(ACT)
    pair.last_pct = 12.0
    pair.quota_estimate = 40.0  # 40 calls looked like 12 % (the rest of the 12 % was someone else's)
    assert governor._headroom_wait(pair, 40, time.monotonic()) > 60

    done = anyio.Event()

    async def next_batch() -> None:
        await governor.acquire(ACT, 40)
        done.set()
        governor.release(ACT, 40)

    started = time.monotonic()
    async with anyio.create_task_group() as tg:
        tg.start_soon(next_batch)
        await anyio.sleep(0.05)
        assert not done.is_set()  # paced: under the estimate it does not fit
        pair.quota_estimate = 100_000.0  # a later reading's estimate
        pair.notify()
        with anyio.fail_after(2):
            await done.wait()
    assert time.monotonic() - started < 2


async def test_a_parked_pair_stays_parked_when_readings_arrive() -> None:
    """Waking early only re-checks: a throttled pair sends nothing until its regain time."""
    governor = Governor(GovernorConfig(), SystemClock())
    governor.throttled(ACT, "ads_management", None)  # parked for default_park_s (60 s)
    done = anyio.Event()

    async def next_batch() -> None:
        await governor.acquire(ACT, 1)
        done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(next_batch)
        for pct in (10.0, 20.0, 30.0):
            await anyio.sleep(0.02)
            governor.observe(ACT, reading(pct))
        await anyio.sleep(0.05)
        assert not done.is_set()
        tg.cancel_scope.cancel()
