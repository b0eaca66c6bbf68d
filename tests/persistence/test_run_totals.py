"""``JobResult.all_runs``: the counters over every run of a journaled job (stopped, killed, run again)."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from persist_support import JournalFactory, Sim, check_exact, expected_per_type, trees

from bulk_engine import BulkEngine, GovernorConfig, JobResult, OutcomeState, RunTotals, SqliteJournal
from bulk_engine.execution.events import OperationFinished
from bulk_engine.persistence import RunRecord, RunState
from bulk_engine.simulator import FaultConfig

ROOT = Path(__file__).resolve().parents[2]
StartSim = Callable[..., Any]
ONE = GovernorConfig(initial_concurrency=1, max_concurrency=1)
FIGURES = (
    "http_requests",
    "graph_calls",
    "retries",
    "throttle_events",
    "unknown_outcomes",
    "lookups",
    "recovered",
)


def run_figures(result: JobResult) -> RunTotals:
    """This run alone, as totals of one run."""
    return RunTotals(1, *(getattr(result, name) for name in FIGURES), elapsed_s=result.elapsed_s)


def record_figures(record: RunRecord) -> tuple[int, ...]:
    return tuple(getattr(record, name) for name in FIGURES)


async def test_a_stopped_run_and_its_rerun_add_up_and_each_run_keeps_its_own_counters(
    journals: JournalFactory, start_sim: StartSim
) -> None:
    sim: Sim = await start_sim(faults=FaultConfig(latency_ms=20), seed=2)
    ops = trees(12, sim.accounts, sim.page_id)
    engines: list[BulkEngine] = []

    def stop_after_a_success(event: object) -> None:
        if isinstance(event, OperationFinished) and event.outcome.state is OutcomeState.SUCCEEDED:
            engines[0].request_stop()  # graceful: batches in flight finish, nothing new is sent

    config = sim.engine_config(max_batch_ops=8, governor=ONE)
    async with BulkEngine(config, journal=journals.open(), observer=stop_after_a_success) as engine:
        engines.append(engine)
        first = await engine.run(ops, job_id="job")
    assert first.unfinished and first.http_requests > 0
    assert first.all_runs == run_figures(first)  # one run so far: its own figures

    async with BulkEngine(config, journal=journals.reopen()) as engine:
        second = await engine.run(ops, job_id="job")
    assert second.ok and second.from_journal == first.counts["succeeded"] > 0
    assert second.all_runs == RunTotals.over([run_figures(first), run_figures(second)])
    assert second.all_runs is not None and second.all_runs.runs == 2
    assert second.all_runs.http_requests == len(sim.server.core.http_requests)  # every request, once
    assert second.http_requests == len(sim.server.core.http_requests) - first.http_requests  # per run

    one, two = journals.reopen().load_runs("job")
    assert (one.number, one.state, two.number, two.state) == (1, RunState.STOPPED, 2, RunState.FINISHED)
    assert record_figures(one) == tuple(getattr(first, name) for name in FIGURES)
    assert record_figures(two) == tuple(getattr(second, name) for name in FIGURES)
    assert one.ended_at is not None and two.started_at >= one.ended_at
    # outcomes decided in each run: what the second answered from the journal is not counted again
    assert (one.succeeded, two.succeeded) == (first.counts["succeeded"], len(ops) - first.counts["succeeded"])
    assert one.failed == one.skipped == two.failed == two.skipped == 0
    exact = check_exact(sim.nodes(), ops, "job")
    assert exact.ok and exact.per_type == expected_per_type(ops)


async def test_without_a_journal_there_are_no_totals_over_runs(start_sim: StartSim) -> None:
    sim: Sim = await start_sim()
    async with BulkEngine(sim.engine_config()) as engine:
        result = await engine.run(trees(1, sim.accounts, sim.page_id), job_id="job")
    assert result.ok and result.all_runs is None and result.to_dict()["all_runs"] is None


async def test_a_running_run_refreshes_its_record_every_persist_interval(
    journals: JournalFactory, start_sim: StartSim
) -> None:
    sim: Sim = await start_sim(faults=FaultConfig(latency_ms=60), seed=2)
    ops = trees(25, sim.accounts, sim.page_id)
    config = sim.engine_config(max_batch_ops=5, governor=ONE.model_copy(update={"persist_every_s": 0.05}))
    journal = journals.open()
    seen: list[RunRecord] = []
    async with BulkEngine(config, journal=journal) as engine:

        async def watch() -> None:
            while not seen:
                await anyio.sleep(0.02)
                seen.extend(r for r in journal.load_runs("job") if r.graph_calls > 0)
            assert seen[0].state is RunState.RUNNING and seen[0].ended_at is None
            engine.request_stop()

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(watch)
                result = await engine.run(ops, job_id="job")
    (record,) = journal.load_runs("job")
    assert record.state is RunState.STOPPED and record.http_requests == result.http_requests
    assert record.updated_at >= seen[0].updated_at and record.graph_calls >= seen[0].graph_calls


CHILD = """
import sys

import anyio

from bulk_engine import BulkEngine, Credentials, EngineConfig, GovernorConfig, Operation, OpKind, SqliteJournal

url, token, act, path = sys.argv[1:]
ops = [
    Operation(
        op_id=f"c{i}",
        method="POST",
        path=f"{act}/campaigns",
        account_id=act,
        kind=OpKind.CREATE_CAMPAIGN,
        params={"name": f"c{i}", "objective": "OUTCOME_TRAFFIC", "special_ad_categories": [], "status": "PAUSED"},
    )
    for i in range(200)
]
config = EngineConfig(
    credentials=Credentials(access_token=token),
    graph_url=url,
    max_batch_ops=5,
    governor=GovernorConfig(initial_concurrency=1, max_concurrency=1, persist_every_s=0.05),
)


async def main() -> None:
    async with BulkEngine(config, journal=SqliteJournal(path)) as engine:
        await engine.run(ops, job_id="job")


anyio.run(main)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
async def test_a_run_killed_without_its_last_write_is_counted_once_with_its_last_refresh(
    tmp_path: Path, start_sim: StartSim
) -> None:
    sim: Sim = await start_sim(faults=FaultConfig(latency_ms=40), seed=2)
    path = tmp_path / "jobs.db"
    journal = SqliteJournal(path)
    args = [sys.executable, "-c", CHILD, sim.url, sim.token, sim.accounts[0], str(path)]
    killed: list[RunRecord] = []
    with anyio.fail_after(60):
        async with await anyio.open_process(args, cwd=ROOT) as child:  # served by this test's simulator
            while not killed:
                await anyio.sleep(0.02)
                killed.extend(r for r in journal.load_runs("job") if r.http_requests >= 2)
            os.kill(child.pid, signal.SIGKILL)
            assert await child.wait() == -signal.SIGKILL
    (last_refresh,) = journal.load_runs("job")  # the child's record as it was when it was killed
    assert last_refresh.state is RunState.RUNNING and last_refresh.ended_at is None

    results: list[JobResult] = []
    for _ in range(2):  # the killed run is counted once by every later run
        async with BulkEngine(sim.engine_config(), journal=journal) as engine:
            results.append(await engine.resume("job"))
    killed_run = last_refresh.totals()
    assert results[0].ok and results[0].all_runs == RunTotals.over([killed_run, run_figures(results[0])])
    assert results[1].all_runs == RunTotals.over(
        [killed_run, run_figures(results[0]), run_figures(results[1])]
    )
    assert results[1].http_requests == 0 and results[1].from_journal == 200
    states = [r.state for r in journal.load_runs("job")]
    assert states == [RunState.RUNNING, RunState.FINISHED, RunState.FINISHED]  # stays "running", not redone
    assert journal.load_runs("job")[0] == last_refresh
    journal.close()
