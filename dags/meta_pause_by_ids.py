"""Pause (or activate) a list of campaigns, ad sets or ads by id, paced by the rate-limit headers.

The ids come from the run's configuration, e.g. the report of a bulk creation::

    airflow dags test meta_pause_by_ids --conf '{"object_ids": ["1202…", "1202…"], "status": "PAUSED"}'

:class:`~airflow_provider.operators.MetaStatusOperator` sends one status update per id (``POST /<id>
status=…``) in batches of 50, skips transitions the status machine forbids without a call, and waits out
throttles on the triggerer. A run without ids skips it (a status task needs at least one id).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, get_current_context, task

from airflow_provider.operators import MetaStatusOperator


@task.short_circuit
def has_ids() -> bool:
    """Go on only when the run names ids; otherwise the status task is skipped, nothing is sent."""
    return bool(get_current_context()["params"]["object_ids"])


with DAG(
    "meta_pause_by_ids",
    description="Set the status of many ad objects by id",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "object_ids": Param([], type="array"),
        "status": Param("PAUSED", enum=["PAUSED", "ACTIVE", "ARCHIVED"]),
        "report_dir": Param("/tmp/meta-reports", type="string"),
    },
    tags=["meta", "example"],
):
    has_ids() >> MetaStatusOperator(
        task_id="set_status",
        meta_conn_id="meta_default",
        status="{{ params.status }}",
        ids="{{ params.object_ids | tojson }}",  # the operator takes a list's JSON text
        report_path="{{ params.report_dir }}/{{ dag.dag_id }}/{{ run_id }}/{{ ti.task_id }}.json",
    )
