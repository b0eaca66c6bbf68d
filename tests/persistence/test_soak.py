"""Fault soak: 5,000 creates through every kind of fault, and the store ends exactly as asked.

1,250 campaign → ad set → creative → ad trees over three ad accounts, with the simulator answering 5 %
of calls with a transient error, 2 % of batch entries ``null`` (half after the write was committed),
dropping 2 % of connections after the batch was committed, and blocking accounts in throttle bursts. The
simulator's clock runs 600× and the engine's :class:`ScaledClock` matches it, so throttle parks and
backoffs cost milliseconds. Every operation must end succeeded, and the store must hold exactly one
object per create (counted per type and per idempotency key): no duplicates, none missing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from persist_support import Sim, check_exact, expected_per_type, trees

from bulk_engine import BulkEngine, OutcomeState, RetryConfig, ScaledClock
from bulk_engine.persistence import SqliteJournal
from bulk_engine.simulator import FaultConfig

StartSim = Callable[..., Any]
SCALE = 600.0
FAULTS = FaultConfig(
    transient_rate=0.05,
    null_rate=0.02,
    drop_after_commit_rate=0.02,
    throttle_burst_rate=0.0005,
    throttle_burst_s=60.0,
)


async def test_soak_5000_creates_under_faults_end_exact(start_sim: StartSim, tmp_path: Path) -> None:
    sim: Sim = await start_sim(faults=FAULTS, seed=2024, time_scale=SCALE)
    ops = trees(1_250, sim.accounts, sim.page_id)
    assert len(ops) == 5_000
    config = sim.engine_config(retry=RetryConfig(max_attempts=12, max_delay_s=30.0))
    with SqliteJournal(tmp_path / "soak.db") as journal:
        async with BulkEngine(config, journal=journal, clock=ScaledClock(SCALE)) as engine:
            result = await engine.run(ops, job_id="soak")
        job = journal.get_job("soak")
    assert job is not None and job.counts["succeeded"] == len(ops)

    assert len(result.outcomes) == len(ops)
    assert {o.op_id for o in result.outcomes} == {op.op_id for op in ops}
    assert all(o.state is OutcomeState.SUCCEEDED for o in result.outcomes), [
        (o.op_id, o.reason) for o in result.outcomes if o.state is not OutcomeState.SUCCEEDED
    ][:5]
    exact = check_exact(sim.nodes(), ops, "soak")
    assert (
        exact.per_type
        == expected_per_type(ops)
        == {"campaign": 1250, "adset": 1250, "adcreative": 1250, "ad": 1250}
    )
    assert not exact.duplicates and not exact.missing and not exact.unexpected

    injected = dict(sim.server.core.faults.injected)
    for kind in ("transient", "null", "drop", "throttle_burst"):
        assert injected[kind] > 0, injected
    assert result.unknown_outcomes > 0 and result.recovered > 0 and result.throttle_events > 0
    figures = {
        "ops": len(ops),
        "faults_injected": {k: v for k, v in injected.items() if k != "latency"},
        "http_requests": result.http_requests,
        "graph_calls": result.graph_calls,
        "retries": result.retries,
        "throttle_events": result.throttle_events,
        "unknown_outcomes": result.unknown_outcomes,
        "lookups": result.lookups,
        "recovered_by_key": result.recovered,
        "duplicates": sum(exact.duplicates.values()),
        "lost": len(exact.missing),
    }
    print("\nsoak figures:", json.dumps(figures))
