"""Totals over every run of a journaled job: an on_park stop then a rerun, a run that raised, combining."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from engine_support import campaign_op

from bulk_engine import (
    BulkEngine,
    GovernorConfig,
    JobResult,
    MemoryJournal,
    Operation,
    RunTotals,
    ScaledClock,
)
from bulk_engine.config import IdempotencyConfig
from bulk_engine.operations.task import TaskReport
from bulk_engine.persistence import RunState
from bulk_engine.reporting.html import render_html
from bulk_engine.reporting.report import all_runs_summary

SCALE = 600.0  # 1 real second = 10 virtual minutes, for the simulator and the engine alike
FIGURES = (
    "http_requests",
    "graph_calls",
    "retries",
    "throttle_events",
    "unknown_outcomes",
    "lookups",
    "recovered",
)


def one_run(result: JobResult) -> RunTotals:
    return RunTotals(1, *(getattr(result, name) for name in FIGURES), elapsed_s=result.elapsed_s)


async def test_an_account_stopped_by_on_park_then_run_again_counts_both_runs(start_sim: Any) -> None:
    """Run 1 stops the throttled account (what a deferring Airflow task does); run 2, a new engine on the
    same journal, waits the park out and finishes: its totals are both runs', its counters its own."""
    sim = await start_sim(time_scale=SCALE)
    blocked, free = sim.accounts[0], sim.accounts[1]
    core = sim.server.core
    core.rate_limiter.force_block(blocked, "ads_management", 600.0, core.clock.now())  # 1 s of wall time
    ops = [campaign_op(f"b{i}", blocked) for i in range(10)] + [campaign_op(f"f{i}", free) for i in range(10)]
    journal = MemoryJournal()

    async def stop(park: Any) -> bool:
        return True

    fresh = sim.engine_config(idempotency=IdempotencyConfig(rebuild="never"))  # a new job: no probes
    async with BulkEngine(fresh, clock=ScaledClock(SCALE), journal=journal) as engine:
        first = await engine.run(ops, job_id="job", on_park=stop)
    assert first.stopped and sorted(first.unfinished) == sorted(f"b{i}" for i in range(10))
    assert first.throttle_events >= 1 and first.all_runs == one_run(first)

    async with BulkEngine(sim.engine_config(), clock=ScaledClock(SCALE), journal=journal) as engine:
        second = await engine.run(ops, job_id="job")
    assert second.ok and second.from_journal == 10
    assert second.all_runs == RunTotals.over([one_run(first), one_run(second)])
    assert second.all_runs is not None and second.all_runs.runs == 2
    assert (
        second.all_runs.http_requests == len(core.http_requests) == first.http_requests + second.http_requests
    )
    assert second.throttle_events < second.all_runs.throttle_events  # run 1's throttle is not run 2's
    assert [(r.state, r.succeeded) for r in journal.load_runs("job")] == [
        (RunState.STOPPED, 10),
        (RunState.FINISHED, 10),
    ]


async def test_a_run_that_raised_is_recorded_and_counted(start_sim: Any) -> None:
    sim = await start_sim()
    act = sim.accounts[0]
    ops = [campaign_op(f"c{i}", act) for i in range(10)]
    journal = MemoryJournal()

    async def breaks_after_five() -> AsyncIterator[Operation]:
        for op in ops[:5]:
            yield op
        raise RuntimeError("the job's source broke")

    config = sim.engine_config(window_ops=5, governor=GovernorConfig(initial_concurrency=1))
    async with BulkEngine(config, journal=journal) as engine:
        with pytest.raises(BaseException) as raised:  # the run's error, however wrapped
            await engine.run(breaks_after_five(), job_id="job")
        assert "the job's source broke" in repr(raised.value) or raised.group_contains(RuntimeError)
        (broken,) = journal.load_runs("job")
        assert broken.state is RunState.RAISED and broken.error == "RuntimeError"
        assert broken.http_requests >= 1 and broken.ended_at is not None
        assert "broke" not in repr(broken)  # the type only: a message may quote a secret

        again = await engine.run(ops, job_id="job")
    assert again.ok and again.all_runs == RunTotals.over([broken.totals(), one_run(again)])
    assert again.all_runs is not None and again.all_runs.runs == 2
    assert again.all_runs.http_requests == len(sim.server.core.http_requests)


def _result(job_id: str, calls: int, all_runs: RunTotals | None) -> JobResult:
    return JobResult(job_id, (), calls, calls * 3, 0, 0, 1.0, all_runs=all_runs)


def test_combine_adds_the_counters_and_keeps_the_most_runs() -> None:
    read = _result("j/t/0", 1, RunTotals(runs=3, http_requests=4, graph_calls=12, elapsed_s=2.0))
    write = _result("j/t/1", 2, RunTotals(runs=1, http_requests=2, graph_calls=6, elapsed_s=1.0))
    combined = JobResult.combine("j", [read, write])
    assert combined.http_requests == 3  # this run's, as before
    assert combined.all_runs == RunTotals(runs=3, http_requests=6, graph_calls=18, elapsed_s=3.0)
    assert JobResult.combine("j", [read, _result("j/u/0", 0, None)]).all_runs == read.all_runs
    assert JobResult.combine("j", [_result("x", 1, None)]).all_runs is None
    assert JobResult.combine("j", []).all_runs is None


def test_reports_expose_all_runs_and_say_how_many_runs_it_took() -> None:
    task = TaskReport("t", "create")
    task.absorb(_result("j/t/0", 1, RunTotals(runs=3, http_requests=5, graph_calls=12, elapsed_s=45.0)))
    data = task.to_dict()
    assert data["all_runs"] == {
        "runs": 3,
        "http_requests": 5,
        "graph_calls": 12,
        "retries": 0,
        "throttle_events": 0,
        "unknown_outcomes": 0,
        "lookups": 0,
        "recovered": 0,
        "elapsed_s": 45.0,
    }
    report = task.to_result().to_dict()
    assert report["all_runs"] == data["all_runs"] and report["graph_calls"] == 3
    assert all_runs_summary(report) == "3 runs: 12 Graph calls, 5 HTTP requests, 45.0 s in all"
    assert "3 runs: 12 Graph calls" in render_html(report)
    single = _result("j", 1, RunTotals(runs=1, http_requests=1, graph_calls=3)).to_dict()
    assert all_runs_summary(single) is None and "runs:" not in render_html(single)
    assert all_runs_summary({"all_runs": None}) is None
