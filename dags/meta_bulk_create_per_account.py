"""Scale-out: one mapped task per ad account with ``.partial(...).expand(...)``.

Each map index is its own engine job (job id from dag_id / run_id / task_id / map_index), so a retry of
one account resumes that account only. Cap how many accounts run at once with a pool (``pool=`` below,
create it with ``airflow pools set meta_accounts 4 "Meta ad accounts"``) or ``max_active_tis_per_dag``;
on the CeleryExecutor or KubernetesExecutor the mapped tasks spread over the workers, and a throttled
account defers to the triggerer instead of holding a worker slot. See docs/airflow.md.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, Param, get_current_context, task

from airflow_provider.operators import MetaBulkOperator

# The simulator's seeded ad accounts; pass your own with --conf '{"accounts": [...]}'.
DEFAULT_ACCOUNTS = ["act_1000000001", "act_1000000002", "act_1000000003"]


@task
def jobs_per_account() -> list[list[dict[str, Any]]]:
    """One small job per account: a campaign named after the run and two ad sets."""
    params = get_current_context()["params"]
    jobs = []
    for account in params["accounts"]:
        campaign = f"{params['campaign_prefix']}-{account}"
        ops: list[dict[str, Any]] = [
            {
                "op_id": "campaign",
                "account_id": account,
                "path": f"{account}/campaigns",
                "kind": "create_campaign",
                "params": {
                    "name": campaign,
                    "objective": "OUTCOME_TRAFFIC",
                    "special_ad_categories": [],
                    "status": "PAUSED",
                },
            }
        ]
        for country in ("US", "GB"):
            ops.append(
                {
                    "op_id": f"adset-{country}",
                    "account_id": account,
                    "path": f"{account}/adsets",
                    "kind": "create_adset",
                    "params": {
                        "name": f"{campaign} {country}",
                        "campaign_id": {"$ref": "campaign"},
                        "billing_event": "IMPRESSIONS",
                        "optimization_goal": "LINK_CLICKS",
                        "daily_budget": 1500,
                        "targeting": {"geo_locations": {"countries": [country]}},
                        "status": "PAUSED",
                    },
                }
            )
        jobs.append(ops)
    return jobs


with DAG(
    "meta_bulk_create_per_account",
    description="One mapped bulk task per ad account",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "accounts": Param(DEFAULT_ACCOUNTS, type="array"),
        "campaign_prefix": Param("weekly", type="string"),
        "report_dir": Param("/tmp/meta-reports", type="string"),
    },
    tags=["meta", "example"],
):
    MetaBulkOperator.partial(
        task_id="create_per_account",
        meta_conn_id="meta_default",
        report_path="{{ params.report_dir }}/{{ dag.dag_id }}/{{ run_id }}/account-{{ ti.map_index }}.json",
        max_active_tis_per_dag=4,
    ).expand(operations=jobs_per_account())
