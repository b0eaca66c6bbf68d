"""Bulk creation from an inline list: campaigns with ad sets under them, in one deferrable task.

Run it against the simulator (see docs/airflow.md)::

    bulk-engine simulator --port 8765 &      # prints the URL, token and ad accounts
    export AIRFLOW_CONN_META_DEFAULT='{"conn_type": "meta_graph", "password": "SIMULATOR-TOKEN-0001",
        "extra": {"base_url": "http://127.0.0.1:8765", "ad_account_id": "act_1000000001"}}'
    airflow dags test meta_bulk_create

Ad sets reference their campaign with ``{"$ref": "<op_id>"}``: the engine sends each campaign and its ad
sets in dependency order (one Graph batch when they fit) and fills in the real ids.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, Param

from airflow_provider.operators import MetaBulkOperator

TARGETING = {"geo_locations": {"countries": ["US", "CA"]}}
MARKETS = {"spring-sale": ["18-24", "25-34", "35-54"], "summer-sale": ["18-34", "35-64"]}


def campaign_tree(name: str, segments: list[str]) -> list[dict[str, Any]]:
    """One PAUSED traffic campaign and one ad set per age segment."""
    ops: list[dict[str, Any]] = [
        {
            "op_id": name,
            "path": "{account_id}/campaigns",
            "kind": "create_campaign",
            "params": {
                "name": name,
                "objective": "OUTCOME_TRAFFIC",
                "special_ad_categories": [],
                "status": "PAUSED",
            },
        }
    ]
    for segment in segments:
        low, high = (int(x) for x in segment.split("-"))
        ops.append(
            {
                "op_id": f"{name}/{segment}",
                "path": "{account_id}/adsets",
                "kind": "create_adset",
                "params": {
                    "name": f"{name} {segment}",
                    "campaign_id": {"$ref": name},
                    "billing_event": "IMPRESSIONS",
                    "optimization_goal": "LINK_CLICKS",
                    "daily_budget": 2000,
                    "targeting": {**TARGETING, "age_min": low, "age_max": high},
                    "status": "PAUSED",
                },
            }
        )
    return ops


with DAG(
    "meta_bulk_create",
    description="Create campaigns and ad sets from an inline list (deferrable while throttled)",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"report_dir": Param("/tmp/meta-reports", type="string")},
    tags=["meta", "example"],
):
    MetaBulkOperator(
        task_id="create_campaigns",
        meta_conn_id="meta_default",
        operations=[op for name, segments in MARKETS.items() for op in campaign_tree(name, segments)],
        report_path="{{ params.report_dir }}/{{ dag.dag_id }}/{{ run_id }}/{{ ti.task_id }}.json",
    )
