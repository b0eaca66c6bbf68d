"""Copy campaigns into another ad account (cross-account clone), e.g. a proven set-up into a new market.

``/copies`` only copies within one ad account, so the operator reads each source campaign tree (ad sets,
ads, creatives) and re-creates it in ``target_account_id`` as one dependency-linked job, ids remapped,
PAUSED. Without ``source_ids`` and against a local simulator, a first task creates a demo campaign to copy::

    airflow dags test meta_copy_to_account
    airflow dags test meta_copy_to_account --conf '{"source_ids": ["1202…"], "target_account_id": "act_…"}'
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, Param, get_current_context, task

from airflow_provider.demo import seed_demo
from airflow_provider.operators import MetaCopyOperator

CONN_ID = "meta_default"


@task
def source_campaigns() -> list[str]:
    """The ids to copy: ``source_ids`` from the run's conf, or a demo campaign on the simulator."""
    params: dict[str, Any] = get_current_context()["params"]
    if params["source_ids"]:
        return [str(i) for i in params["source_ids"]]
    return seed_demo(CONN_ID, ["traffic"], prefix="copy-demo")


with DAG(
    "meta_copy_to_account",
    description="Clone campaign trees into another ad account",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "source_ids": Param([], type="array"),
        "target_account_id": Param("act_1000000002", type="string", pattern=r"^act_\d+$"),
        "rename_suffix": Param(" - EU", type="string"),
        "report_dir": Param("/tmp/meta-reports", type="string"),
    },
    tags=["meta", "example"],
):
    MetaCopyOperator(
        task_id="clone",
        meta_conn_id=CONN_ID,
        source_ids=source_campaigns(),
        target_account_id="{{ params.target_account_id }}",
        status_option="PAUSED",
        rename_options={"rename_strategy": "DEEP_RENAME", "rename_suffix": "{{ params.rename_suffix }}"},
        report_path="{{ params.report_dir }}/{{ dag.dag_id }}/{{ run_id }}/{{ ti.task_id }}.json",
    )
