"""One-off migration of Advantage+ shopping / app campaigns to Advantage+ campaigns, behind a gate.

1. ``campaigns``: the ids from the run's conf (default: a demo set on a local simulator; ``demo_blocked``
   adds a campaign Meta refuses to migrate).
2. ``preflight`` reads and classifies every campaign — nothing is written — and pushes the report: classes,
   and the blocked campaigns with the documented reason and manual path.
3. ``gate`` stops the run before anything is migrated when a campaign is blocked (the ``migrate`` task is
   skipped; fix or exclude those campaigns, then run again).
4. ``migrate`` copies and migrates the eligible campaigns and verifies them (``smart_promotion_type`` reads
   ``GUIDED_CREATION``). Its own ``on_blocked="fail"`` re-checks just before migrating.

    airflow dags test meta_advantage_plus_migration
    airflow dags test meta_advantage_plus_migration --conf '{"demo_blocked": true}'   # the gate stops it
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, Param, get_current_context, task

from airflow_provider.demo import seed_demo
from airflow_provider.operators import MetaAdvantagePlusMigrationOperator

CONN_ID = "meta_default"
REPORT = "{{ params.report_dir }}/{{ dag.dag_id }}/{{ run_id }}/{{ ti.task_id }}.json"


@task
def campaigns() -> list[str]:
    """``campaign_ids`` from the run's conf, or demo ASC campaigns created on the local simulator."""
    params: dict[str, Any] = get_current_context()["params"]
    if params["campaign_ids"]:
        return [str(i) for i in params["campaign_ids"]]
    kinds: list[Any] = ["asc", "asc"] + (["asc_blocked"] if params["demo_blocked"] else [])
    return seed_demo(CONN_ID, kinds, prefix="asc-demo")


@task.short_circuit
def gate(preflight: dict[str, Any]) -> bool:
    """Go on only when the preflight found no blocked campaign."""
    for campaign in preflight["blocked"]:
        print(f"blocked: {campaign['source_id']} {campaign['name']!r}: {campaign['reason']}")
    return not preflight["blocked"]


with DAG(
    "meta_advantage_plus_migration",
    description="Preflight, gate, then migrate ASC/AAC campaigns to Advantage+",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "campaign_ids": Param([], type="array"),
        "demo_blocked": Param(False, type="boolean"),
        "report_dir": Param("/tmp/meta-reports", type="string"),
    },
    tags=["meta", "example"],
):
    ids = campaigns()
    preflight = MetaAdvantagePlusMigrationOperator(
        task_id="preflight",
        meta_conn_id=CONN_ID,
        campaign_ids=ids,
        preflight_only=True,
        report_path=REPORT,
    )
    migrate = MetaAdvantagePlusMigrationOperator(
        task_id="migrate",
        meta_conn_id=CONN_ID,
        campaign_ids=ids,
        mode="copy",
        on_blocked="fail",
        report_path=REPORT,
    )
    gate(preflight.output) >> migrate
