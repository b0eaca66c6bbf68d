"""The Journal contract, run against every backend (SQLite and in-memory), plus the plan codec."""

from __future__ import annotations

import dataclasses
import json

import pytest
from persist_support import JournalFactory

from bulk_engine import JournalError, Operation, OpKind, Ref
from bulk_engine.persistence import AsyncSetRecord, Journal, OpStatus, OutcomeWrite, PlanWrite
from bulk_engine.persistence.codec import REDACTED, decode_plan, encode_plan, plan_text, scrub


def _plan(op_id: str, backward: bool = True) -> PlanWrite:
    return PlanWrite(
        op_id, json.dumps({"op_id": op_id}), f"digest-{op_id}", "create_campaign", "act_1", backward
    )


def test_journal_implements_the_protocol(journals: JournalFactory) -> None:
    assert isinstance(journals.open(), Journal)


def test_open_job_creates_then_returns_the_same_job(journals: JournalFactory) -> None:
    journal = journals.open()
    assert journal.get_job("j1") is None
    job = journal.open_job("j1", "fp-1", {"keys": "name"})
    assert (job.job_id, job.fingerprint, dict(job.options), job.ordered) == (
        "j1",
        "fp-1",
        {"keys": "name"},
        True,
    )
    again = journals.reopen().open_job("j1", "fp-1", {"keys": "adlabels"})
    assert again.fingerprint == "fp-1" and dict(again.options) == {"keys": "name"}  # options kept
    assert journals.reopen().job_ids() == ["j1"]


def test_same_job_id_with_another_fingerprint_is_refused(journals: JournalFactory) -> None:
    journals.open().open_job("j1", "fp-1", {})
    with pytest.raises(JournalError, match=r"job 'j1' was started with a different job"):
        journals.reopen().open_job("j1", "fp-2", {})


def test_unknown_fingerprint_matches_and_is_then_recorded(journals: JournalFactory) -> None:
    journal = journals.open()
    journal.open_job("j1", None, {})
    assert journal.open_job("j1", "fp-1", {}).fingerprint == "fp-1"
    with pytest.raises(JournalError):
        journal.open_job("j1", "fp-2", {})
    assert journal.open_job("j1", None, {}).fingerprint == "fp-1"


def test_plans_keep_their_order_and_jobs_are_separate(journals: JournalFactory) -> None:
    journal = journals.open()
    journal.open_job("j1", None, {})
    journal.open_job("j2", None, {})
    journal.add_plans("j1", [_plan("b"), _plan("a")])
    journal.add_plans("j1", [_plan("c"), _plan("a")])  # an op planned twice keeps its first row
    journal.add_plans("j2", [_plan("z")])
    reopened = journals.reopen()
    ops = list(reopened.iter_ops("j1", page_size=2))
    assert [(o.op_id, o.seq, o.status) for o in ops] == [
        ("b", 1, OpStatus.PLANNED),
        ("a", 2, OpStatus.PLANNED),
        ("c", 3, OpStatus.PLANNED),
    ]
    assert [o.op_id for o in reopened.iter_ops("j2")] == ["z"]
    assert list(reopened.iter_ops("nope")) == []
    assert set(reopened.get_ops("j1", ["a", "c", "x"])) == {"a", "c"}


def test_ordered_flag_drops_when_a_plan_references_forward(journals: JournalFactory) -> None:
    journal = journals.open()
    journal.open_job("j1", None, {})
    journal.add_plans("j1", [_plan("a")])
    assert journal.get_job("j1").ordered  # type: ignore[union-attr]
    journal.add_plans("j1", [_plan("b", backward=False)])
    assert not journals.reopen().get_job("j1").ordered  # type: ignore[union-attr]


def test_intents_and_outcomes(journals: JournalFactory) -> None:
    journal = journals.open()
    journal.open_job("j1", None, {})
    journal.add_plans("j1", [_plan("a"), _plan("b"), _plan("c")])
    journal.mark_sent("j1", ["a", "b"])
    journal.mark_sent("j1", ["b"])
    ops = journals.reopen().get_ops("j1", ["a", "b", "c"])
    assert (ops["a"].status, ops["a"].unknown, ops["a"].attempts) == (OpStatus.SENT, True, 1)
    assert (ops["b"].status, ops["b"].attempts) == (OpStatus.SENT, 2)
    assert (ops["c"].status, ops["c"].unknown, ops["c"].attempts) == (OpStatus.PLANNED, False, 0)
    journal = journals.reopen()
    journal.record_outcomes(
        "j1",
        [
            OutcomeWrite("a", OpStatus.SUCCEEDED, 1, False, result='{"id":"5"}', graph_id="5"),
            OutcomeWrite("b", OpStatus.FAILED, 2, True, error='{"code":1}', reason="gave up"),
            OutcomeWrite("c", OpStatus.SKIPPED, 0, False, reason="dependency 'b' failed"),
        ],
    )
    ops = journals.reopen().get_ops("j1", ["a", "b", "c"])
    assert (ops["a"].status, ops["a"].unknown, ops["a"].graph_id, ops["a"].result) == (
        OpStatus.SUCCEEDED,
        False,
        "5",
        '{"id":"5"}',
    )
    assert (ops["b"].status, ops["b"].unknown, ops["b"].error, ops["b"].reason) == (
        OpStatus.FAILED,
        True,
        '{"code":1}',
        "gave up",
    )
    assert ops["c"].status is OpStatus.SKIPPED
    counts = journals.reopen().get_job("j1").counts  # type: ignore[union-attr]
    assert (counts["succeeded"], counts["failed"], counts["skipped"], counts["sent"]) == (1, 1, 1, 0)


def test_many_ops_in_one_call(journals: JournalFactory) -> None:
    journal = journals.open()
    journal.open_job("j1", None, {})
    ids = [f"op{i}" for i in range(2_345)]
    journal.add_plans("j1", [_plan(i) for i in ids])
    journal.mark_sent("j1", ids)
    journal.record_outcomes("j1", [OutcomeWrite(i, OpStatus.SUCCEEDED, 1, False) for i in ids[::2]])
    rows = journals.reopen().get_ops("j1", ids)
    assert len(rows) == len(ids)
    assert sum(r.status is OpStatus.SUCCEEDED for r in rows.values()) == (len(ids) + 1) // 2
    assert [o.op_id for o in journals.reopen().iter_ops("j1", page_size=1000)] == ids


# --- the plan codec ---------------------------------------------------------------------------------
def _rich_op() -> Operation:
    return Operation(
        op_id="ad",
        method="POST",
        path=("act_1", "ads"),
        account_id="act_1",
        kind=OpKind.CREATE_AD,
        campaign_key="camp",
        params={
            "name": "Ad",
            "adset_id": Ref("as"),
            "creative": {"creative_id": Ref("cr", "$.id")},
            "tracking": [{"$ref": "user data, not a Ref"}, ("tuple", 1, 2.5, True, None)],
            "ids": Ref("imgs", "$.images.*.hash"),
        },
    )


def test_plan_codec_round_trips_references_and_odd_values() -> None:
    op = _rich_op()
    back = decode_plan(json.loads(json.dumps(encode_plan(op))))
    assert back.op_id == op.op_id and back.kind is OpKind.CREATE_AD and back.campaign_key == "camp"
    assert back.path == ("act_1", "ads")
    assert back.params["adset_id"] == Ref("as")
    assert back.params["creative"] == {"creative_id": Ref("cr", "$.id")}
    assert back.params["ids"] == Ref("imgs", "$.images.*.hash")
    assert back.params["tracking"] == [{"$ref": "user data, not a Ref"}, ["tuple", 1, 2.5, True, None]]
    assert back.dependencies == op.dependencies
    path_ref = Operation(
        op_id="u", method="POST", path=(Ref("c"), "copies"), account_id="act_1", kind=OpKind.COPY
    )
    assert decode_plan(encode_plan(path_ref)).path == (Ref("c"), "copies")
    update = Operation(op_id="s", method="POST", path=Ref("c"), account_id="act_1", kind=OpKind.UPDATE)
    assert decode_plan(encode_plan(update)).path == Ref("c")


def test_plan_digest_is_stable_and_content_sensitive() -> None:
    text, digest = plan_text(_rich_op())
    assert plan_text(_rich_op()) == (text, digest)
    changed = Operation(
        op_id="ad", method="POST", path=("act_1", "ads"), account_id="act_1", kind=OpKind.CREATE_AD, params={}
    )
    assert plan_text(changed)[1] != digest


def test_scrub_removes_secrets_in_every_spelling() -> None:
    secret = "EAAB/se+cret=="
    text = f'{{"next":"https://x/?access_token=EAAB%2Fse%2Bcret%3D%3D&a=1","raw":"{secret}"}}'
    cleaned = scrub(text, [secret])
    assert secret not in cleaned and "EAAB%2Fse%2Bcret" not in cleaned
    assert cleaned.count(REDACTED) == 2


def test_may_exist_plans_and_clearing_the_flag(journals: JournalFactory) -> None:
    journal = journals.open()
    journal.open_job("j1", None, {"rebuild": "auto"})
    journal.add_plans(
        "j1", [_plan("a"), PlanWrite("b", "{}", "d-b", "create_ad", "act_1", True, unknown=True)]
    )
    ops = journals.reopen().get_ops("j1", ["a", "b"])
    assert (ops["a"].unknown, ops["b"].unknown) == (False, True)
    journal = journals.reopen()
    journal.mark_unknown("j1", ["b"], False)
    journal.mark_unknown("j1", ["a", "missing"], True)
    ops = journals.reopen().get_ops("j1", ["a", "b"])
    assert (ops["a"].unknown, ops["b"].unknown) == (True, False)
    assert ops["b"].status is OpStatus.PLANNED


def test_async_sets_are_kept_until_done_in_submission_order(journals: JournalFactory) -> None:
    """The async backend journals a set by its unique name before the POST ("submitting", no id), then its
    id before polling it (issue 18): a later run reads either back, keyed by the name."""
    journal = journals.open()
    journal.open_job("j1", None, {})
    submitting = AsyncSetRecord("j1", "set a", "act_1", (("c1", "c1"), ("op1", "a b")), 1.5)
    second = AsyncSetRecord("j1", "set b", "act_1", (("x", "x"),), 2.5, set_id="800")
    journal.save_async_set(submitting)
    journal.save_async_set(second)
    journal.save_async_set(AsyncSetRecord("j2", "set a", "act_2", (("y", "y"),), 3.0, set_id="700"))
    assert journals.reopen().load_async_sets("j1") == [submitting, second]
    first = dataclasses.replace(submitting, set_id="900", submitted_at=1.75)  # the POST's answer: its id
    journal = journals.reopen()
    journal.save_async_set(first)  # saved again: still one row, still first, now with its id
    journal = journals.reopen()
    assert journal.load_async_sets("j1") == [first, second]
    journal.save_async_set(dataclasses.replace(first, done=True))
    assert journals.reopen().load_async_sets("j1") == [second]
    assert journals.reopen().load_async_sets("j2")[0].set_id == "700"
    assert journals.reopen().load_async_sets("nope") == []
