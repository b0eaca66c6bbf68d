"""Bulk creation from an inline list: campaigns with ad sets under them, in one deferrable task.

Run it against the simulator (see docs/airflow.md)::

    bulk-engine simulator --port 8765 &      # prints the URL, token and ad accounts
    export AIRFLOW_CONN_META_DEFAULT='{"conn_type": "meta_graph", "password": "SIMULATOR-TOKEN-0001",
        "extra": {"base_url": "http://127.0.0.1:8765", "ad_account_id": "act_1000000001"}}'
    airflow dags test meta_bulk_create

The trees are the typed specs of a job file's create task (``CampaignSpec`` with its ``AdSetSpec`` s), checked
when the DAG file is parsed; the engine sends each campaign and its ad sets in dependency order (one Graph
batch when they fit) and fills in the real ids.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param

from airflow_provider.operators import MetaBulkCreateOperator
from bulk_engine import AdSetSpec, CampaignSpec

TARGETING = {"geo_locations": {"countries": ["US", "CA"]}}
MARKETS = {"spring-sale": ["18-24", "25-34", "35-54"], "summer-sale": ["18-34", "35-64"]}


def campaign_tree(name: str, segments: list[str]) -> CampaignSpec:
    """One PAUSED traffic campaign and one ad set per age segment (new objects are PAUSED by default)."""
    ad_sets = []
    for segment in segments:
        low, high = (int(x) for x in segment.split("-"))
        ad_sets.append(
            AdSetSpec(
                name=f"{name} {segment}",
                billing_event="IMPRESSIONS",
                optimization_goal="LINK_CLICKS",
                daily_budget=2000,
                targeting={**TARGETING, "age_min": low, "age_max": high},
            )
        )
    return CampaignSpec(name=name, objective="OUTCOME_TRAFFIC", special_ad_categories=[], ad_sets=ad_sets)


with DAG(
    "meta_bulk_create",
    description="Create campaigns and ad sets from an inline list (deferrable while throttled)",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"report_dir": Param("/tmp/meta-reports", type="string")},
    tags=["meta", "example"],
):
    MetaBulkCreateOperator(
        task_id="create_campaigns",
        meta_conn_id="meta_default",
        campaigns=[campaign_tree(name, segments) for name, segments in MARKETS.items()],
        report_path="{{ params.report_dir }}/{{ dag.dag_id }}/{{ run_id }}/{{ ti.task_id }}.json",
    )
