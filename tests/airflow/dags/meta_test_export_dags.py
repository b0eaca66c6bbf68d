"""DAGs the Airflow tests run with ``dag.test()`` against the simulator: ``MetaExportOperator`` (templated
output path, small XCom). Not examples for users."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider.operators import MetaExportOperator
from bulk_engine import RetryConfig

START = pendulum.datetime(2026, 1, 1, tz="UTC")

with DAG(
    "meta_test_export",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"report_dir": "/tmp", "edge": "campaigns"},
):
    MetaExportOperator(
        task_id="export",
        edge="campaigns",
        fields="name,status",
        filtering=[{"field": "name", "operator": "STARTS_WITH", "value": "Seeded"}],
        effective_status=["ACTIVE"],
        output_path="{{ params.report_dir }}/campaigns-{{ ds }}.csv",
        page_size=400,
        report_path="{{ params.report_dir }}/{{ ti.task_id }}.json",
        engine_overrides={"retry": RetryConfig(max_attempts=2, base_delay_s=0)},
    )
