"""The engine against the simulator: dependency trees across batches, partial failure, retries."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from engine_support import campaign_op, status_op, tree_ops

from bulk_engine import BulkEngine, JobValidationError, Operation, OpKind, OutcomeState, Ref
from bulk_engine.persistence.keys import strip_key
from bulk_engine.simulator import FaultConfig


async def test_dependency_trees_span_batches_and_respect_batch_limits(start_sim: Any) -> None:
    """S003 §Batch Requests → Limitations: ≤ 50 ops, ≤ 10 ad creates, never two ad sets of one campaign.
    (Standard access: 240 calls of a 300-call quota would be paced, and pacing splits batches.)"""
    sim = await start_sim(access_tier="standard_access")
    act = sim.accounts[0]
    ops = [op for i in range(60) for op in tree_ops(f"t{i}", act, sim.page_id)]
    async with BulkEngine(sim.engine_config()) as engine:
        result = await engine.run(ops)
    assert result.counts == {"succeeded": 240, "failed": 0, "skipped": 0}
    core = sim.server.core
    ads = [n for n in core.store.nodes("ad")]
    assert len(ads) == 60
    # every ad hangs under its own tree's ad set and creative
    by_name = {strip_key(n.data["name"]): n for n in core.store.nodes() if "name" in n.data}
    for i in range(60):
        ad = by_name[f"t{i}-ad"]
        assert ad.data["adset_id"] == by_name[f"t{i}-as"].id
        assert ad.data["creative"] == {"id": by_name[f"t{i}-cr"].id}
        assert by_name[f"t{i}-as"].data["campaign_id"] == by_name[f"t{i}-c"].id
    batches: dict[int, list[Any]] = {}
    for call in core.calls:
        batches.setdefault(call.http_request, []).append(call)
    assert result.http_requests == len(batches)
    for calls in batches.values():
        assert len(calls) <= 50
        assert sum(1 for c in calls if c.method == "POST" and c.path.endswith("/ads")) <= 10
    # lower bound: 60 ads / 10 per batch = 6 batches; 240 ops / 50 = 5; plus the first contact's lone call
    assert result.http_requests <= 9
    assert result.graph_calls == 240


async def test_mixed_success_and_failure_in_one_batch(start_sim: Any) -> None:
    sim = await start_sim()
    act = sim.accounts[0]
    good = tree_ops("good", act, sim.page_id)
    bad = tree_ops("bad", act, sim.page_id)
    bad[0] = campaign_op("bad-c", act, objective="NOT_AN_OBJECTIVE")
    async with BulkEngine(sim.engine_config()) as engine:
        result = await engine.run(good + bad)
    states = {o.op_id: o.state for o in result.outcomes}
    assert all(states[op.op_id] is OutcomeState.SUCCEEDED for op in good)
    failed = result.outcome("bad-c")
    assert failed.state is OutcomeState.FAILED
    assert failed.error is not None and failed.error.code == 100
    assert failed.error.blame_field_specs == (("objective",),)
    assert failed.error.fbtrace_id
    for child in ("bad-as", "bad-ad"):
        assert states[child] is OutcomeState.SKIPPED
        assert "bad-" in (result.outcome(child).reason or "")
    assert states["bad-cr"] is OutcomeState.SUCCEEDED  # independent of the failed campaign
    # the skipped ops were never sent
    names = [strip_key(n.data.get("name") or "") for n in sim.server.core.store.nodes()]
    assert "bad-as" not in names and "bad-ad" not in names
    assert result.counts == {"succeeded": 5, "failed": 1, "skipped": 2}


async def test_null_entries_are_retried_alone(start_sim: Any) -> None:
    """S003 §Batch Requests → Timeouts: only the null entries are re-sent, never their siblings."""
    sim = await start_sim(faults=FaultConfig(null_rate=0.2), seed=3)
    act = sim.accounts[0]
    setup = [campaign_op(f"c{i}", act) for i in range(40)]
    async with BulkEngine(sim.engine_config()) as engine:
        sim.server.core.set_faults(FaultConfig())
        created = await engine.run(setup)
        assert created.counts["succeeded"] == 40
        ids = {o.op_id: o.graph_id for o in created.outcomes}
        sim.server.core.set_faults(FaultConfig(null_rate=0.2))
        updates = [status_op(f"u{i}", act, str(ids[f"c{i}"]), "ACTIVE") for i in range(40)]
        result = await engine.run(updates)
    injected = sim.server.core.faults.injected["null"]
    assert injected > 0
    assert result.counts == {"succeeded": 40, "failed": 0, "skipped": 0}
    assert result.retries == injected
    assert result.graph_calls == 40 + injected
    assert all(n.data["status"] == "ACTIVE" for n in sim.server.core.store.nodes("campaign"))


async def test_transient_errors_retry_then_give_up(start_sim: Any) -> None:
    sim = await start_sim(faults=FaultConfig(transient_rate=1.0))
    act = sim.accounts[0]
    from bulk_engine import RetryConfig

    config = sim.engine_config(retry=RetryConfig(max_attempts=3, base_delay_s=0.001, max_delay_s=0.002))
    async with BulkEngine(config) as engine:
        result = await engine.run([campaign_op("c", act)])
    outcome = result.outcome("c")
    assert outcome.state is OutcomeState.FAILED
    assert outcome.error is not None and outcome.error.code in (1, 2) and outcome.error.is_transient
    assert outcome.attempts == 3
    assert result.retries == 2


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        (
            [
                Operation(
                    op_id="a",
                    method="POST",
                    path="act_1/x",
                    account_id="act_1",
                    kind=OpKind.UPDATE,
                    params={"p": Ref("b")},
                ),
                Operation(
                    op_id="b",
                    method="POST",
                    path="act_1/x",
                    account_id="act_1",
                    kind=OpKind.UPDATE,
                    params={"p": Ref("a")},
                ),
            ],
            "cycle",
        ),
        (
            [
                Operation(
                    op_id="a",
                    method="POST",
                    path="act_1/x",
                    account_id="act_1",
                    kind=OpKind.UPDATE,
                    params={"p": Ref("missing")},
                )
            ],
            "missing",
        ),
    ],
)
async def test_cycles_and_unknown_references_are_rejected_before_sending(
    start_sim: Any, ops: list[Operation], message: str
) -> None:
    sim = await start_sim()
    async with BulkEngine(sim.engine_config()) as engine:
        with pytest.raises(JobValidationError, match=message):
            await engine.run(ops)
    assert sim.server.core.http_requests == []


async def test_streamed_job_yields_outcomes_and_bounds_the_window(start_sim: Any) -> None:
    sim = await start_sim()
    act = sim.accounts[0]

    def generate() -> Any:
        for i in range(120):
            yield campaign_op(f"c{i}", act)

    async with BulkEngine(sim.engine_config(window_ops=30)) as engine:
        seen = Counter()
        async for outcome in engine.stream(generate()):
            seen[outcome.state] += 1
    assert seen == {OutcomeState.SUCCEEDED: 120}
    assert len(list(sim.server.core.store.nodes("campaign"))) == 120


async def test_streamed_job_memory_is_bounded_by_window_and_horizon(start_sim: Any) -> None:
    """Issue: streaming memory is bounded by a window, not by job size (records of old ops are dropped)."""
    sim = await start_sim(access_tier="standard_access")  # 3,000 calls: above the development quota
    act = sim.accounts[0]

    def generate() -> Any:
        for i in range(3000):
            # each update references the campaign created two operations earlier in the stream
            if i % 3 == 0:
                yield campaign_op(f"c{i}", act)
            else:
                yield status_op(f"u{i}", act, Ref(f"c{i - i % 3}"), "ACTIVE")

    async with BulkEngine(sim.engine_config(window_ops=100, reference_horizon=200)) as engine:
        run = engine.stream(generate())
        states = Counter([o.state async for o in run])
        peak = run.result.peak_tracked_ops
    assert states == {OutcomeState.SUCCEEDED: 3000}
    assert peak <= 100 + 200 + 100  # window + horizon + one batch of slack; the job has 3,000


async def test_stream_reference_beyond_the_horizon_is_rejected_clearly(start_sim: Any) -> None:
    sim = await start_sim(access_tier="standard_access")
    act = sim.accounts[0]

    def generate() -> Any:
        for i in range(400):
            yield campaign_op(f"c{i}", act)
        yield status_op("late", act, Ref("c0"))  # c0 finished ~400 operations ago

    async with BulkEngine(sim.engine_config(window_ops=50, reference_horizon=100)) as engine:
        with pytest.raises(JobValidationError, match="reference horizon"):
            async for _ in engine.stream(generate()):
                pass
