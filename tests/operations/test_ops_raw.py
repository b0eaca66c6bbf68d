"""``type: operations``: raw Graph calls in job files (what ``MetaBulkOperator`` runs), one codec with the journal."""

from __future__ import annotations

from typing import Any

import pytest

from bulk_engine import Operation, OpKind, Ref
from bulk_engine.operations import CompileContext, JobFileError, parse_job, run_job
from bulk_engine.operations.raw import infer_kind
from bulk_engine.persistence import MemoryJournal
from bulk_engine.persistence.codec import decode_plan, encode_plan

ACT = "act_1"


def _ops(spec: Any) -> list[Operation]:
    return list(spec.compile(CompileContext()))


def _job(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"account_id": ACT, "tasks": [{"type": "operations", "operations": list(operations)}]}


def test_operations_compile_with_refs_account_placeholders_and_inferred_kinds() -> None:
    spec = parse_job(
        _job(
            {"op_id": "c", "path": "{account_id}/campaigns", "params": {"name": "c"}},
            {"op_id": "s", "path": "{account_id}/adsets", "params": {"campaign_id": {"$ref": "c"}}},
            {"op_id": "img", "path": "act_2/adimages", "account_id": "act_2", "params": {}},
            {"op_id": "u", "path": {"$ref": "c"}, "params": {"name": {"$ref": "s", "$path": "$.id"}}},
            {"op_id": "cp", "path": [{"$ref": "s"}, "copies"], "kind": "copy_adset"},
            {"op_id": "d", "method": "DELETE", "path": "123"},
            {"op_id": "aud", "path": "{account_id}/customaudiences", "params": {"name": "a"}},
        )
    )
    spec.ensure_checked()
    c, s, img, u, cp, d, aud = _ops(spec)
    assert (c.path, c.kind, c.account_id) == ("act_1/campaigns", OpKind.CREATE_CAMPAIGN, ACT)
    assert s.params == {"campaign_id": Ref("c")} and s.kind is OpKind.CREATE_ADSET
    assert (img.account_id, img.kind) == ("act_2", OpKind.CREATE_IMAGE)
    assert u.path == Ref("c") and u.kind is OpKind.UPDATE and u.params == {"name": Ref("s", "$.id")}
    assert cp.path == (Ref("s"), "copies") and cp.kind is OpKind.COPY_ADSET
    assert d.kind is OpKind.DELETE and aud.kind is OpKind.CREATE_OTHER


def test_the_journal_codec_form_round_trips_through_an_operations_task() -> None:
    """``MetaBulkOperator`` turns ``Operation`` objects into ``encode_plan`` dicts: the task rebuilds them exactly."""
    originals = [
        Operation(op_id="c", method="POST", path=f"{ACT}/campaigns", account_id=ACT,
                  kind=OpKind.CREATE_CAMPAIGN, params={"name": "c", "$weird": 1}),
        Operation(op_id="as", method="POST", path=f"{ACT}/adsets", account_id=ACT, kind=OpKind.CREATE_ADSET,
                  params={"campaign_id": Ref("c"), "nested": [{"x": Ref("c", "$.extra")}]}, campaign_key="k"),
        Operation(op_id="cp", method="POST", path=(Ref("c"), "copies"), account_id=ACT, kind=OpKind.COPY),
    ]  # fmt: skip
    spec = parse_job(_job(*(encode_plan(op) for op in originals)))
    spec.ensure_checked()
    assert _ops(spec) == originals
    assert [decode_plan(encode_plan(op)) for op in originals] == originals


@pytest.mark.parametrize(
    ("operation", "message"),
    [
        (
            {"op_id": "x", "path": "a/adsets", "params": {"campaign_id": {"$ref": "nope"}}},
            "references no operation",
        ),
        ({"op_id": "x", "path": "a", "params": {"v": {"$ref": "x", "path": "$.id"}}}, r"takes only \$path"),
        (
            {"op_id": "x", "path": "a", "params": {"v": {"$ref": "x", "$path": "id"}}},
            "JSONPath starting with",
        ),
        ({"op_id": "x", "path": "1/copies"}, "needs kind"),
        ({"op_id": "x", "path": "a", "method": "PUT"}, "method"),
        ({"op_id": "x", "path": "a", "kind": "create_thing"}, "kind"),
    ],
)
def test_bad_operations_are_refused_before_anything_is_sent(operation: dict[str, Any], message: str) -> None:
    with pytest.raises(JobFileError, match=message):
        parse_job(_job(operation)).ensure_checked()


def test_duplicate_op_ids_are_refused_with_both_positions() -> None:
    with pytest.raises(JobFileError, match=r"operations\[1\]\.op_id .*also operations\[0\]"):
        parse_job(_job({"op_id": "x", "path": "a"}, {"op_id": "x", "path": "b"})).ensure_checked()


def test_validate_only_marks_writes_but_not_copies() -> None:
    spec = parse_job(
        _job({"op_id": "c", "path": "a/campaigns"}, {"op_id": "cp", "path": "1/copies", "kind": "copy"})
    )
    c, cp = spec.compile(CompileContext(validate_only=True))
    assert c.params == {"execution_options": ["validate_only"]} and cp.params == {}


@pytest.mark.parametrize(
    ("method", "parts", "kind"),
    [
        ("POST", ["act_1/ads"], OpKind.CREATE_AD),
        ("POST", ["act_1/adcreatives"], OpKind.CREATE_CREATIVE),
        ("POST", ["act_1"], OpKind.UPDATE),
        ("POST", ["123"], OpKind.UPDATE),
        ("POST", [{"$ref": "c"}, "copies"], OpKind.COPY),
        ("GET", ["act_1/campaigns"], OpKind.READ),
    ],
)
def test_kinds_follow_from_method_and_path(method: str, parts: list[Any], kind: OpKind) -> None:
    assert infer_kind(method, parts) is kind


async def test_an_operations_job_run_twice_creates_nothing_twice(start_sim: Any) -> None:
    sim = await start_sim()
    spec = parse_job(
        {
            "job_id": "raw",
            "account_id": sim.act,
            "tasks": [
                {
                    "type": "operations",
                    "operations": [
                        {"op_id": "c", "path": "{account_id}/campaigns", "params": {
                            "name": "raw", "objective": "OUTCOME_TRAFFIC", "special_ad_categories": [],
                            "status": "PAUSED"}},
                        {"op_id": "rename", "path": {"$ref": "c"}, "params": {"name": "raw renamed"}},
                    ],
                }
            ],
        }
    )  # fmt: skip
    journal = MemoryJournal()
    reports = []
    for _ in range(2):
        engine = sim.engine()
        engine.journal = journal
        async with engine:
            reports.append(await run_job(engine, spec))
    first, second = reports
    assert first.ok and second.ok and first.counts["succeeded"] == 2
    assert second.to_result().from_journal == 2 and second.to_result().http_requests == 0
    (campaign,) = sim.nodes("campaign")
    assert campaign.data["name"] == "raw renamed"  # an update carries no key
