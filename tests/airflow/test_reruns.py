"""Clearing a finished run and running it again re-does nothing (issue "defect 7": a cleared
``meta_copy_to_account`` run failed its clone task with "the journal refused the job").

``dag.test()`` with the logical date of an earlier run clears that run and runs it again under the same
``run_id`` — every task, as "Clear" on a whole DAG run in the UI does — so each job operator gets the same job
id and journal file as the first time. The second run must create, update and send nothing: its report says
everything came from the journal, and the simulator's store is what the first run left.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pendulum
from af_helpers import graph_post, store, ti_states, xcom

WHEN = pendulum.datetime(2026, 3, 1, 12, tz="UTC")
TYPES = ("campaign", "adset", "ad", "adcreative", "message_campaign")


def run_and_rerun(dagbag: Any, dag_id: str, **conf: Any) -> list[Any]:
    """The DAG run for ``WHEN``, then the same run cleared and run again; both must succeed."""
    dag = dagbag.get_dag(dag_id)
    assert dag is not None, dagbag.import_errors
    runs = []
    for _ in range(2):
        run = dag.test(logical_date=WHEN, run_after=WHEN, run_conf=conf)
        assert str(run.state) == "success", ti_states(run)
        runs.append(run)
    assert runs[0].run_id == runs[1].run_id
    return runs


def report(summary: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(Path(summary["report_path"]).read_text()))


def sim_store(sim: Any) -> dict[str, list[str]]:
    return {t: sorted(str(n["id"]) for n in store(sim, t)) for t in TYPES}


def assert_answered_from_journal(summary: dict[str, Any]) -> None:
    """The task's second run sent nothing: every operation was answered from the journal."""
    again = report(summary)
    assert again["http_requests"] == 0, again["http_requests"]
    assert again["from_journal"] == summary["counts"]["succeeded"] > 0
    assert summary["counts"]["failed"] == summary["counts"]["skipped"] == 0


def test_a_cleared_copy_run_clones_nothing_again(meta_conn: Any, dagbag: Any, tmp_path: Path) -> None:
    """The demo source comes from an upstream task: cleared with the run, it must hand the clone the same
    campaign again (before: it created a new one, so the clone was a different job under the same id)."""
    target = meta_conn.info()["ad_account_ids"][1]
    conf = {"report_dir": str(tmp_path), "target_account_id": target}
    first_store: dict[str, list[str]] = {}
    summaries = []
    for run in run_and_rerun(dagbag, "meta_copy_to_account", **conf):
        summaries.append(xcom(run, "clone"))
        first_store = first_store or sim_store(meta_conn)
    assert summaries[0]["copies"] == summaries[1]["copies"] and len(summaries[0]["copies"]) == 1
    assert sim_store(meta_conn) == first_store  # one source tree, one clone: nothing created twice
    assert len(first_store["campaign"]) == 2
    assert_answered_from_journal(summaries[1])


def test_a_cleared_migration_run_migrates_nothing_again(meta_conn: Any, dagbag: Any, tmp_path: Path) -> None:
    conf = {"report_dir": str(tmp_path)}
    first_store: dict[str, list[str]] = {}
    migrated = []
    for run in run_and_rerun(dagbag, "meta_advantage_plus_migration", **conf):
        steps = ("campaigns", "plan", "review", "migrate", "verify", "switch_over")
        rollback = dict.fromkeys(("undo_target", "roll_back"), "skipped")  # after a failed migrate only
        assert ti_states(run) == {**dict.fromkeys(steps, "success"), **rollback}
        migrated.append(xcom(run, "migrate"))
        first_store = first_store or sim_store(meta_conn)
    assert migrated[0]["migrated"] == migrated[1]["migrated"] and len(migrated[0]["migrated"]) == 2
    assert sim_store(meta_conn) == first_store
    assert_answered_from_journal(migrated[1])


def test_a_cleared_create_run_creates_nothing_again(meta_conn: Any, dagbag: Any, tmp_path: Path) -> None:
    first_store: dict[str, list[str]] = {}
    summary: dict[str, Any] = {}
    for run in run_and_rerun(dagbag, "meta_bulk_create_from_file", report_dir=str(tmp_path)):
        summary = xcom(run, "create_from_file")
        first_store = first_store or sim_store(meta_conn)
    assert sim_store(meta_conn) == first_store and len(first_store["campaign"]) == 2
    assert_answered_from_journal(summary)


def test_a_cleared_status_run_sends_nothing_again(meta_conn: Any, dagbag: Any, tmp_path: Path) -> None:
    """The sweep's selector read is answered from the journal too, so the rerun takes the same decision."""
    act = meta_conn.info()["ad_account_ids"][0]
    for name in ("promo-a", "promo-b", "keep"):
        graph_post(
            meta_conn,
            f"{act}/campaigns",
            name=name,
            objective="OUTCOME_TRAFFIC",
            special_ad_categories=[],
            status="ACTIVE",
        )
    summaries = [
        xcom(run, "sweep")
        for run in run_and_rerun(dagbag, "meta_status_sweep", report_dir=str(tmp_path), name_prefix="promo-")
    ]
    assert summaries[0]["updates"] == summaries[1]["updates"] == 2
    assert_answered_from_journal(summaries[1])
    assert sorted(c["status"] for c in store(meta_conn, "campaign")) == ["ACTIVE", "PAUSED", "PAUSED"]


def test_a_cleared_messages_run_sends_no_message_again(meta_conn: Any, dagbag: Any, tmp_path: Path) -> None:
    """Message sends carry no idempotency key: only the journal keeps a rerun from messaging twice."""
    summaries = [
        xcom(run, "send")
        for run in run_and_rerun(dagbag, "meta_marketing_messages", report_dir=str(tmp_path))
    ]
    assert summaries[0]["sent"] == summaries[1]["sent"] == 3
    assert_answered_from_journal(summaries[1])
    assert len(store(meta_conn, "message_campaign")) == 1
    tokens = sorted(m["messenger_delivery_data"]["subscription_token"] for m in store(meta_conn, "ad"))
    assert tokens == ["sub-token-0001", "sub-token-0002", "sub-token-0003"]  # one message each
