"""MetaBulkOperator inside real DAG runs (``dag.test()``) against the simulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from af_helpers import RunDag, lift_block_when_polled, store, ti_states, xcom

from bulk_engine.persistence.keys import strip_key
from bulk_engine.simulator import FaultConfig


def _report(tmp_path: Path, task_id: str = "create") -> dict[str, Any]:
    return json.loads((tmp_path / f"{task_id}.json").read_text())


def test_bulk_create_pushes_summary_and_creates_objects(
    meta_conn: Any, run_dag: RunDag, tmp_path: Path
) -> None:
    run = run_dag("meta_test_bulk_create")

    assert str(run.state) == "success"
    summary = xcom(run, "create")
    assert summary["counts"] == {"succeeded": 6, "failed": 0, "skipped": 0}
    assert summary["ok"] is True
    assert summary["deferrals"] == 0
    assert summary["report_path"] == str(tmp_path / "create.json")
    assert summary["job_id"].startswith("airflow-")
    report = _report(tmp_path)
    assert report["job_id"] == summary["job_id"]
    assert report["airflow"]["dag_id"] == "meta_test_bulk_create"
    assert {op["op_id"] for op in report["operations"]} == {
        "spring", "spring/as0", "spring/as1", "summer", "summer/as0", "summer/as1",
    }  # fmt: skip
    ids = {op["op_id"]: op["graph_id"] for op in report["operations"]}

    campaigns = {strip_key(c["name"]): c for c in store(meta_conn, "campaign")}
    adsets = store(meta_conn, "adset")
    assert set(campaigns) == {"spring", "summer"}
    assert sorted(strip_key(a["name"]) for a in adsets) == [
        "spring/as0",
        "spring/as1",
        "summer/as0",
        "summer/as1",
    ]
    for adset in adsets:
        parent = strip_key(adset["name"]).split("/")[0]
        assert adset["campaign_id"] == campaigns[parent]["id"] == ids[parent]


def test_throttled_account_defers_then_resumes(meta_conn: Any, run_dag: RunDag, tmp_path: Path) -> None:
    """The account is blocked: the task defers instead of holding the worker, the cool-down trigger
    polls until the block is lifted, and the job resumes and finishes exactly once."""
    act = meta_conn.info()["ad_account_ids"][0]
    meta_conn.run(lambda core: core.rate_limiter.force_block(act, "ads_management", 600.0, core.clock.now()))

    # refused reads: 1 = the operator's pre-flight, 2 = the trigger's first poll (the task is deferred)
    with lift_block_when_polled(meta_conn, act, refused_reads=2, advance_s=601):
        run = run_dag("meta_test_bulk_create")

    assert str(run.state) == "success"
    summary = xcom(run, "create")
    assert summary["deferrals"] == 1
    assert summary["counts"] == {"succeeded": 6, "failed": 0, "skipped": 0}
    assert _report(tmp_path)["waited_s"] > 0
    assert len(store(meta_conn, "campaign")) == 2
    assert len(store(meta_conn, "adset")) == 4


@pytest.mark.graph_simulator(seed=11, faults=FaultConfig(transient_rate=0.3))
def test_retries_finish_the_job_without_duplicates(meta_conn: Any, run_dag: RunDag, tmp_path: Path) -> None:
    """Transient errors fail operations (one attempt each); every retry of the task sends only what has
    not succeeded yet, with references to earlier tries' objects resolved to their ids."""
    run = run_dag("meta_test_bulk_retry")

    assert str(run.state) == "success"
    report = _report(tmp_path)
    assert report["airflow"]["try_number"] > 1, "the seeded faults should have failed the first try"
    assert report["counts"] == {"succeeded": 12, "failed": 0, "skipped": 0}
    campaigns = store(meta_conn, "campaign")
    adsets = store(meta_conn, "adset")
    assert sorted(strip_key(c["name"]) for c in campaigns) == ["c0", "c1", "c2", "c3"]
    assert len(adsets) == 8
    by_name = {strip_key(c["name"]): c["id"] for c in campaigns}
    assert all(a["campaign_id"] == by_name[strip_key(a["name"]).split("/")[0]] for a in adsets)


def test_invalid_job_fails_before_sending(meta_conn: Any, run_dag: RunDag) -> None:
    run = run_dag("meta_test_bulk_invalid")

    assert str(run.state) == "failed"
    assert ti_states(run) == {"create": "failed"}
    calls = meta_conn.run(lambda core: len(core.store.snapshot(["campaign", "adset"])))
    assert calls == 0


@pytest.mark.graph_simulator(quota_override=4)
def test_mid_run_park_defers_and_resumes(meta_conn: Any, run_dag: RunDag, tmp_path: Path) -> None:
    """The quota (4 calls an hour) runs out mid-job: the governor parks the account for about an hour,
    the operator stops it and defers, and after the cool-down the rest of the job is sent once."""
    act = meta_conn.info()["ad_account_ids"][0]

    with lift_block_when_polled(meta_conn, act, refused_reads=1, advance_s=3601):
        run = run_dag("meta_test_bulk_create")

    assert str(run.state) == "success"
    summary = xcom(run, "create")
    assert summary["deferrals"] >= 1
    assert summary["counts"] == {"succeeded": 6, "failed": 0, "skipped": 0}
    assert len(store(meta_conn, "campaign")) == 2
    assert len(store(meta_conn, "adset")) == 4
