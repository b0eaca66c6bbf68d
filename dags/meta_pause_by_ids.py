"""Pause (or activate) a list of campaigns, ad sets or ads by id, paced by the rate-limit headers.

The ids come from the run's configuration, e.g. the report of a bulk creation::

    airflow dags test meta_pause_by_ids --conf '{"object_ids": ["1202…", "1202…"], "status": "PAUSED"}'

A small task turns the ids into status updates (``POST /<id> status=…``); the deferrable bulk task sends
them in batches of 50 and waits out throttles on the triggerer.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, Param, get_current_context, task

from airflow_provider.operators import MetaBulkOperator


@task
def status_updates() -> list[dict[str, Any]]:
    """One ``update`` operation per id; the account defaults to the connection's ad account."""
    params = get_current_context()["params"]
    return [
        {
            "op_id": f"status/{object_id}",
            "path": str(object_id),
            "kind": "update",
            "params": {"status": params["status"]},
        }
        for object_id in params["object_ids"]
    ]


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
    MetaBulkOperator(
        task_id="set_status",
        meta_conn_id="meta_default",
        operations=status_updates(),
        report_path="{{ params.report_dir }}/{{ dag.dag_id }}/{{ run_id }}/{{ ti.task_id }}.json",
    )
