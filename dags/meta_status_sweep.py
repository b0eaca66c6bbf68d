"""Nightly status sweep: pause every ACTIVE campaign whose name matches a pattern, paced by the rate limits.

The operator reads the ad account's campaigns (server-side ``effective_status`` filter, names matched
locally), then sends one ``status=PAUSED`` update per match in batches of 50. Forbidden transitions are
skipped without a call; a rerun finds nothing left to pause. Try it against the simulator::

    airflow dags test meta_status_sweep --conf '{"name_prefix": "promo-"}'
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param

from airflow_provider.operators import MetaStatusOperator

with DAG(
    "meta_status_sweep",
    description="Every night, pause the active campaigns whose name starts with a prefix",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    params={
        "name_prefix": Param("promo-", type="string", minLength=1),
        "level": Param("campaign", enum=["campaign", "adset", "ad"]),
        "status": Param("PAUSED", enum=["PAUSED", "ARCHIVED"]),
        "report_dir": Param("/tmp/meta-reports", type="string"),
    },
    tags=["meta", "example"],
):
    MetaStatusOperator(
        task_id="sweep",
        meta_conn_id="meta_default",
        status="{{ params.status }}",
        selector={
            "level": "{{ params.level }}",
            "name_prefix": "{{ params.name_prefix }}",
            "effective_status": ["ACTIVE"],
        },
        report_path="{{ params.report_dir }}/{{ dag.dag_id }}/{{ run_id }}/{{ ti.task_id }}.json",
    )
