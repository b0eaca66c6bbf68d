"""Issue 17: an Advantage+ migration rolled back in Airflow from its journal, with no report file anywhere.

``migrate`` copies two ACTIVE Advantage+ shopping campaigns and pauses each source once its copy verified;
``rollback`` names the migration by the migrate task's XCom (``job_id``, ``journal``) and undoes it: copies
paused, sources ACTIVE again. Once with the default journal file per task (the rollback reads the migrate
task's file), once with one shared PostgreSQL journal (``journal_conn_id``: the job id is enough). And the
example DAG's rollback branch, after a migration whose copies did not verify.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from af_helpers import RunDag, store, ti_states, xcom
from pg_server import PostgresServer

JOURNAL_ENV = "AIRFLOW_CONN_META_JOURNAL"


def _assert_rolled_back(sim: Any, run: Any, report_dir: Path) -> dict[str, Any]:
    """The store says the migration is undone, and the rollback says it read the journal, not a report."""
    assert str(run.state) == "success", ti_states(run)
    migrated = xcom(run, "migrate")
    assert migrated["report_path"] is None and not (report_dir / "migrate.json").exists()  # nothing to read
    assert len(migrated["migrated"]) == 2 and set(migrated["switch"]) == set(migrated["migrated"])
    rolled = xcom(run, "rollback")
    assert rolled["rollback_from"] == "journal" and rolled["rollback_of"] == migrated["job_id"]
    campaigns = {c["id"]: c for c in store(sim, "campaign")}
    lines = {line["source_id"]: line for line in rolled["rollback"]}
    for source, copy in migrated["migrated"].items():
        assert copy != source
        assert campaigns[source]["status"] == "ACTIVE"  # re-activated
        assert campaigns[copy]["status"] == "PAUSED"  # no double delivery
        assert lines[source]["source"] == "PAUSED → ACTIVE"  # the switch-over had paused it
        assert lines[source]["copy"] == "ACTIVE → PAUSED"
    report = json.loads((report_dir / "rollback.json").read_text())
    (task,) = report["tasks"]
    assert task["details"]["rollback_from"] == "journal" and report["counts"]["failed"] == 0
    return migrated


def test_a_migration_is_rolled_back_from_the_migrate_tasks_journal_file(
    meta_conn: Any, run_dag: RunDag, tmp_path: Path
) -> None:
    run = run_dag("meta_test_migrate_rollback")

    migrated = _assert_rolled_back(meta_conn, run, tmp_path)
    assert (
        migrated["journal"].endswith(f"{migrated['job_id']}.sqlite") and Path(migrated["journal"]).is_file()
    )


def test_with_a_shared_journal_the_rollback_needs_only_the_job_id(
    meta_conn: Any,
    run_dag: RunDag,
    tmp_path: Path,
    postgres_server: PostgresServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The XCom ``journal`` is the shared journal's location (no password): handed back as
    ``rollback_journal`` it means the journal the rollback task runs with."""
    conn = {
        "conn_type": "postgres",
        "host": "127.0.0.1",
        "port": postgres_server.port,
        "login": "bulk",
        "password": postgres_server.password,
        "schema": "journals",
        "extra": {"journal_schema": "rollback_af"},
    }
    monkeypatch.setenv(JOURNAL_ENV, json.dumps(conn))

    run = run_dag("meta_test_migrate_rollback_shared")

    migrated = _assert_rolled_back(meta_conn, run, tmp_path)
    assert migrated["journal"].startswith("postgresql://bulk@127.0.0.1:")
    assert migrated["journal"].endswith("?schema=rollback_af")
    assert postgres_server.password not in json.dumps([migrated, xcom(run, "rollback")])


def test_the_example_dag_rolls_back_a_migration_whose_copy_did_not_verify(
    meta_conn: Any, run_dag: RunDag, tmp_path: Path
) -> None:
    """``meta_advantage_plus_migration``: Graph answers the verification read with half-migrated copies
    (``smart_promotion_type`` still AUTOMATED_SHOPPING_ADS), so ``migrate`` fails; ``roll_back`` then undoes it
    from the migrate task's journal: the copies paused, the sources (kept running) untouched."""
    from bulk_engine.simulator import render

    def half_migrated(ctx: Any, node: Any) -> None:
        if node.data.get("source_campaign_id"):  # a copy: the first read of one is the verification's
            node.data["smart_promotion_type"] = "AUTOMATED_SHOPPING_ADS"

    render.on_read("campaign")(half_migrated)
    try:
        run = run_dag("meta_advantage_plus_migration")
    finally:
        render._READ_HOOKS["campaign"].remove(half_migrated)

    states = ti_states(run)
    assert str(run.state) == "failed" and states["migrate"] == "failed", states
    assert states["undo_target"] == states["roll_back"] == "success" and states["switch_over"] != "success"
    migrated = xcom(run, "migrate")
    assert set(migrated["unverified"]) == {c["source_campaign_id"] for c in _copies(meta_conn)}
    rolled = xcom(run, "roll_back")
    assert rolled["rollback_from"] == "journal" and rolled["rollback_of"] == migrated["job_id"]
    assert [(line["copy"], line.get("source")) for line in rolled["rollback"]] == [
        ("ACTIVE → PAUSED", None)
    ] * 2
    campaigns = {c["id"]: c for c in store(meta_conn, "campaign")}
    copies = _copies(meta_conn)
    assert len(copies) == 2 and {c["status"] for c in copies} == {"PAUSED"}
    assert {campaigns[c["source_campaign_id"]]["status"] for c in copies} == {"ACTIVE"}


def _copies(sim: Any) -> list[dict[str, Any]]:
    return [c for c in store(sim, "campaign") if c.get("source_campaign_id")]
