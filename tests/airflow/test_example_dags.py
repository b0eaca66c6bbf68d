"""The example DAGs in dags/: they import cleanly and run with dag.test() against the simulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from af_helpers import RunDag, store, ti_states, xcom

from bulk_engine.persistence.keys import strip_key

ROOT = Path(__file__).resolve().parents[2]


def test_every_example_dag_imports_without_errors(airflow_db: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))

    assert bag.import_errors == {}
    assert bag.dag_ids, "no example DAGs found"
    for dag_id in bag.dag_ids:
        dag = bag.get_dag(dag_id)
        assert dag is not None and "example" in dag.tags, dag_id


def test_bulk_create_example(meta_conn: Any, run_dag: RunDag, tmp_path: Path) -> None:
    run = run_dag("meta_bulk_create")

    assert str(run.state) == "success"
    summary = xcom(run, "create_campaigns")
    assert summary["counts"] == {"succeeded": 7, "failed": 0, "skipped": 0}
    assert Path(summary["report_path"]).is_file()
    assert Path(summary["report_path"]).is_relative_to(tmp_path)
    assert sorted(strip_key(c["name"]) for c in store(meta_conn, "campaign")) == [
        "spring-sale",
        "summer-sale",
    ]
    adsets = store(meta_conn, "adset")
    assert len(adsets) == 5
    assert {a["targeting"]["age_min"] for a in adsets} == {18, 25, 35}


def test_per_account_example_maps_one_job_per_account(meta_conn: Any, run_dag: RunDag) -> None:
    accounts = meta_conn.info()["ad_account_ids"]

    run = run_dag("meta_bulk_create_per_account", accounts=accounts, campaign_prefix="t")

    assert str(run.state) == "success"
    states = ti_states(run)
    assert [states[f"create_per_account[{i}]"] for i in range(len(accounts))] == ["success"] * len(accounts)
    summaries = [xcom(run, "create_per_account", map_index=i)[0] for i in range(len(accounts))]
    assert len({s["job_id"] for s in summaries}) == len(accounts)
    assert all(s["counts"] == {"succeeded": 3, "failed": 0, "skipped": 0} for s in summaries)
    assert all(s["created"] == {"create_campaign": 1, "create_adset": 2} for s in summaries)
    # exactly one campaign per account, holding exactly its two ad sets; the stored ``account_id`` field is
    # the bare number, as Graph returns it
    campaigns = store(meta_conn, "campaign")
    assert sorted((f"act_{c['account_id']}", strip_key(c["name"])) for c in campaigns) == [
        (a, f"t-{a}") for a in sorted(accounts)
    ]
    campaign_of = {f"act_{c['account_id']}": c["id"] for c in campaigns}
    adsets = [
        (f"act_{a['account_id']}", a["campaign_id"], strip_key(a["name"]), a["targeting"]["geo_locations"])
        for a in store(meta_conn, "adset")
    ]
    assert sorted(adsets) == sorted(
        (a, campaign_of[a], f"t-{a} {country}", {"countries": [country]})
        for a in accounts
        for country in ("US", "GB")
    )


def test_status_example_sets_the_status_of_created_objects(meta_conn: Any, run_dag: RunDag) -> None:
    created = run_dag("meta_bulk_create")
    report = json.loads(Path(xcom(created, "create_campaigns")["report_path"]).read_text())
    adset_ids = [op["graph_id"] for op in report["operations"] if op["kind"] == "create_adset"]

    run = run_dag("meta_pause_by_ids", object_ids=adset_ids, status="ACTIVE")

    assert str(run.state) == "success"
    assert xcom(run, "set_status")["counts"] == {"succeeded": 5, "failed": 0, "skipped": 0}
    assert {a["id"]: a["status"] for a in store(meta_conn, "adset")} == dict.fromkeys(adset_ids, "ACTIVE")


def test_status_example_with_no_ids_skips_the_status_task(meta_conn: Any, run_dag: RunDag) -> None:
    run = run_dag("meta_pause_by_ids")

    assert str(run.state) == "success"
    assert ti_states(run) == {"has_ids": "success", "set_status": "skipped"}
    assert meta_conn.run(lambda core: len(core.calls)) == 0


def test_every_example_dag_renders_for_a_manual_trigger(airflow_db: Path) -> None:
    """``airflow dags trigger`` runs have no logical date in Airflow 3: ``ds``, ``ts`` and friends are
    undefined. Every templated field of every example DAG must render with what such a run has (its run id,
    ``run_after``, conf and params), under Airflow's strict undefined."""
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    run_after = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
    for dag_id in bag.dag_ids:
        dag = bag.get_dag(dag_id)
        assert dag is not None
        params = {key: dag.params[key] for key in dag.params}
        run = SimpleNamespace(run_id="manual__2026-12-02", run_after=run_after, logical_date=None, conf={})
        for task in dag.tasks:
            context = {
                "dag": dag,
                "dag_run": run,
                "run_id": run.run_id,
                "params": params,
                "ti": SimpleNamespace(  # upstream XComs do not matter here: the dates do
                    task_id=task.task_id, run_id=run.run_id, map_index=-1, xcom_pull=lambda *a, **k: []
                ),
                "task": task,
            }
            partial = getattr(task, "partial_kwargs", None)  # a mapped task: its fixed arguments
            for field in task.template_fields:
                value = partial.get(field) if partial is not None else getattr(task, field)
                try:
                    task.render_template(value, context, jinja_env=dag.get_template_env())
                except Exception as err:
                    raise AssertionError(f"{dag_id}.{task.task_id}.{field}: {err}") from err


def test_raise_budgets_example_raises_the_winners_once_and_keeps_an_undo_file(
    meta_conn: Any, run_dag: RunDag, tmp_path: Path
) -> None:
    created = run_dag("meta_bulk_create")
    report = json.loads(Path(xcom(created, "create_campaigns")["report_path"]).read_text())
    adset_ids = [op["graph_id"] for op in report["operations"] if op["kind"] == "create_adset"]
    roas = tmp_path / "roas.csv"
    rows = [f"{i},{r}" for i, r in zip(adset_ids, [3.1, 0.8, 2.0, 1.9, 4.0], strict=True)]
    roas.write_text("adset_id,roas\n" + "\n".join(rows) + "\n", encoding="utf-8")

    run = run_dag("meta_raise_budgets", roas_csv=str(roas), min_roas=2.0, raise_pct=10, max_daily_budget=2150)

    assert str(run.state) == "success"
    summary = xcom(run, "raise_budgets")
    assert summary["diff_counts"] == {"changed": 3, "unchanged": 0, "skipped": 0, "failed": 0}
    budgets = {a["id"]: a["daily_budget"] for a in store(meta_conn, "adset")}
    assert [budgets[i] for i in adset_ids] == ["2150", "2000", "2150", "2000", "2150"]  # +10% capped at 2150
    undo = json.loads(Path(summary["undo_path"]).read_text())
    assert sorted(o["id"] for o in undo["tasks"][0]["objects"]) == sorted(adset_ids[i] for i in (0, 2, 4))
    assert undo["tasks"][0]["objects"][0]["before"] == {"daily_budget": 2000}


def test_migration_example_runs_an_edited_plan_after_approval(meta_conn: Any, run_dag: RunDag) -> None:
    """The review stops a plan with a blocked campaign; the reviewer edits the plan and approves it: the
    edited rows run as written, the verified copy's source is switched over, the skipped one is untouched."""
    import csv

    stopped = run_dag("meta_advantage_plus_migration", demo_blocked=True)
    assert ti_states(stopped)["migrate"] == "skipped"
    plan = Path(xcom(stopped, "plan")["plan_path"])
    with plan.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["action"] for r in rows] == ["copy", "copy", "manual"]
    rows[0]["action"] = "skip"
    edited = plan.with_name("plan-reviewed.csv")
    with edited.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)

    run = run_dag("meta_advantage_plus_migration", approved=True, plan_file=str(edited))

    assert str(run.state) == "success"
    assert ti_states(run)["switch_over"] == "success"
    migrated = xcom(run, "migrate")["migrated"]
    assert list(migrated) == [rows[1]["campaign_id"]]
    campaigns = {c["id"]: c for c in store(meta_conn, "campaign")}
    assert campaigns[rows[0]["campaign_id"]]["status"] == "ACTIVE"  # skipped by the reviewer
    assert campaigns[rows[1]["campaign_id"]]["status"] == "PAUSED"  # switched over to its verified copy
    assert campaigns[migrated[rows[1]["campaign_id"]]]["smart_promotion_type"] == "GUIDED_CREATION"
    assert campaigns[rows[2]["campaign_id"]]["smart_promotion_type"] == "AUTOMATED_SHOPPING_ADS"
