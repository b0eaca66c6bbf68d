"""A quota far above the tier floor, read as 0 %, is not taken to be the floor (issue 20's million-op bench).

Graph's ``call_count`` is a whole percentage rounded down. At the standard tier the documented floor is
100,000 calls an hour plus 40 per active ad — millions for a big account — so 97,000 calls can read 0 %.
The governor used to ignore readings under 1 % when bounding the quota, kept the floor as the quota, and
paced at 97 % of it: a one-hour wait at 97,000 calls while the server said 0 %.
"""

from __future__ import annotations

from engine_support import HOUR
from test_governor_estimator import Loop

from bulk_engine.simulator import SimulatorConfig
from bulk_engine.simulator.clock import VirtualClock
from bulk_engine.simulator.ratelimit import RateLimiter


class BigQuotaLoop(Loop):
    """The closed loop of ``test_governor_estimator`` against a standard-tier account with a huge quota."""

    def __post_init__(self) -> None:
        super().__post_init__()
        clock = VirtualClock(0.0, 1.0, monotonic=lambda: self.now[0])
        config = SimulatorConfig(access_tier="standard_access", quota_override=10**9)
        self.limiter = RateLimiter(config, clock)


async def test_calls_past_the_tier_floor_at_0_pct_never_wait_for_the_window() -> None:
    loop = BigQuotaLoop()
    took = await loop.run(150_000)  # one batch of 50 a (virtual) second: 3,000 s without waits
    assert loop.refused == 0
    assert not [wait for wait, _ in loop.waits if wait > 60], loop.waits[:5]
    assert took < HOUR
