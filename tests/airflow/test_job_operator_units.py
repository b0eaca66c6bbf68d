"""The job operators' argument handling, without a DAG run: templated list/object fields, one source per
operator, and job files refused before anything is sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider.operators import (
    MetaAdvantagePlusMigrationOperator,
    MetaBulkCreateOperator,
    MetaJobOperator,
    MetaStatusOperator,
)
from airflow_provider.operators.job import as_list, as_mapping
from airflow_provider.progress import job_id_for
from bulk_engine import JobValidationError


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


def test_job_ids_differ_per_map_index_and_are_stable() -> None:
    ids = {job_id_for("d", "r", "t", i) for i in (-1, 0, 1)}
    assert len(ids) == 3 and job_id_for("d", "r", "t", 0) in ids
