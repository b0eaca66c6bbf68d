"""Bulk creation from a job file kept next to the DAG (``dags/jobs/spring_launch.yaml``).

The job file is the same one ``bulk-engine run`` takes: validate it with ``bulk-engine validate``, review it
in a pull request, and let this DAG run it on schedule. Against the simulator (see docs/airflow.md)::

    airflow dags test meta_bulk_create_from_file

The operator keeps an engine journal per task instance (``$AIRFLOW_HOME/meta_bulk/journals``): a retry or a
resumed deferral answers what already succeeded from it and sends only the rest — no duplicate campaigns.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.sdk import DAG, Param

from airflow_provider.operators import MetaBulkCreateOperator

JOBS = Path(__file__).resolve().parent / "jobs"

with DAG(
    "meta_bulk_create_from_file",
    description="Create campaign trees from a YAML job file kept next to the DAG",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "job_file": Param(str(JOBS / "spring_launch.yaml"), type="string"),
        "report_dir": Param("/tmp/meta-reports", type="string"),
    },
    tags=["meta", "example"],
):
    MetaBulkCreateOperator(
        task_id="create_from_file",
        meta_conn_id="meta_default",
        job_file="{{ params.job_file }}",
        report_path="{{ params.report_dir }}/{{ dag.dag_id }}/{{ run_id }}/{{ ti.task_id }}.json",
        retries=2,
        retry_delay=timedelta(minutes=5),
    )
