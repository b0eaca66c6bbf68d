"""The job operators' argument handling, without a DAG run: templated list/object fields, one source per
operator, and job files refused before anything is sent."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, TaskDeferred

from airflow_provider.links import ads_manager_url
from airflow_provider.operators import (
    MetaAdvantagePlusMigrationOperator,
    MetaBulkCreateOperator,
    MetaJobOperator,
    MetaStatusOperator,
)
from airflow_provider.operators.base import Resume, job_id_for
from airflow_provider.operators.job import as_list, as_mapping
from bulk_engine import JobValidationError, MemoryJournal, Outcome, OutcomeState, SqliteJournal
from bulk_engine.operations import JobFileError


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (["1", "2"], ["1", "2"]),
        (("1",), ["1"]),
        ('["1", "2"]', ["1", "2"]),  # a rendered ``{{ … | tojson }}`` template
        ("1, 2,,3", ["1", "2", "3"]),
        ("[]", []),
    ],
)
def test_as_list_accepts_lists_json_and_comma_separated_text(value: object, expected: object) -> None:
    assert as_list(value) == expected


def test_as_mapping_accepts_json_text() -> None:
    assert as_mapping('{"rename_suffix": " - EU"}') == {"rename_suffix": " - EU"}
    assert as_mapping(None) is None


def test_each_operator_takes_exactly_one_source() -> None:
    with pytest.raises(ValueError, match="exactly one of ids, selector or csv"):
        MetaStatusOperator(task_id="s", status="PAUSED", ids=["1"], selector={"level": "ad"})
    with pytest.raises(ValueError, match="exactly one of job_file, job or campaigns"):
        MetaBulkCreateOperator(task_id="c")
    with pytest.raises(ValueError, match="exactly one of job_file or job"):
        MetaJobOperator(task_id="j", job_file="a.yaml", job={"tasks": []})
    with pytest.raises(ValueError, match="on_blocked"):
        MetaAdvantagePlusMigrationOperator(task_id="m", on_blocked="maybe")


def test_status_operator_builds_a_selector_task() -> None:
    op = MetaStatusOperator(
        task_id="s",
        status="PAUSED",
        selector='{"level": "adset", "name_prefix": "promo-", "effective_status": ["ACTIVE"]}',
        account_id="act_1",
    )
    spec = op.build_job()
    (task,) = spec.tasks
    assert spec.account_id == "act_1"
    assert task.model_dump(exclude_none=True, exclude_defaults=True) == {
        "type": "status",
        "status": "PAUSED",
        "selector": {"level": "adset", "name_prefix": "promo-", "effective_status": ["ACTIVE"]},
    }


def test_create_operator_refuses_a_job_file_with_other_task_types(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("tasks:\n  - type: status\n    status: PAUSED\n    ids: ['1']\n")
    with pytest.raises(JobValidationError, match="create tasks only"):
        MetaBulkCreateOperator(task_id="c", job_file=str(job)).build_job()
    assert MetaJobOperator(task_id="j", job_file=str(job)).build_job().tasks[0].task_type == "status"


def test_migration_gate_job_is_a_read_only_preflight() -> None:
    op = MetaAdvantagePlusMigrationOperator(task_id="m", campaign_ids="1,2")
    assert op.build_job().tasks[0].preflight_only is False
    op._gate_building = True
    gate = op.build_job().tasks[0]
    assert gate.preflight_only is True and gate.campaign_ids == ["1", "2"]


def test_migration_operator_builds_plan_and_rollback_jobs(tmp_path: Path) -> None:
    """Issue 17: ``plan`` and ``mode="rollback"`` reach the task, checked like a job file's (files exist)."""
    plan = tmp_path / "plan.csv"
    plan.write_text("campaign_id,kind,eligibility,action\n1,ASC,eligible,copy\n", encoding="utf-8")
    task = MetaAdvantagePlusMigrationOperator(task_id="m", plan=str(plan)).build_job().tasks[0]
    assert task.plan == str(plan) and task.after_copy == "pause_source"
    report = tmp_path / "m.json"
    report.write_text(
        json.dumps({"tasks": [{"type": "migrate", "details": {"campaigns": [{"source_id": "1"}]}}]})
    )
    op = MetaAdvantagePlusMigrationOperator(task_id="rb", mode="rollback", rollback_report=str(report))
    rollback = op.build_job().tasks[0]
    assert rollback.mode == "rollback" and rollback.rollback_copies == "pause"
    with pytest.raises(JobValidationError, match="rollback_report"):
        MetaAdvantagePlusMigrationOperator(task_id="rb", mode="rollback").build_job()


def rollback_issues(**fields: Any) -> list[tuple[str, str]]:
    """(rule, last field of the path) of every issue the rollback operator's job is refused with."""
    with pytest.raises(JobFileError) as raised:
        MetaAdvantagePlusMigrationOperator(task_id="rb", **fields).build_job()
    return [(i.rule, str(i.path[-1])) for i in raised.value.issues]


def test_migration_rollback_from_the_journal_is_checked_like_a_job_file(tmp_path: Path) -> None:
    """``rollback_job`` / ``rollback_journal`` are templated and reach the task as in a job file, under the
    engine's rules: one rollback source, the journal with the job, the journal found (before any call)."""
    fields = MetaAdvantagePlusMigrationOperator.template_fields
    assert {"rollback_job", "rollback_journal", "rollback_report"} <= set(fields)
    op = MetaAdvantagePlusMigrationOperator(
        task_id="rb", mode="rollback", rollback_job="airflow-1", rollback_journal="m.sqlite"
    )
    assert {k: op.task_fields()[k] for k in ("mode", "rollback_job", "rollback_journal")} == {
        "mode": "rollback",
        "rollback_job": "airflow-1",
        "rollback_journal": "m.sqlite",
    }
    missing = str(tmp_path / "missing.sqlite")
    rollback = {"mode": "rollback", "rollback_job": "airflow-1"}
    assert rollback_issues(**rollback, rollback_journal=missing) == [
        ("migrate.rollback.missing", "rollback_journal")
    ]
    SqliteJournal(tmp_path / "other.sqlite").close()  # a journal, without that migration
    empty = rollback_issues(**rollback, rollback_journal=str(tmp_path / "other.sqlite"))
    assert empty == [("migrate.rollback.empty", "rollback_job")]
    report = tmp_path / "m.json"
    report.write_text(
        json.dumps({"tasks": [{"type": "migrate", "details": {"campaigns": [{"source_id": "1"}]}}]})
    )
    assert ("migrate.rollback", "mode") in rollback_issues(**rollback, rollback_report=str(report))
    assert ("migrate.rollback", "rollback_journal") in rollback_issues(
        mode="rollback", rollback_report=str(report), rollback_journal=missing
    )
    assert ("migrate.rollback", "rollback_job") in rollback_issues(rollback_job="airflow-1")  # not a rollback


def test_a_rollback_from_its_own_journal_needs_the_migration_in_it() -> None:
    """``rollback_job`` alone reads the journal the task runs with: without that migration in it (a journal
    file per task) the task fails before any call, saying to set ``rollback_journal``."""
    op = MetaAdvantagePlusMigrationOperator(task_id="rb", mode="rollback", rollback_job="airflow-1")
    spec = op.build_job()
    with pytest.raises(JobFileError, match="set rollback_journal") as raised:
        op.check_journal(spec, MemoryJournal())
    assert [(i.rule, i.path) for i in raised.value.issues] == [
        ("migrate.rollback.empty", ("tasks", 0, "rollback_job"))
    ]
    migrate = MetaAdvantagePlusMigrationOperator(task_id="m", campaign_ids="1")
    migrate.check_journal(migrate.build_job(), MemoryJournal())  # not a rollback: nothing to check


def test_a_rollback_journal_naming_the_shared_journal_means_the_tasks_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The migrate task's XCom ``journal`` is, with ``journal_conn_id``, the shared journal's location (no
    password): given back as ``rollback_journal`` it means the journal the rollback runs with."""
    monkeypatch.setenv("AIRFLOW_CONN_META_JOURNAL", "postgresql://bulk:s3cret@127.0.0.1:5999/journals")
    location = "postgresql://bulk@127.0.0.1:5999/journals?schema=meta_bulk"

    def passed(target: str, **kwargs: Any) -> str | None:
        op = MetaAdvantagePlusMigrationOperator(
            task_id="rb", mode="rollback", rollback_job="j", rollback_journal=target, **kwargs
        )
        return op.task_fields()["rollback_journal"]

    assert passed(location, journal_conn_id="meta_journal") is None
    other = location.replace("meta_bulk", "team_b")
    assert passed(other, journal_conn_id="meta_journal") == other  # another schema: read there
    assert passed(location) == location  # no shared journal: the URL as given


def test_job_ids_differ_per_map_index_and_are_stable() -> None:
    ids = {job_id_for("d", "r", "t", i) for i in (-1, 0, 1)}
    assert len(ids) == 3 and job_id_for("d", "r", "t", 0) in ids


def test_deferrable_follows_operators_default_deferrable(monkeypatch: pytest.MonkeyPatch) -> None:
    """As the official providers: ``[operators] default_deferrable`` (stock Airflow: False), unless given."""
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "False")
    assert MetaStatusOperator(task_id="s", status="PAUSED", ids=["1"]).deferrable is False
    assert MetaStatusOperator(task_id="s", status="PAUSED", ids=["1"], deferrable=True).deferrable is True
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    assert MetaStatusOperator(task_id="s", status="PAUSED", ids=["1"]).deferrable is True


def test_the_ads_manager_link_selects_the_new_campaigns_only_on_meta() -> None:
    outcomes = [
        Outcome("c1", OutcomeState.SUCCEEDED, "act_7", "create_campaign", result={"id": "111"}),
        Outcome("s1", OutcomeState.SUCCEEDED, "act_7", "create_adset", result={"id": "222"}),
        Outcome("cp", OutcomeState.SUCCEEDED, "act_7", "copy", result={"copied_campaign_id": "333"}),
        Outcome("c2", OutcomeState.FAILED, "act_7", "create_campaign"),
        Outcome("c3", OutcomeState.SUCCEEDED, "act_8", "create_campaign", result={"id": "444"}),
    ]
    url = ads_manager_url("https://graph.facebook.com", outcomes)
    assert url == (
        "https://adsmanager.facebook.com/adsmanager/manage/campaigns?act=7&selected_campaign_ids=111%2C333"
    )
    assert ads_manager_url("http://127.0.0.1:8765", outcomes) == ""  # a simulator's ids mean nothing there
    assert ads_manager_url("https://graph.facebook.com", outcomes[1:2]) == ""
    op = MetaStatusOperator(task_id="s", status="PAUSED", ids=["1"])
    (link,) = op.operator_extra_links
    assert link.name == "Ads Manager" and link.get_link(op, ti_key=None) == ""  # type: ignore[arg-type]
    op.ads_manager_url = url
    assert link.get_link(op, ti_key=None) == url  # type: ignore[arg-type]


def test_a_deferral_carries_what_is_left_of_execution_timeout() -> None:
    op = MetaStatusOperator(
        task_id="s", status="PAUSED", ids=["1"], execution_timeout=timedelta(minutes=30), deferrable=True
    )
    context: Any = {"ti": _TaskInstance()}
    started = time.time() - 600  # the try began 10 minutes ago
    with pytest.raises(TaskDeferred) as deferred:
        op._defer(context, Resume(started_at=started), {"act_1": time.time() + 3600}, {}, left="all")
    assert deferred.value.timeout is not None
    assert 19 * 60 < deferred.value.timeout.total_seconds() <= 20 * 60
    trigger = deferred.value.trigger
    assert trigger.account_id == "act_1" and trigger.task_state["started_at"] == started
    with pytest.raises(AirflowException, match="execution_timeout reached"):
        op._defer(context, Resume(started_at=started - 3600), {"act_1": time.time() + 60}, {}, left="all")
    resumed = Resume.from_event(trigger.task_state).resumed(time.time())
    assert resumed.deferrals == 1 and resumed.started_at == started and resumed.deferred_at is None


class _TaskInstance:
    dag_id, run_id, task_id, map_index, try_number = "d", "r", "s", -1, 1
