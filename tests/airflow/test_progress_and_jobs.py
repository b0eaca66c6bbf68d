"""Resuming from progress (pure) and the operator's job inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_provider.jobs import compile_job, operation_from_dict, operation_to_dict
from airflow_provider.progress import MemoryProgressStore, Progress, job_id_for, remaining_operations
from bulk_engine import JobValidationError, Operation, OpKind, Outcome, OutcomeState, Ref

ACT = "act_1"


def _ops() -> list[Operation]:
    return [
        Operation(op_id="c", method="POST", path=f"{ACT}/campaigns", account_id=ACT, kind=OpKind.CREATE_CAMPAIGN,
                  params={"name": "c"}),
        Operation(op_id="as", method="POST", path=f"{ACT}/adsets", account_id=ACT, kind=OpKind.CREATE_ADSET,
                  params={"campaign_id": Ref("c"), "nested": [{"x": Ref("c", "$.extra")}], "other": Ref("cr")}),
        Operation(op_id="cr", method="POST", path=f"{ACT}/adcreatives", account_id=ACT,
                  kind=OpKind.CREATE_CREATIVE, params={"name": "cr"}),
        Operation(op_id="pause", method="POST", path=(Ref("c"), "copies"), account_id=ACT, kind=OpKind.COPY),
    ]  # fmt: skip


def test_job_id_is_stable_and_distinct_per_task_instance() -> None:
    one = job_id_for("dag", "manual__2026-01-01T00:00:00+00:00", "task", -1)
    assert one == job_id_for("dag", "manual__2026-01-01T00:00:00+00:00", "task", -1)
    assert one.startswith("airflow-") and len(one) == 40
    others = {job_id_for("dag", "run", "task", i) for i in range(-1, 5)} | {
        job_id_for("dag2", "run", "task", -1)
    }
    assert len(others) == 7 and one not in others


def test_remaining_operations_resolve_refs_to_earlier_successes() -> None:
    progress = Progress("j")
    progress.record(
        Outcome("c", OutcomeState.SUCCEEDED, ACT, "create_campaign", result={"id": "42", "extra": 7})
    )

    left = remaining_operations(_ops(), progress.done)

    assert left.outcomes == []
    remaining = left.operations
    assert [op.op_id for op in remaining] == ["as", "cr", "pause"]
    adset = remaining[0]
    assert adset.params == {"campaign_id": "42", "nested": [{"x": 7}], "other": Ref("cr")}
    assert adset.dependencies == frozenset({"cr"})  # still waits for the creative in this run
    assert remaining[2].path == ("42", "copies")
    assert remaining[1] == _ops()[2]


def test_unresolvable_refs_fail_and_their_dependents_are_skipped() -> None:
    progress = Progress("j")
    progress.record(
        Outcome("c", OutcomeState.SUCCEEDED, ACT, "create_campaign", result={"id": "1"})
    )  # no "extra"
    ops = [*_ops(), Operation(op_id="ad", method="POST", path=f"{ACT}/ads", account_id=ACT,
                              kind=OpKind.CREATE_AD, params={"adset_id": Ref("as")})]  # fmt: skip

    left = remaining_operations(ops, progress.done)

    assert [op.op_id for op in left.operations] == ["cr", "pause"]
    states = {o.op_id: (o.state, o.reason) for o in left.outcomes}
    assert states["as"][0] is OutcomeState.FAILED and "$.extra" in str(states["as"][1])
    assert states["ad"] == (OutcomeState.SKIPPED, "as did not succeed")


def test_new_try_forgets_failures_but_never_successes() -> None:
    progress = Progress("j")
    progress.record(
        Outcome("c", OutcomeState.SUCCEEDED, ACT, "create_campaign", result={"id": "1", "extra": 2})
    )
    progress.record(Outcome("cr", OutcomeState.FAILED, ACT, "create_creative", reason="boom"))
    progress.record(Outcome("as", OutcomeState.SKIPPED, ACT, "create_adset", reason="parent failed"))
    assert progress.counts() == {"succeeded": 1, "failed": 1, "skipped": 1}

    assert progress.forget_unsuccessful() == 2

    left = remaining_operations(_ops(), progress.done)
    assert [op.op_id for op in left.operations] == ["as", "cr", "pause"]


def test_progress_survives_a_json_round_trip_through_a_store() -> None:
    progress = Progress("j", deferrals=2, waited_s=3.5, deferred_at=10.0)
    progress.record(Outcome("c", OutcomeState.SUCCEEDED, ACT, "create_campaign", result={"id": "1"}))
    progress.add_stats(http_requests=3, graph_calls=5)
    store = MemoryProgressStore()
    store.save(progress)

    loaded = store.load("j")

    assert loaded == progress
    assert store.load("other") is None
    json.dumps(progress.to_json())


def test_operations_from_json_form() -> None:
    op = operation_from_dict(
        {"op_id": "as", "path": "{account_id}/adsets", "kind": "create_adset",
         "params": {"campaign_id": {"$ref": "c"}, "ids": [{"$ref": "x", "path": "$.data.*.id"}]}},
        default_account_id=ACT,
    )  # fmt: skip

    assert op.path == f"{ACT}/adsets"
    assert op.account_id == ACT and op.method == "POST" and op.kind is OpKind.CREATE_ADSET
    assert op.params == {"campaign_id": Ref("c"), "ids": [Ref("x", "$.data.*.id")]}
    assert operation_from_dict(operation_to_dict(op)) == op
    for original in _ops():
        assert operation_from_dict(json.loads(json.dumps(operation_to_dict(original)))) == original


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"op_id": "a", "path": "x"}, "no account_id"),
        ({"op_id": "a", "path": "x", "account_id": ACT, "verb": "POST"}, "unknown fields"),
        ({"op_id": "a", "path": "x", "account_id": ACT, "kind": "explode"}, "explode"),
        (
            {"op_id": "a", "path": "x", "account_id": ACT, "params": {"p": {"$ref": "b", "oops": 1}}},
            "only 'path'",
        ),
        ({"op_id": "a", "path": 5, "account_id": ACT}, "path must be"),
    ],
)
def test_bad_operations_are_rejected(data: dict[str, object], message: str) -> None:
    with pytest.raises(JobValidationError, match=message):
        operation_from_dict(data)


def test_exactly_one_job_source() -> None:
    with pytest.raises(JobValidationError, match="exactly one"):
        compile_job()
    with pytest.raises(JobValidationError, match="got operations, job_file"):
        compile_job(operations=_ops(), job_file="x.yaml")
    assert [op.op_id for op in compile_job(operations=_ops()).operations] == ["c", "as", "cr", "pause"]


def test_reports_go_to_local_paths_and_object_storage(tmp_path: Path) -> None:
    from airflow.sdk import ObjectStoragePath

    from airflow_provider.operators.bulk import write_report

    local = write_report(f"file://{tmp_path}/a/b/report.json", {"job_id": "j"})
    assert local == str(tmp_path / "a" / "b" / "report.json")
    assert json.loads(Path(local).read_text()) == {"job_id": "j"}

    remote = write_report("memory://meta-reports/run-1/report.json", {"job_id": "j"})
    assert remote == "memory://meta-reports/run-1/report.json"
    assert json.loads(ObjectStoragePath(remote).read_text()) == {"job_id": "j"}
