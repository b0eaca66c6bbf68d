"""Nightly: raise the daily budgets of the ad sets above a ROAS threshold, from a CSV, and keep an undo file.

The ROAS figures come from a CSV another system writes (an insights export: ``adset_id,roas``). A small task
keeps the ad sets at or above ``min_roas`` and writes the update CSV (``id,daily_budget`` with
``+<raise_pct>%``); :class:`~airflow_provider.operators.MetaUpdateOperator` reads every ad set first, raises
its budget (at most ``max_daily_budget`` cents), skips what needs no change, checks the documented rules
locally, and writes the report and the undo file (``bulk-engine undo <report>.undo.json`` takes the raise
back, leaving alone any ad set someone changed since)::

    airflow dags test meta_raise_budgets --conf '{"roas_csv": "/data/roas.csv", "min_roas": 2.5}'

A retry or a deferral resumes from the journal: the reads are answered from it, so the raise is applied once.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pendulum
from airflow.sdk import DAG, Param, get_current_context, task

from airflow_provider.operators import MetaUpdateOperator


@task
def winners_csv() -> str:
    """``id,daily_budget`` rows (``+N%``) for the ad sets whose ROAS reaches the threshold; the file's path."""
    context = get_current_context()
    params = context["params"]
    out = Path(params["report_dir"]) / context["dag"].dag_id / context["run_id"] / "raise.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    with (
        Path(params["roas_csv"]).open(newline="", encoding="utf-8") as source,
        out.open("w", newline="") as sink,
    ):
        writer = csv.writer(sink)
        writer.writerow(["id", "daily_budget"])
        for row in csv.DictReader(source):
            if row.get("adset_id") and float(row.get("roas") or 0) >= float(params["min_roas"]):
                writer.writerow([row["adset_id"].strip(), f"+{params['raise_pct']}%"])
    return str(out)


with DAG(
    "meta_raise_budgets",
    description="Nightly: raise the budgets of ad sets above a ROAS threshold (CSV), with an undo file",
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "roas_csv": Param("/data/roas.csv", type="string"),
        "min_roas": Param(2.0, type="number"),
        "raise_pct": Param(10, type="integer", minimum=1, maximum=100),
        "max_daily_budget": Param(100_000, type="integer", minimum=100),
        "report_dir": Param("/tmp/meta-reports", type="string"),
    },
    tags=["meta", "example"],
):
    MetaUpdateOperator(
        task_id="raise_budgets",
        meta_conn_id="meta_default",
        level="adset",
        csv=winners_csv(),
        clamp={"daily_budget": {"max": "{{ params.max_daily_budget }}"}},
        report_path="{{ params.report_dir }}/{{ dag.dag_id }}/{{ run_id }}/{{ ti.task_id }}.json",
    )
