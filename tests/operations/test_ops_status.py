"""Status changes: the transition table (pure), ids / CSV / selector jobs, refused transitions, hierarchy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ops_support import ids_by_op, simple_tree, tree_job, write

from bulk_engine.operations import (
    CompileContext,
    Selector,
    StatusTask,
    check_transition,
    load_job,
    set_status,
)


@pytest.mark.parametrize(
    ("current", "effective", "target", "refused"),
    [
        (None, None, "PAUSED", None),
        ("ACTIVE", "ACTIVE", "PAUSED", None),
        ("PAUSED", "PAUSED", "ACTIVE", None),
        ("ACTIVE", "CAMPAIGN_PAUSED", "ARCHIVED", None),
        ("ACTIVE", None, "DELETED", None),
        ("PAUSED", None, "PAUSED", "already PAUSED"),
        ("ARCHIVED", None, "DELETED", None),
        ("ARCHIVED", None, "ACTIVE", "an ARCHIVED object can only become DELETED"),
        ("ARCHIVED", None, "PAUSED", "an ARCHIVED object can only become DELETED"),
        ("ARCHIVED", None, "ARCHIVED", "already ARCHIVED"),
        (
            "ACTIVE",
            "ARCHIVED",
            "PAUSED",
            "an ARCHIVED object can only become DELETED (archived with its parent)",
        ),
        ("ACTIVE", "ARCHIVED", "DELETED", None),
        ("DELETED", None, "ACTIVE", "DELETED is final"),
        ("DELETED", None, "ARCHIVED", "DELETED is final"),
        ("DELETED", None, "DELETED", "already DELETED"),
        (
            "PAUSED",
            "DELETED",
            "ACTIVE",
            "DELETED is final: a deleted object's status cannot change (deleted with its parent)",
        ),
        ("ACTIVE", None, "PENDING_REVIEW", "not a status that can be set"),
    ],
)
def test_transition_table(
    current: str | None, effective: str | None, target: str, refused: str | None
) -> None:
    reason = check_transition(current, target, effective=effective)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None and refused in reason


async def _campaigns(sim: Any, *names: str) -> dict[str, str]:
    report = await sim.run(tree_job([simple_tree(n, ads=1) for n in names]))
    assert report.ok
    ids = ids_by_op(report)
    return (
        {n: str(ids[f"t0/c{i}"]) for i, n in enumerate(names)}
        | {f"{n}/adset": str(ids[f"t0/c{i}/s0"]) for i, n in enumerate(names)}
        | {f"{n}/ad": str(ids[f"t0/c{i}/s0/a0"]) for i, n in enumerate(names)}
    )


async def test_ids_are_paused_and_archived_ones_refused_by_graph(start_sim: Any) -> None:
    sim = await start_sim()
    ids = await _campaigns(sim, "A", "B", "C")
    archive = await sim.run({"tasks": [{"type": "status", "status": "ARCHIVED", "ids": [ids["C"]]}]})
    assert archive.ok and sim.node(ids["C"]).status == "ARCHIVED"
    report = await sim.run(
        {"tasks": [{"type": "status", "status": "PAUSED", "ids": [ids["A"], ids["B"], ids["C"]]}]}
    )
    assert sim.node(ids["A"]).status == "PAUSED" and sim.node(ids["B"]).status == "PAUSED"
    refused = report.outcome(f"t0/2:{ids['C']}")
    assert refused.state.value == "failed"  # current status unknown: Graph answers the documented code
    assert refused.error is not None and (refused.error.code, refused.error.error_subcode) == (100, 1885088)


async def test_known_current_status_skips_refused_transitions_without_a_call(
    start_sim: Any, tmp_path: Path
) -> None:
    sim = await start_sim()
    ids = await _campaigns(sim, "A", "B", "C")
    await sim.run({"tasks": [{"type": "status", "status": "ARCHIVED", "ids": [ids["C"]]}]})
    write(
        tmp_path / "changes.csv",
        f"id,status,current_status\n{ids['A']},PAUSED,ACTIVE\n{ids['B']},PAUSED,PAUSED\n{ids['C']},ACTIVE,ARCHIVED\n"
        f"{ids['C']},DELETED,ARCHIVED\n",
    )
    job = write(
        tmp_path / "job.yaml",
        f"account_id: {sim.act}\ntasks:\n  - type: status\n    key: st\n    csv: changes.csv\n",
    )
    before = len(sim.server.core.calls)
    report = await sim.run(load_job(job))
    states = {o.op_id: (o.state.value, o.reason) for o in report.outcomes}
    assert states[f"st/L2:{ids['A']}"][0] == "succeeded"
    assert states[f"st/L3:{ids['B']}"] == ("skipped", "PAUSED → PAUSED: already PAUSED")
    assert states[f"st/L4:{ids['C']}"][0] == "skipped"
    assert "only become DELETED" in str(states[f"st/L4:{ids['C']}"][1])
    assert states[f"st/L5:{ids['C']}"][0] == "succeeded"
    assert len(sim.server.core.calls) - before == 2  # only the two allowed changes were sent
    assert sim.node(ids["C"]).status == "DELETED"


async def test_read_current_and_hierarchy(start_sim: Any) -> None:
    sim = await start_sim()
    ids = await _campaigns(sim, "A", "B")
    task = StatusTask(
        type="status",
        status="PAUSED",
        ids=[ids["A"], ids["A/adset"], ids["A/ad"], ids["B/ad"]],
        read_current=True,
    )
    async with sim.engine() as engine:
        report = await set_status(engine, task, account_id=sim.act)
    by_id = {o.op_id.rsplit("/", 1)[-1]: o for o in report.outcomes if o.kind == "update"}
    assert by_id[ids["A"]].state.value == "succeeded"
    assert by_id[ids["A/adset"]].state.value == "skipped" and "hierarchy" in (
        by_id[ids["A/adset"]].reason or ""
    )
    assert by_id[ids["A/ad"]].state.value == "skipped"
    assert by_id[ids["B/ad"]].state.value == "succeeded"
    assert sim.node(ids["A/adset"]).status == "ACTIVE"  # untouched: it inherits CAMPAIGN_PAUSED
    # the reads are reported too; probing an id's type (ad fields on a campaign…) is not a failure
    assert sum(1 for o in report.outcomes if o.kind == "read") >= 4
    assert report.counts["failed"] == 0
    # a second run knows everything is PAUSED already and sends nothing
    before = len(sim.server.core.calls)
    async with sim.engine() as engine:
        again = StatusTask(
            type="status", status="PAUSED", ids=[ids["A"]], read_current=True, level="campaign"
        )
        second = await set_status(engine, again, account_id=sim.act)
    assert [o.reason for o in second.outcomes if o.kind == "update"] == ["PAUSED → PAUSED: already PAUSED"]
    assert len(sim.server.core.calls) - before == 1  # the read only


async def test_selector_reads_then_updates_matching_objects(start_sim: Any) -> None:
    sim = await start_sim()
    ids = await _campaigns(sim, "Spring US", "Spring CA", "Summer US")
    selector = {"level": "campaign", "name_prefix": "Spring"}
    report = await sim.run({"tasks": [{"type": "status", "status": "ARCHIVED", "selector": selector}]})
    assert report.task("t0").details["selected"] == 2
    assert {sim.node(ids[n]).status for n in ("Spring US", "Spring CA")} == {"ARCHIVED"}
    assert sim.node(ids["Summer US"]).status == "ACTIVE"
    # archived campaigns are hidden from edges unless asked for; then only DELETED is allowed
    selector = {"level": "campaign", "name_regex": "US$", "include_archived": True}
    report = await sim.run({"tasks": [{"type": "status", "status": "PAUSED", "selector": selector}]})
    states = {o.op_id.rsplit("/", 1)[-1]: o for o in report.outcomes if o.kind == "update"}
    assert states[ids["Summer US"]].state.value == "succeeded"
    assert states[ids["Spring US"]].state.value == "skipped"
    report = await sim.run(
        {
            "tasks": [
                {"type": "status", "status": "DELETED", "selector": {**selector, "name_regex": "^Spring"}}
            ]
        }
    )
    assert report.counts["failed"] == 0
    assert {sim.node(ids[n]).status for n in ("Spring US", "Spring CA")} == {"DELETED"}


async def test_selector_at_ad_level_within_campaigns(start_sim: Any) -> None:
    sim = await start_sim()
    ids = await _campaigns(sim, "A", "B")
    task = StatusTask(type="status", status="PAUSED", selector=Selector(level="ad", campaign_ids=[ids["A"]]))
    async with sim.engine() as engine:
        report = await set_status(engine, task, account_id=sim.act)
    assert report.details["selected"] == 1
    assert sim.node(ids["A/ad"]).status == "PAUSED" and sim.node(ids["B/ad"]).status == "ACTIVE"


async def test_status_dry_run_sends_validate_only(start_sim: Any) -> None:
    sim = await start_sim()
    ids = await _campaigns(sim, "A")
    report = await sim.run(
        {"tasks": [{"type": "status", "status": "PAUSED", "ids": [ids["A"]]}]},
        CompileContext(validate_only=True),
    )
    assert report.ok and sim.node(ids["A"]).status == "ACTIVE"


async def test_archived_limit_is_respected(start_sim: Any) -> None:
    sim = await start_sim()
    ids = await _campaigns(sim, "A", "B", "C", "D")
    await sim.run({"tasks": [{"type": "status", "status": "ARCHIVED", "ids": [ids["A"]]}]})
    task = {
        "type": "status",
        "status": "ARCHIVED",
        "ids": [ids[n] for n in "BCD"],
        "level": "campaign",
        "archived_limit": 3,
    }
    report = await sim.run({"tasks": [task]})
    assert report.task("t0").details["archived_before"] == 1
    states = [o.state.value for o in report.outcomes if o.kind == "update"]
    assert states == ["succeeded", "succeeded", "skipped"]
    assert "1487990" in (report.outcomes[-1].reason or "")
    assert sim.node(ids["D"]).status == "ACTIVE"
