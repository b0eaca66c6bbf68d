"""Migrate an account's Advantage+ shopping / app campaigns to Advantage+: plan, review, migrate, verify, switch.

1. ``campaigns``: the ids from the run's conf (default: a demo set on a local simulator; ``demo_blocked``
   adds a campaign Meta refuses to migrate).
2. ``plan`` reads and classifies every campaign — nothing is written to Graph — and writes the plan CSV (one
   row per campaign: kind, eligibility and reason, proposed action, status, budget, ads) next to the reports.
3. ``review`` is the human gate: the run goes on with the generated plan when no campaign needs a manual
   path, or with ``approved: true`` — optionally with ``plan_file`` naming an edited copy of the plan. Else
   the downstream tasks are skipped: review the plan, edit its ``action`` column, trigger again with
   ``{"approved": true, "plan_file": "…/plan.csv"}``. The edited plan is checked before any call.
4. ``migrate`` executes each row's action (copy and migrate, in place, skip) and verifies every result
   (``smart_promotion_type`` GUIDED_CREATION, ``advantage_state_info``, the copy's tree and id map). It keeps
   the sources running (``after_copy="keep_source"``): the switch-over is its own step here.
5. ``verify`` fails the run, with the reasons, when a copy did not verify — its source stays ACTIVE — and
   otherwise hands on the sources to pause.
6. ``switch_over`` pauses those sources (verified copies only).
7. ``roll_back`` runs only when ``migrate`` or ``verify`` failed (``undo_target`` has ``trigger_rule=one_failed``):
   it undoes the migration from the migrate task's journal — named by its XCom ``job_id`` and ``journal``, no
   report needed — pausing every copy it made, so a copy that did not verify never delivers next to its
   still ACTIVE source; in-place migrations are reported as not reversible.

Each step is idempotent on clear: the operators answer from their journals, ``plan`` rewrites the same file,
and ``switch_over`` pauses by status update (pausing a paused campaign changes nothing).

    airflow dags test meta_advantage_plus_migration
    airflow dags test meta_advantage_plus_migration --conf '{"demo_blocked": true}'   # the review stops it
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider.demo import seed_demo
from airflow_provider.operators import MetaAdvantagePlusMigrationOperator, MetaBulkOperator

CONN_ID = "meta_default"
RUN_DIR = "{{ params.report_dir }}/{{ dag.dag_id }}/{{ run_id }}"
REPORT = RUN_DIR + "/{{ ti.task_id }}.json"


@task
def campaigns() -> list[str]:
    """``campaign_ids`` from the run's conf, or demo ASC campaigns created on the local simulator."""
    params: dict[str, Any] = get_current_context()["params"]
    if params["campaign_ids"]:
        return [str(i) for i in params["campaign_ids"]]
    kinds: list[Any] = ["asc", "asc"] + (["asc_blocked"] if params["demo_blocked"] else [])
    return seed_demo(CONN_ID, kinds, prefix="asc-demo")


@task.short_circuit
def review(plan: dict[str, Any]) -> str | bool:
    """The plan to execute when approved (see the module docstring); ``False`` stops the run here."""
    params: dict[str, Any] = get_current_context()["params"]
    path = params["plan_file"] or plan["plan_path"]
    with Path(path).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    manual = [r for r in rows if r["action"] == "manual"]
    for row in rows:
        print(f"{row['campaign_id']} {row['name']!r}: {row['kind']} {row['eligibility']} → {row['action']}")
    if params["approved"] or not manual:
        return str(path)
    print(f"{len(manual)} campaign(s) need a manual path: review {path}, then trigger with approved=true")
    return False


@task
def verify(migrated: dict[str, Any]) -> list[dict[str, Any]]:
    """Fail when a copy did not verify (its source stays ACTIVE); else one pause per source to switch over."""
    unverified = migrated["unverified"]
    if unverified:
        raise AirflowFailException(f"copies not verified, sources left running: {unverified}")
    return [
        {"op_id": f"switch/{source}", "path": source, "kind": "update", "params": {"status": "PAUSED"}}
        for source in migrated["to_pause"]
    ]


@task(multiple_outputs=True, trigger_rule="one_failed")
def undo_target(migrated: dict[str, Any]) -> dict[str, Any]:
    """What the rollback needs from the migration (each an XCom of its own): its job id and its journal."""
    return {"job_id": migrated["job_id"], "journal": migrated["journal"]}


with DAG(
    "meta_advantage_plus_migration",
    description="Plan, review, migrate, verify, then switch ASC/AAC campaigns over to Advantage+",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "campaign_ids": Param([], type="array"),
        "demo_blocked": Param(False, type="boolean"),
        "approved": Param(False, type="boolean"),
        "plan_file": Param("", type="string"),
        "report_dir": Param("/tmp/meta-reports", type="string"),
    },
    tags=["meta", "example"],
):
    ids = campaigns()
    plan = MetaAdvantagePlusMigrationOperator(
        task_id="plan",
        meta_conn_id=CONN_ID,
        campaign_ids=ids,
        preflight_only=True,
        plan_output=RUN_DIR + "/plan.csv",
        report_path=REPORT,
    )
    migrate = MetaAdvantagePlusMigrationOperator(
        task_id="migrate",
        meta_conn_id=CONN_ID,
        plan=review(plan.output),
        after_copy="keep_source",
        report_path=REPORT,
    )
    checked = verify(migrate.output)
    MetaBulkOperator(task_id="switch_over", meta_conn_id=CONN_ID, operations=checked, report_path=REPORT)
    target = undo_target(migrate.output)
    checked >> target
    MetaAdvantagePlusMigrationOperator(
        task_id="roll_back",
        meta_conn_id=CONN_ID,
        mode="rollback",
        rollback_job=target["job_id"],
        rollback_journal=target["journal"],
        report_path=REPORT,
    )
