"""Scale-out: one mapped task per ad account with ``.partial(...).expand_kwargs(...)``.

A small task turns the run's accounts into one create task each (``account_id`` and ``campaigns``: a
campaign named after the run with an ad set per country, the typed specs of a job file's create task), and
:class:`~airflow_provider.operators.MetaBulkCreateOperator` is mapped over them. Each map index is its own
engine job (job id from dag_id / run_id / task_id / map_index), so a retry of one account resumes that
account only. Cap how many accounts run at once with ``max_active_tis_per_dag`` (below) or a pool (create
it with ``airflow pools set meta_accounts 4 "Meta ad accounts"``, then add ``pool="meta_accounts"`` to
``partial()``: a task naming a pool that does not exist is never scheduled); on the CeleryExecutor or
KubernetesExecutor the mapped tasks spread over the workers, and a throttled account defers to the
triggerer instead of holding a worker slot. See docs/airflow.md.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, Param, get_current_context, task

from airflow_provider.operators import MetaBulkCreateOperator
from bulk_engine import AdSetSpec, CampaignSpec

# The simulator's seeded ad accounts; pass your own with --conf '{"accounts": [...]}'.
DEFAULT_ACCOUNTS = ["act_1000000001", "act_1000000002", "act_1000000003"]
COUNTRIES = ("US", "GB")


def campaign_tree(name: str) -> CampaignSpec:
    """One PAUSED traffic campaign with one ad set per country (new objects are PAUSED by default)."""
    ad_sets = [
        AdSetSpec(
            name=f"{name} {country}",
            billing_event="IMPRESSIONS",
            optimization_goal="LINK_CLICKS",
            daily_budget=1500,
            targeting={"geo_locations": {"countries": [country]}},
        )
        for country in COUNTRIES
    ]
    return CampaignSpec(name=name, objective="OUTCOME_TRAFFIC", special_ad_categories=[], ad_sets=ad_sets)


@task
def create_tasks_per_account() -> list[dict[str, Any]]:
    """The operator's arguments per account; the specs travel as their JSON form (an XCom holds JSON, and
    the operator validates them again when it runs)."""
    params = get_current_context()["params"]
    return [
        {
            "account_id": account,
            "campaigns": [
                campaign_tree(f"{params['campaign_prefix']}-{account}").model_dump(
                    mode="json", exclude_defaults=True
                )
            ],
        }
        for account in params["accounts"]
    ]


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
    MetaBulkCreateOperator.partial(
        task_id="create_per_account",
        meta_conn_id="meta_default",
        report_path="{{ params.report_dir }}/{{ dag.dag_id }}/{{ run_id }}/account-{{ ti.map_index }}.json",
        max_active_tis_per_dag=4,
    ).expand_kwargs(create_tasks_per_account())
