"""DAGs the Airflow tests run with ``dag.test()`` against the simulator: the per-verb operators' edge cases
(gate, retries, deferral). Not examples for users."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, get_current_context, task

from airflow_provider.demo import seed_demo
from airflow_provider.operators import (
    MetaAdvantagePlusMigrationOperator,
    MetaBulkCreateOperator,
    MetaCopyOperator,
    MetaJobOperator,
    MetaStatusOperator,
)
from bulk_engine import IdempotencyConfig, RetryConfig
from bulk_engine.simulator import SimulatorConfig

START = pendulum.datetime(2026, 1, 1, tz="UTC")
REPORT = "{{ params.report_dir }}/{{ ti.task_id }}.json"
ACCOUNTS = SimulatorConfig().ad_account_ids
NO_RETRY = {"retry": RetryConfig(max_attempts=1, base_delay_s=0)}


def campaigns(prefix: str, count: int, adsets: int) -> list[dict[str, Any]]:
    """Inline create-task campaigns: ``count`` PAUSED traffic campaigns with ``adsets`` ad sets each."""
    return [
        {
            "name": f"{prefix}{n}",
            "objective": "OUTCOME_TRAFFIC",
            "special_ad_categories": [],
            "ad_sets": [
                {
                    "name": f"{prefix}{n}/as{j}",
                    "billing_event": "IMPRESSIONS",
                    "optimization_goal": "LINK_CLICKS",
                    "daily_budget": 1000 + j,
                    "targeting": {"geo_locations": {"countries": ["US"]}},
                }
                for j in range(adsets)
            ],
        }
        for n in range(count)
    ]


@task
def demo_campaigns() -> list[str]:
    kinds: Any = get_current_context()["params"]["kinds"]
    return seed_demo("meta_default", kinds, prefix="t")


with DAG(
    "meta_test_migrate_gate",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"report_dir": "/tmp", "kinds": ["asc", "asc_blocked"]},
    tags=["test"],
):
    MetaAdvantagePlusMigrationOperator(
        task_id="migrate", campaign_ids=demo_campaigns(), on_blocked="fail", report_path=REPORT
    )

with DAG(
    "meta_test_job_retry",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"report_dir": "/tmp"},
    tags=["test"],
):
    MetaBulkCreateOperator(
        task_id="create",
        campaigns=campaigns("c", 4, 2),
        report_path=REPORT,
        engine_overrides=NO_RETRY,
        retries=15,
        retry_delay=timedelta(0),
    )

with DAG(
    "meta_test_job_retry_no_journal",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"report_dir": "/tmp"},
    tags=["test"],
):
    MetaBulkCreateOperator(  # a retry on another worker: each try starts without a journal
        task_id="create",
        campaigns=campaigns("c", 4, 2),
        report_path=REPORT,
        journal_path=None,
        # every try looks each create up by its key (one more call each that can fail): allow a retry
        engine_overrides={"retry": RetryConfig(max_attempts=2, base_delay_s=0)},
        retries=15,
        retry_delay=timedelta(0),
    )

with DAG(
    "meta_test_copy_retry",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"report_dir": "/tmp", "kinds": ["traffic", "traffic", "traffic"]},
    tags=["test"],
):
    MetaCopyOperator(
        task_id="copy",
        source_ids=demo_campaigns(),
        deep_copy=False,
        report_path=REPORT,
        engine_overrides=NO_RETRY,
        retries=15,
        retry_delay=timedelta(0),
    )

with DAG(
    "meta_test_status_defer",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"report_dir": "/tmp", "ids": []},
    tags=["test"],
):
    MetaStatusOperator(
        task_id="status",
        status="PAUSED",
        ids="{{ params.ids | tojson }}",
        report_path=REPORT,
        defer_after_s=60,
        cooldown_poll_s=0.05,
    )

with DAG(
    "meta_test_create_parked_at_start",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"report_dir": "/tmp"},
    tags=["test"],
):
    MetaJobOperator(  # the journal remembers a park of the account from an earlier try
        task_id="create",
        job={
            "tasks": [
                {"type": "create", "key": "a", "account_id": ACCOUNTS[0], "campaigns": campaigns("a", 1, 1)}
            ]
        },
        report_path=REPORT,
        journal_path="{{ params.report_dir }}/parked.sqlite",
        preflight=False,  # only the journal knows of the park
        defer_after_s=60,
        cooldown_poll_s=0.05,
    )

with DAG(
    "meta_test_create_park",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"report_dir": "/tmp"},
    tags=["test"],
):
    MetaJobOperator(  # two accounts: the first finishes, the second is blocked mid-job
        task_id="create",
        job={
            "tasks": [
                {"type": "create", "key": "a", "account_id": ACCOUNTS[0], "campaigns": campaigns("a", 1, 2)},
                {"type": "create", "key": "b", "account_id": ACCOUNTS[1], "campaigns": campaigns("b", 1, 2)},
            ]
        },
        report_path=REPORT,
        defer_after_s=60,
        cooldown_poll_s=0.05,
        # no key probes (sent before a new engine job's first batch): the park comes from the batch itself
        engine_overrides={"idempotency": IdempotencyConfig(rebuild="never")},
    )

with DAG(
    "meta_test_copy_fallback",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"report_dir": "/tmp", "source_ids": []},
    tags=["test"],
):
    MetaCopyOperator(  # a deep copy over the synchronous limit: completed by the chunked copy
        task_id="copy",
        source_ids="{{ params.source_ids | tojson }}",
        report_path=REPORT,
    )
