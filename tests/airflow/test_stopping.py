"""Airflow stops a running task (mark failed, clear, execution_timeout: SIGTERM → ``on_kill``): the engine stops
gracefully, what was in flight is journaled, and the next try finishes the job with nothing created twice.

``on_kill`` is called here from another thread while ``execute`` runs, as Airflow's task runner calls it from
its SIGTERM handler while ``execute`` is blocked in the engine's event loop; the stop goes through
``loop.call_soon_threadsafe`` either way.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import anyio
import pytest
from af_helpers import store
from airflow.sdk.exceptions import AirflowException

from airflow_provider.operators import MetaBulkOperator
from airflow_provider.running import TaskRun
from bulk_engine import Credentials, EngineConfig, GovernorConfig, MemoryJournal
from bulk_engine.operations import CompileContext, run_job
from bulk_engine.persistence.keys import strip_key
from bulk_engine.scrub import Scrubber
from bulk_engine.simulator import FaultConfig

CAMPAIGNS = 30
ONE_AT_A_TIME = {"max_batch_ops": 2, "governor": GovernorConfig(initial_concurrency=1, max_concurrency=1)}


class _TaskInstance:
    dag_id, run_id, task_id, map_index = "stopping", "manual__1", "create", -1
    start_date = None

    def __init__(self, try_number: int) -> None:
        self.try_number = try_number
        self.pushed: list[tuple[str, Any]] = []

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed.append((key, value))


def _operator(tmp_path: Path) -> MetaBulkOperator:
    operations = [
        {
            "op_id": f"c{n}",
            "path": "{account_id}/campaigns",
            "params": {
                "name": f"c{n}",
                "objective": "OUTCOME_TRAFFIC",
                "special_ad_categories": [],
                "status": "PAUSED",
            },
        }
        for n in range(CAMPAIGNS)
    ]
    return MetaBulkOperator(
        task_id="create",
        operations=operations,
        journal_path=str(tmp_path / "{job_id}.sqlite"),
        engine_overrides=ONE_AT_A_TIME,
        progress_every_s=0.5,
    )


@pytest.mark.graph_simulator(faults=FaultConfig(latency_ms=150))
def test_on_kill_stops_gracefully_and_the_next_try_finishes_exactly(meta_conn: Any, tmp_path: Path) -> None:
    first = _operator(tmp_path)
    failure: list[BaseException] = []

    def execute() -> None:
        try:
            first.execute({"ti": _TaskInstance(1)})  # type: ignore[arg-type]
        except BaseException as err:  # the stop ends the try with an AirflowException
            failure.append(err)

    worker = threading.Thread(target=execute)
    worker.start()
    deadline = threading.Event()
    while len(store(meta_conn, "campaign")) < 4 and worker.is_alive():
        deadline.wait(0.05)  # poll the store (bounded by the run itself, a few seconds)
    first.on_kill()
    worker.join(timeout=60)
    assert not worker.is_alive()

    (err,) = failure
    assert isinstance(err, AirflowException) and "the next try finishes the job from the journal" in str(err)
    stopped_with = len(store(meta_conn, "campaign"))
    assert 4 <= stopped_with < CAMPAIGNS, "the stop came mid-run and held: nothing was sent after it"

    ti = _TaskInstance(2)
    summary = _operator(tmp_path).execute({"ti": ti})  # type: ignore[arg-type]
    assert summary["counts"] == {"succeeded": CAMPAIGNS, "failed": 0, "skipped": 0}
    names = [strip_key(c["name"]) for c in store(meta_conn, "campaign")]
    assert sorted(names) == sorted(f"c{n}" for n in range(CAMPAIGNS))  # each exactly once
    assert summary["from_journal"] == stopped_with  # the stopped try's creates were journaled, not re-sent
    assert summary["all_runs"]["runs"] == 2
    assert summary["all_runs"]["graph_calls"] >= CAMPAIGNS > summary["graph_calls"]


@pytest.mark.graph_simulator(faults=FaultConfig(latency_ms=150))
def test_a_running_job_logs_a_progress_line_every_progress_every_s(meta_conn: Any, tmp_path: Path) -> None:
    """The task log is never silent while a job runs: done/expected, rate, requests, usage per account."""
    info = meta_conn.info()
    config = EngineConfig(
        credentials=Credentials(access_token=info["access_token"]), graph_url=info["url"], **ONE_AT_A_TIME
    )
    spec = _operator(tmp_path).build_job()
    ctx = CompileContext(default_account_id=info["ad_account_ids"][0])
    lines: list[str] = []

    class Log:
        def info(self, message: str, *args: Any) -> None:
            lines.append(message % args)

    task_run = TaskRun(
        config,
        journal=MemoryJournal(),
        log=Log(),
        scrubber=Scrubber(()),
        title="job j",
        expected=spec.summarize_kinds(ctx),
        progress_every_s=0.5,
        threshold_s=None,
    )
    report = anyio.run(lambda: task_run.run(lambda guard: run_job(guard, spec, ctx, job_id="j")))
    assert report.ok
    progress = [line for line in lines if "progress" in line]
    assert len(progress) >= 3, lines  # ~2.3 s of batches: one line every 0.5 s, and the last
    assert f"/{CAMPAIGNS} operations" in progress[0] and "HTTP requests" in progress[0]
    assert f"progress {CAMPAIGNS}/{CAMPAIGNS} operations ({CAMPAIGNS} ok" in progress[-1]
    assert "usage: act_" in progress[-1]
