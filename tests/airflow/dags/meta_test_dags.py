"""DAGs the Airflow tests run with ``dag.test()`` against the simulator (not examples for users)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG

from airflow_provider.operators import MetaBulkOperator
from bulk_engine import RetryConfig

START = pendulum.datetime(2026, 1, 1, tz="UTC")
REPORT = "{{ params.report_dir }}/{{ ti.task_id }}.json"
TARGETING = {"geo_locations": {"countries": ["US"]}}


def tree(prefix: str, adsets: int) -> list[dict[str, Any]]:
    """One campaign and ``adsets`` ad sets under it, in the provider's JSON operation form."""
    ops: list[dict[str, Any]] = [
        {
            "op_id": f"{prefix}",
            "path": "{account_id}/campaigns",
            "kind": "create_campaign",
            "params": {
                "name": prefix,
                "objective": "OUTCOME_TRAFFIC",
                "special_ad_categories": [],
                "status": "PAUSED",
            },
        }
    ]
    for n in range(adsets):
        ops.append(
            {
                "op_id": f"{prefix}/as{n}",
                "path": "{account_id}/adsets",
                "kind": "create_adset",
                "params": {
                    "name": f"{prefix}/as{n}",
                    "campaign_id": {"$ref": prefix},
                    "billing_event": "IMPRESSIONS",
                    "optimization_goal": "LINK_CLICKS",
                    "daily_budget": 1000 + n,
                    "targeting": TARGETING,
                    "status": "PAUSED",
                },
            }
        )
    return ops


with DAG(
    "meta_test_bulk_create",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"report_dir": "/tmp"},
    tags=["test"],
):
    MetaBulkOperator(
        task_id="create",
        operations=tree("spring", 2) + tree("summer", 2),
        report_path=REPORT,
        defer_after_s=60,
        cooldown_poll_s=0.05,
    )

with DAG(
    "meta_test_bulk_retry",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"report_dir": "/tmp"},
    tags=["test"],
):
    MetaBulkOperator(
        task_id="create",
        operations=[op for n in range(4) for op in tree(f"c{n}", 2)],
        report_path=REPORT,
        engine_overrides={"retry": RetryConfig(max_attempts=1, base_delay_s=0)},
        retries=12,
        retry_delay=timedelta(0),
    )

with DAG(
    "meta_test_bulk_invalid",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"report_dir": "/tmp"},
    tags=["test"],
):
    MetaBulkOperator(
        task_id="create",
        operations=[
            {
                "op_id": "bad",
                "path": "{account_id}/adsets",
                "kind": "create_adset",
                "params": {"campaign_id": {"$ref": "missing"}},
            }
        ],
        report_path=REPORT,
    )
