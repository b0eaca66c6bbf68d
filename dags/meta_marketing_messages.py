"""Send a Messenger marketing message to a subscriber list kept next to the DAG (``jobs/subscribers.csv``).

The operator creates the message campaign, then sends one message per subscription token in batches of 50,
paced by the ad account's rate limit. Tokens listed twice are skipped without a call (Meta asks for 12 hours
between two messages to one subscriber). Try it against the simulator::

    airflow dags test meta_marketing_messages
"""

from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import DAG, Param

from airflow_provider.operators import MetaMarketingMessagesOperator

JOBS = Path(__file__).resolve().parent / "jobs"

with DAG(
    "meta_marketing_messages",
    description="Create a message campaign and message every subscriber of a CSV",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "subscribers_csv": Param(str(JOBS / "subscribers.csv"), type="string"),
        "page_id": Param("2000000001", type="string", pattern=r"^\d+$"),
        "message": Param("Our spring sale starts today!", type="string"),
        "report_dir": Param("/tmp/meta-reports", type="string"),
    },
    tags=["meta", "example"],
):
    MetaMarketingMessagesOperator(
        task_id="send",
        meta_conn_id="meta_default",
        campaign={
            "name": "Spring sale {{ dag_run.run_after | ds }}",  # manual runs have no logical date (no ds)
            "page_id": "{{ params.page_id }}",
            "daily_budget": 1000,
        },
        message="{{ params.message }}",
        csv="{{ params.subscribers_csv }}",
        report_path="{{ params.report_dir }}/{{ dag.dag_id }}/{{ run_id }}/{{ ti.task_id }}.json",
    )
