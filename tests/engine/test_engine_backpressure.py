"""A consumer slower than the simulator holds the engine back: outcomes waiting for it stay bounded."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
from engine_support import status_op

from bulk_engine import BulkEngine
from bulk_engine.execution.events import EngineEvent, OperationFinished

OPS = 3000


async def test_lagging_consumer_bounds_the_outcome_backlog(start_sim: Any) -> None:
    sim = await start_sim(access_tier="standard_access", seed_campaigns=OPS)
    act = sim.accounts[0]
    first, count = sim.server.info()["seeded_campaigns"][act]
    ids = [str(int(first) + k) for k in range(count)]
    emitted = 0

    def observe(event: EngineEvent) -> None:
        nonlocal emitted
        if isinstance(event, OperationFinished):
            emitted += 1

    consumed = backlog = 0
    config = sim.engine_config(window_ops=100)  # the backlog limit is max(1000, window_ops)
    async with BulkEngine(config, observer=observe) as engine:
        ops = (status_op(f"p{i}", act, object_id) for i, object_id in enumerate(ids))
        async for outcome in engine.stream(ops):
            assert outcome.state.value == "succeeded"
            consumed += 1
            backlog = max(backlog, emitted - consumed)
            for _ in range(20):  # a slow consumer: the engine and the simulator run meanwhile
                await anyio.lowlevel.checkpoint()
    assert consumed == OPS
    # held at 1,000 plus what producers already in flight emit (one outcome each) before they wait
    assert 1000 <= backlog <= 1000 + 100, backlog
    assert {sim.server.core.store.get(i).data["status"] for i in ids} == {"PAUSED"}  # type: ignore[union-attr]
