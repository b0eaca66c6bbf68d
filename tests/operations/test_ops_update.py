"""The update task: values (pure), CSV / ids / selector jobs against the simulator, local rules, resume, diff."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from ops_support import adset, campaign, changes, ids_by_op, simple_tree, snapshot, tree_job, write

from bulk_engine.config import RetryConfig
from bulk_engine.engine import BulkEngine
from bulk_engine.operations import CompileContext, JobFileError, load_job, parse_job, run_job
from bulk_engine.operations.relative_values import Clamp, ValueSpec, parse_value
from bulk_engine.operations.undo import undo_document, undo_from_journal, write_undo_job
from bulk_engine.persistence import SqliteJournal
from bulk_engine.persistence.keys import key_in_name, strip_key
from bulk_engine.results import JobResult
from bulk_engine.simulator import FaultConfig


# --- values (pure) --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "current", "clamp", "expected"),
    [
        (1500, "1000", None, 1500),
        ("1500", "1000", None, 1500),
        ("+10%", "1000", None, 1100),
        ("+10%", "1005", None, 1106),  # 1105.5 rounds half up
        ("-12.5%", "1000", None, 875),
        ("+200", "1000", None, 1200),
        ("-50", "1000", None, 950),
        ("+10%", "1000", Clamp(max=1050), 1050),
        ("-90%", "1000", Clamp(min=500), 500),
        (99, "1000", Clamp(min=100), 100),
    ],
)
def test_values_absolute_and_relative(raw: Any, current: str, clamp: Clamp | None, expected: int) -> None:
    spec = parse_value(raw, numeric=True)
    assert isinstance(spec, ValueSpec)
    assert spec.target(current, clamp) == expected


@pytest.mark.parametrize(
    ("raw", "numeric", "problem"),
    [
        ("ten", True, "whole amount"),
        (12.5, True, "whole amount"),
        (-5, True, "negative"),
        ("-150%", True, "negative"),
        (True, True, "true/false"),
        ("+10%", False, "numeric field"),
    ],
)
def test_bad_values_are_named(raw: Any, numeric: bool, problem: str) -> None:
    found = parse_value(raw, numeric=numeric)
    assert isinstance(found, str) and problem in found


def test_a_relative_value_needs_a_current_amount() -> None:
    spec = parse_value("+10%", numeric=True)
    assert isinstance(spec, ValueSpec) and spec.amount == Decimal(10)
    with pytest.raises(ValueError, match="no current numeric value"):
        spec.target(None)


# --- fixtures -------------------------------------------------------------------------------------------
async def _tree(sim: Any) -> dict[str, str]:
    """Two ad-set-budget campaigns (A, B: 2 ad sets of 1000 each, 1 ad each) and a campaign-budget one (C)."""
    cbo = campaign(
        "C",
        status="ACTIVE",
        daily_budget=5000,
        ad_sets=[adset("C set 0", daily_budget=None, ads=[{"name": "C ad", "creative": "c"}])],
    )
    report = await sim.run(
        tree_job([simple_tree("A", ads=1, adsets=2), simple_tree("B", ads=1, adsets=2), cbo])
    )
    assert report.ok, [o.reason for o in report.outcomes if o.reason]
    ids = ids_by_op(report)
    out = {"A": ids["t0/c0"], "B": ids["t0/c1"], "C": ids["t0/c2"], "C/s0": ids["t0/c2/s0"]}
    for c, name in enumerate("AB"):
        for s in range(2):
            out[f"{name}/s{s}"] = ids[f"t0/c{c}/s{s}"]
            out[f"{name}/s{s}/ad"] = ids[f"t0/c{c}/s{s}/a0"]
    out["creative"] = ids["t0/cr:c"]
    return {k: str(v) for k, v in out.items()}


# --- runs against the simulator -------------------------------------------------------------------------
async def test_csv_with_absolute_and_relative_values_checked_field_by_field(
    start_sim: Any, tmp_path: Path
) -> None:
    sim = await start_sim()
    ids = await _tree(sim)
    write(
        tmp_path / "budgets.csv",
        "id,daily_budget,name\n"
        f"{ids['A/s0']},+10%,A0 raised\n"
        f"{ids['A/s1']},2500,\n"
        f"{ids['B/s0']},-50,\n"
        f"{ids['B/s1']},+50%,\n",
    )
    job = {
        "tasks": [
            {
                "type": "update",
                "level": "adset",
                "csv": "budgets.csv",
                "clamp": {"daily_budget": {"max": 1400}},
            }
        ]
    }
    before = snapshot(sim)
    old_name = before[ids["A/s0"]]["name"]  # the create's idempotency key is kept in the new name
    report = await sim.run(job, base_dir=tmp_path)
    assert report.counts == {"succeeded": 4 + 4, "failed": 0, "skipped": 0}  # 4 reads, 4 writes
    assert changes(before, sim) == {  # the whole store, field by field: these and nothing else
        ids["A/s0"]: {
            "daily_budget": ("1000", "1100"),
            "name": (old_name, f"A0 raised [{key_in_name(old_name)}]"),
        },
        ids["A/s1"]: {"daily_budget": ("1000", "1400")},  # 2500 clamped to max
        ids["B/s0"]: {"daily_budget": ("1000", "950")},
        ids["B/s1"]: {"daily_budget": ("1000", "1400")},  # 1500 clamped
    }
    task = report.tasks[0]
    assert task.details["diff_counts"] == {"changed": 4, "unchanged": 0, "skipped": 0, "failed": 0}
    first = task.details["diff"][0]
    assert first["id"] == ids["A/s0"] and first["state"] == "changed"
    assert first["fields"]["daily_budget"] == {"old": 1000, "new": 1100}
    assert first["fields"]["name"]["new"] == "A0 raised"


async def test_no_op_changes_are_skipped_without_a_call_and_counted(start_sim: Any) -> None:
    sim = await start_sim()
    ids = await _tree(sim)
    job = {
        "tasks": [
            {
                "type": "update",
                "level": "adset",
                "ids": [ids["A/s0"], ids["A/s1"]],
                "set": {"daily_budget": 1000},  # A/s0 and A/s1 already have it
            }
        ]
    }
    report = await sim.run(job)
    result = report.to_result()
    writes = [o for o in report.outcomes if o.kind == "update"]
    assert [o.state.value for o in writes] == ["skipped", "skipped"]
    assert all(o.reason and o.reason.startswith("unchanged: daily_budget already 1000") for o in writes)
    assert report.tasks[0].details["diff_counts"]["unchanged"] == 2
    assert result.graph_calls == 2  # the two reads, no write


async def test_state_rules_are_refused_before_the_write_with_their_graph_code(start_sim: Any) -> None:
    sim = await start_sim()
    ids = await _tree(sim)
    archived = await sim.run({"tasks": [{"type": "status", "status": "ARCHIVED", "ids": [ids["B"]]}]})
    assert archived.ok
    adsets = [ids["A/s0"], ids["B/s0"], ids["C/s0"]]
    report = await sim.run(
        {"tasks": [{"type": "update", "level": "adset", "ids": adsets, "set": {"daily_budget": "+10%"}}]}
    )
    writes = {o.op_id.split("/")[-1]: o for o in report.outcomes if o.kind == "update"}
    assert writes[ids["A/s0"]].state.value == "succeeded"
    assert "rule update.archived, Graph code 100/1885088" in str(writes[ids["B/s0"]].reason)
    # C/s0 has no daily budget of its own (its campaign has one): +10% has nothing to start from
    assert "rule update.relative" not in str(writes[ids["C/s0"]].reason)  # the message names the field
    assert "no current numeric value" in str(writes[ids["C/s0"]].reason)
    report = await sim.run(
        {"tasks": [{"type": "update", "level": "adset", "ids": [ids["C/s0"]], "set": {"daily_budget": 2000}}]}
    )
    (write_c,) = [o for o in report.outcomes if o.kind == "update"]
    assert "rule budget.campaign_vs_adset, Graph code 100/1885621" in str(write_c.reason)
    report = await sim.run(
        {"tasks": [{"type": "update", "level": "campaign", "ids": [ids["A"]], "set": {"daily_budget": 9000}}]}
    )
    (write_a,) = [o for o in report.outcomes if o.kind == "update"]
    assert "budget.campaign_vs_adset" in str(write_a.reason)
    report = await sim.run(
        {
            "tasks": [
                {"type": "update", "level": "adset", "ids": [ids["A/s1"]], "set": {"daily_budget": "-95%"}}
            ]
        }
    )
    (low,) = [o for o in report.outcomes if o.kind == "update"]
    assert "rule budget.too_low.update, Graph code 100/1885650" in str(low.reason)
    assert (
        sim.node(ids["A/s1"]).data["daily_budget"] == "1000"
        and sim.node(ids["C/s0"]).data.get("daily_budget") is None
    )
    # an ARCHIVED object still takes a new name
    renamed = await sim.run(
        {"tasks": [{"type": "update", "level": "campaign", "ids": [ids["B"]], "set": {"name": "B (old)"}}]}
    )
    assert renamed.ok and strip_key(sim.node(ids["B"]).data["name"]) == "B (old)"


async def test_an_ads_creative_is_swapped_by_id(start_sim: Any) -> None:
    sim = await start_sim()
    ids = await _tree(sim)
    made = await sim.run(
        {
            "tasks": [
                {
                    "type": "create",
                    "creatives": {
                        "new": {
                            "name": "New",
                            "object_story_spec": {
                                "page_id": sim.pages[0],
                                "link_data": {"link": "https://example.com/n", "message": "n"},
                            },
                        }
                    },
                }
            ]
        }
    )
    new_creative = str(ids_by_op(made)["t0/cr:new"])
    ads = [ids["A/s0/ad"], ids["A/s1/ad"]]
    report = await sim.run(
        {"tasks": [{"type": "update", "level": "ad", "ids": ads, "set": {"creative": new_creative}}]}
    )
    assert report.ok
    assert all(sim.node(a).data["creative"] == {"id": new_creative} for a in ads)
    diff = report.tasks[0].details["diff"][0]["fields"]["creative"]
    assert diff == {"old": ids["creative"], "new": new_creative}
    assert sim.node(ids["creative"]).data.get("name")  # the old creative is untouched


def _job_file(tmp_path: Path, task: str) -> Path:
    return write(tmp_path / "job.yaml", f"account_id: act_1000000001\ntasks:\n  - type: update\n{task}")


@pytest.mark.parametrize(
    ("task", "where", "rule"),
    [
        (
            "    level: adset\n    ids: ['1']\n    set:\n      daily_budget: 50\n",
            "job.yaml:7:",
            "budget.too_low.update",
        ),
        (
            "    level: ad\n    ids: ['1']\n    set:\n      object_story_spec: {page_id: '1'}\n",
            "job.yaml:7:",
            "update.creative",
        ),
        (
            "    level: ad\n    ids: ['1']\n    set:\n      creative: {object_story_spec: {}}\n",
            "job.yaml:7:",
            "update.creative",
        ),
        (
            "    level: campaign\n    ids: ['1']\n    set:\n      bid_amount: 10\n",
            "job.yaml:7:",
            "update.field",
        ),
        ("    level: adset\n    ids: ['1']\n    set:\n      name: '+10%'\n", "job.yaml:7:", "update.value"),
        ("    ids: ['1']\n    set:\n      name: x\n", "job.yaml:3", "update.level"),
        ("    level: adset\n    csv: rows.csv\n", "rows.csv:3:", "budget.too_low.update"),
        ("    level: adset\n    csv: cols.csv\n", "cols.csv:1:", "update.field"),
    ],
)
def test_local_rules_are_refused_before_any_call(tmp_path: Path, task: str, where: str, rule: str) -> None:
    write(tmp_path / "rows.csv", "id,daily_budget\n1,+10%\n2,99\n")
    write(tmp_path / "cols.csv", "id,objective\n1,x\n")
    with pytest.raises(JobFileError) as info:
        load_job(_job_file(tmp_path, task))
    (problem,) = info.value.issues
    assert problem.rule == rule
    assert str(problem).startswith(str(tmp_path / where)), str(problem)


def test_the_cli_exits_2_naming_file_line_field_value_and_rule(tmp_path: Path, capsys: Any) -> None:
    from bulk_engine.cli import main

    job = _job_file(tmp_path, "    level: adset\n    ids: ['1']\n    set:\n      daily_budget: 50\n")
    assert main(["validate", str(job)]) == 2
    err = capsys.readouterr().err
    assert f"{job}:7:" in err and "tasks[0].set.daily_budget = 50" in err
    assert "(rule budget.too_low.update) [Graph code 100/1885650]" in err
    # run refuses it the same way before anything is sent (no token needed, nothing listens on port 9)
    assert main(["run", str(job), "--graph-url", "http://127.0.0.1:9"]) == 2
    assert "(rule budget.too_low.update)" in capsys.readouterr().err


async def test_selector_updates_matching_ad_sets(start_sim: Any) -> None:
    sim = await start_sim()
    ids = await _tree(sim)
    report = await sim.run(
        {
            "tasks": [
                {
                    "type": "update",
                    "selector": {"level": "adset", "name_prefix": "A set"},
                    "set": {"daily_budget": "+20%"},
                }
            ]
        }
    )
    assert report.counts["failed"] == 0 and report.counts["skipped"] == 0
    assert [sim.node(ids[k]).data["daily_budget"] for k in ("A/s0", "A/s1", "B/s0")] == [
        "1200",
        "1200",
        "1000",
    ]


async def test_dry_run_reports_the_diff_and_changes_nothing(start_sim: Any) -> None:
    sim = await start_sim()
    ids = await _tree(sim)
    job = {
        "tasks": [
            {
                "type": "update",
                "level": "adset",
                "ids": [ids["A/s0"], ids["B/s0"]],
                "set": {"daily_budget": "+10%", "name": "A set 0"},
            }
        ]
    }
    report = await sim.run(job, CompileContext(validate_only=True))
    assert report.counts["failed"] == 0
    assert [sim.node(ids[k]).data["daily_budget"] for k in ("A/s0", "B/s0")] == ["1000", "1000"]
    diff = {e["id"]: e for e in report.tasks[0].details["diff"]}
    assert diff[ids["A/s0"]]["fields"] == {"daily_budget": {"old": 1000, "new": 1100}}
    assert diff[ids["A/s0"]]["unchanged"] == ["name"]
    assert diff[ids["B/s0"]]["fields"]["name"] == {
        "old": "B set 0",  # shown as written: without the create's idempotency key
        "new": "A set 0",
    }


class _KilledAfter:
    """An engine that dies (like a killed process) after ``jobs`` engine jobs, mid-way through the next one."""

    class Killed(Exception):
        pass

    def __init__(self, engine: BulkEngine, jobs: int) -> None:
        self.engine, self.left = engine, jobs

    async def run(self, job: Any, *, job_id: str | None = None, fingerprint: str | None = None) -> JobResult:
        if self.left == 0:
            ops = list(job)
            await self.engine.run(ops[: len(ops) // 2], job_id=job_id, fingerprint=fingerprint)
            raise self.Killed
        self.left -= 1
        return await self.engine.run(job, job_id=job_id, fingerprint=fingerprint)


@pytest.mark.parametrize("killed_after", [1, 2, 3])
async def test_kill_and_resume_applies_a_relative_change_once(
    start_sim: Any, tmp_path: Path, killed_after: int
) -> None:
    """Rounds of 2: read, write, read, write. Killed during engine job ``killed_after`` (a write or a read), the
    job run again on its journal reads from the journal and sends the same absolute targets: +10% once."""
    sim = await start_sim()
    ids = await _tree(sim)
    adsets = [ids[k] for k in ("A/s0", "A/s1", "B/s0", "B/s1")]
    spec = parse_job(
        {
            "job_id": "raise",
            "account_id": sim.act,
            "tasks": [
                {
                    "type": "update",
                    "level": "adset",
                    "ids": adsets,
                    "set": {"daily_budget": "+10%"},
                    "batch_size": 2,
                }
            ],
        }
    )
    with SqliteJournal(tmp_path / "jobs.sqlite") as journal:
        engine = sim.engine()
        engine.journal = journal
        async with engine:
            with pytest.raises(_KilledAfter.Killed):
                await run_job(_KilledAfter(engine, killed_after), spec)
        engine = sim.engine()
        engine.journal = journal
        async with engine:
            report = await run_job(engine, spec)
    assert report.counts["failed"] == 0 and report.counts["skipped"] == 0
    assert [sim.node(i).data["daily_budget"] for i in adsets] == ["1100"] * 4


# --- undo ---------------------------------------------------------------------------------------------
async def _undo(sim: Any, report: Any, folder: Path) -> Any:
    """Build the inverse job of ``report`` (through its undo document) and run it."""
    job_file, _ = write_undo_job(undo_document(report.to_dict()), folder)
    return await sim.run(load_job(job_file))


async def test_undo_restores_the_exact_store_and_skips_an_object_changed_since(
    start_sim: Any, tmp_path: Path
) -> None:
    sim = await start_sim()
    ids = await _tree(sim)
    before = snapshot(sim)
    adsets = [ids[k] for k in ("A/s0", "A/s1", "B/s0")]
    report = await sim.run(
        {
            "job_id": "raise",
            "tasks": [
                {
                    "type": "update",
                    "level": "adset",
                    "ids": adsets,
                    "set": {"daily_budget": "+10%", "name": "Raised"},
                },
                {"type": "update", "level": "campaign", "ids": [ids["C"]], "set": {"daily_budget": 7000}},
                {
                    "type": "update",
                    "level": "adset",
                    "ids": [ids["B/s1"]],
                    "set": {"targeting": {"geo_locations": {"countries": ["CA", "MX"]}}},
                },
                {"type": "status", "status": "PAUSED", "selector": {"level": "campaign", "name_prefix": "B"}},
            ],
        }
    )
    assert report.ok
    assert len(changes(before, sim)) == 6
    # someone else edits A/s1 in between
    other = await sim.run(
        {"tasks": [{"type": "update", "level": "adset", "ids": [ids["A/s1"]], "set": {"daily_budget": 1777}}]}
    )
    assert other.ok
    undo = await _undo(sim, report, tmp_path / "undo")
    skipped = [o for o in undo.outcomes if o.state.value == "skipped"]
    assert [o.op_id.split(":")[-1] for o in skipped] == [ids["A/s1"]]
    assert "changed since: daily_budget is 1777, not 1100" in str(skipped[0].reason)
    assert undo.counts["failed"] == 0
    # the exact previous store, but for the object edited in between (its name is not restored either:
    # an object changed since is left alone as a whole)
    assert changes(before, sim) == {
        ids["A/s1"]: {
            "daily_budget": ("1000", "1777"),
            "name": (before[ids["A/s1"]]["name"], f"Raised [{key_in_name(before[ids['A/s1']]['name'])}]"),
        }
    }
    assert undo.job_id == "undo-raise"


async def test_undo_from_the_journal_matches_the_report(start_sim: Any, tmp_path: Path) -> None:
    sim = await start_sim()
    ids = await _tree(sim)
    spec = parse_job(
        {
            "job_id": "rename",
            "account_id": sim.act,
            "tasks": [
                {
                    "type": "update",
                    "level": "ad",
                    "ids": [ids["A/s0/ad"], ids["B/s0/ad"]],
                    "set": {"name": "N"},
                },
                {"type": "update", "level": "adset", "ids": [ids["B/s1"]], "set": {"daily_budget": "-10%"}},
                {
                    "type": "status",
                    "status": "PAUSED",
                    "selector": {"level": "adset", "name_prefix": "A set"},
                },
            ],
        }
    )
    with SqliteJournal(tmp_path / "jobs.sqlite") as journal:
        engine = sim.engine()
        engine.journal = journal
        async with engine:
            report = await run_job(engine, spec)
        from_journal = undo_from_journal(journal, "rename")
    from_report = undo_document(report.to_dict())
    assert [(t["key"], t["objects"]) for t in from_journal["tasks"]] == [
        (t["key"], t["objects"]) for t in from_report["tasks"]
    ]
    assert from_report["tasks"][0]["objects"][0]["level"] == "ad"
    assert sorted(from_journal["tasks"][2]["objects"], key=lambda o: o["id"]) == [
        {"id": ids[k], "level": "adset", "before": {"status": "ACTIVE"}, "after": {"status": "PAUSED"}}
        for k in sorted(("A/s0", "A/s1"), key=lambda k: ids[k])
    ]
    assert from_journal["tasks"][1]["objects"] == [
        {
            "id": ids["B/s1"],
            "level": "adset",
            "before": {"daily_budget": 1000},
            "after": {"daily_budget": 900},
        }
    ]


async def test_every_csv_row_ends_in_a_terminal_state(start_sim: Any, tmp_path: Path) -> None:
    """A row with nothing to set is skipped with its line, also when it comes after the last round."""
    sim = await start_sim()
    ids = await _tree(sim)
    write(tmp_path / "rows.csv", f"id,daily_budget\n{ids['A/s0']},1200\n{ids['A/s1']},\n")
    report = await sim.run(
        {"tasks": [{"type": "update", "level": "adset", "csv": "rows.csv", "batch_size": 1}]},
        base_dir=tmp_path,
    )
    writes = {o.op_id: o for o in report.outcomes if o.kind == "update"}
    assert writes[f"t0/L2:{ids['A/s0']}"].state.value == "succeeded"
    assert writes[f"t0/L3:{ids['A/s1']}"].reason == "CSV line 3: no value to set (every cell is empty)"


async def test_a_killed_undo_resumes_without_skipping_what_it_already_restored(
    start_sim: Any, tmp_path: Path
) -> None:
    """The undo is journaled like any update: resumed, its reads come from the journal, so the objects it
    restored before the kill are not mistaken for objects changed by someone else."""
    sim = await start_sim()
    ids = await _tree(sim)
    adsets = [ids[k] for k in ("A/s0", "A/s1", "B/s0", "B/s1")]
    report = await sim.run(
        {"tasks": [{"type": "update", "level": "adset", "ids": adsets, "set": {"daily_budget": "+10%"}}]}
    )
    job_file, _ = write_undo_job(undo_document(report.to_dict()), tmp_path / "undo")
    spec = load_job(job_file)
    with SqliteJournal(tmp_path / "jobs.sqlite") as journal:
        engine = sim.engine()
        engine.journal = journal
        async with engine:
            with pytest.raises(_KilledAfter.Killed):
                await run_job(_KilledAfter(engine, 1), spec)  # killed half-way through the writes
        assert sorted(sim.node(i).data["daily_budget"] for i in adsets) == ["1000"] * 2 + ["1100"] * 2
        engine = sim.engine()
        engine.journal = journal
        async with engine:
            resumed = await run_job(engine, spec)
    assert resumed.counts["skipped"] == 0 and resumed.counts["failed"] == 0
    assert [sim.node(i).data["daily_budget"] for i in adsets] == ["1000"] * 4


def test_what_cannot_be_undone_is_listed(tmp_path: Path) -> None:
    changed = {"op_id": "t0/1", "id": "1", "level": "adset", "state": "changed"}
    report = {
        "job_id": "j",
        "tasks": [
            {"key": "c", "type": "migrate", "details": {}},  # taken back by its own rollback mode
            {"key": "s", "type": "status", "details": {}},  # plain ids: no prior status read
            {"key": "d", "type": "update", "details": {"dry_run": True, "diff": [changed]}},
            {
                "key": "u",
                "type": "update",
                "details": {
                    "account_id": "act_1",
                    "diff": [
                        {**changed, "fields": {"bid_amount": {"old": None, "new": 300}}},
                        {
                            **changed,
                            "id": "2",
                            "state": "failed",
                            "fields": {"name": {"old": "a", "new": "b"}},
                        },
                    ],
                },
            },
        ],
    }
    doc = undo_document(report)
    assert [n["task"] for n in doc["not_undoable"]] == ["c", "s", "d"]
    assert "rollback" in doc["not_undoable"][0]["reason"]
    assert [o["id"] for o in doc["tasks"][0]["objects"]] == ["1"]  # the failed write is not undone
    job_file, notes = write_undo_job(doc, tmp_path)
    assert notes[-1] == {
        "task": "u",
        "id": "1",
        "field": "bid_amount",
        "reason": "it had no value before the job",
    }
    assert json.loads(job_file.read_text())["tasks"] == []  # nothing left to restore


async def test_relative_changes_under_lost_answers_are_applied_once(start_sim: Any) -> None:
    """Null batch entries (before or after the op ran), connections dropped after commit, transient errors:
    an update whose answer was lost is sent again with the same absolute value, never recomputed."""
    faults = FaultConfig(null_rate=0.15, drop_after_commit_rate=0.05, transient_rate=0.1)
    sim = await start_sim(
        seed_campaigns=200, faults=faults, seed=11, quota_override=100_000, ad_account_ids=["act_1000000001"]
    )
    campaigns = sorted(sim.nodes("campaign"), key=lambda n: int(n.id))
    for n in campaigns:  # arrange: every campaign has a spend cap to raise
        n.data["spend_cap"] = "20000"
    spec = parse_job(
        {
            "account_id": sim.act,
            "tasks": [
                {
                    "type": "update",
                    "level": "campaign",
                    "ids": [n.id for n in campaigns],
                    "set": {"spend_cap": "+10%"},
                    "batch_size": 100,
                }
            ],
        }
    )
    async with sim.engine(retry=RetryConfig(max_attempts=12, base_delay_s=0.0)) as engine:
        report = await run_job(engine, spec)
    result = report.to_result()
    assert report.counts == {"succeeded": 400, "failed": 0, "skipped": 0}  # 200 reads, 200 writes
    assert result.unknown_outcomes > 0 and result.retries > 0  # the faults did happen
    assert {n.data["spend_cap"] for n in campaigns} == {"22000"}


def test_the_reports_show_the_diff_escaped() -> None:
    from bulk_engine.reporting import render_csv, render_html

    entry = {"op_id": "t0/3", "id": "3", "level": "adset", "state": "skipped", "reason": "ARCHIVED <b>"}
    report = {
        "job_id": "j",
        "counts": {"succeeded": 1, "failed": 0, "skipped": 1},
        "tasks": [
            {
                "key": "t0",
                "type": "update",
                "details": {
                    "diff_counts": {"changed": 1, "unchanged": 0, "skipped": 1, "failed": 0},
                    "diff": [
                        {
                            "op_id": "t0/1",
                            "id": "1",
                            "level": "adset",
                            "state": "changed",
                            "fields": {
                                "name": {"old": "<x>", "new": "y"},
                                "daily_budget": {"old": 1, "new": 2},
                            },
                        },
                        {**entry, "fields": {"daily_budget": {"old": 1000, "new": 1100}}},
                    ],
                },
            }
        ],
        "operations": [{"op_id": "t0/1", "kind": "update", "state": "succeeded"}],
    }
    page = render_html(report)
    assert "<b>changed</b> — 1 object</td>" in page and "ARCHIVED &lt;b&gt;" in page
    assert "daily_budget: 1 → 2; name: &quot;&lt;x&gt;&quot; → &quot;y&quot;" in page
    assert 'daily_budget: 1 → 2; name: ""<x>"" → ""y""' in render_csv(report)  # CSV-quoted


# --- review fixes ---------------------------------------------------------------------------------------
async def test_undo_from_the_journal_leaves_a_migrations_paused_sources_alone(
    start_sim: Any, tmp_path: Path
) -> None:
    """The migrate task pauses each source its verified copy replaces (kind ``update``): taking that back is
    the migration's own ``mode: rollback``, never an undo, which would re-activate the source next to its
    Advantage+ copy. Only the update and status tasks' writes are undone from the journal."""
    from test_ops_migrate import make_asc

    sim = await start_sim()
    source = await make_asc(sim, "asc")
    ids = await _tree(sim)
    spec = parse_job(
        {
            "job_id": "move",
            "account_id": sim.act,
            "tasks": [
                {"type": "migrate", "key": "m", "campaign_ids": [source]},
                {"type": "update", "key": "u", "level": "adset", "ids": [ids["A/s0"]], "set": {"name": "N"}},
            ],
        }
    )
    with SqliteJournal(tmp_path / "jobs.sqlite") as journal:
        engine = sim.engine()
        engine.journal = journal
        async with engine:
            report = await run_job(engine, spec)
        doc = undo_from_journal(journal, "move")
    assert report.counts["failed"] == 0, [o.reason for o in report.outcomes if o.reason]
    assert sim.node(source).data["status"] == "PAUSED"  # the switch-over paused the source
    assert [(t["key"], [o["id"] for o in t["objects"]]) for t in doc["tasks"]] == [("u", [ids["A/s0"]])]
    assert any(n["task"] == "m" and "rollback" in n["reason"] for n in doc["not_undoable"])
    job_file, _ = write_undo_job(doc, tmp_path / "undo")
    undo = await sim.run(load_job(job_file))
    assert undo.counts["failed"] == 0
    assert sim.node(source).data["status"] == "PAUSED"  # still paused: never re-activated by an undo


@pytest.mark.parametrize("read", ["1e30", "1" * 40, "1000.5", "-5"])
def test_a_read_amount_that_is_no_whole_amount_is_refused_not_raised(read: str) -> None:
    spec = parse_value("+10%", numeric=True)
    assert isinstance(spec, ValueSpec)
    with pytest.raises(ValueError, match="not a whole amount"):
        spec.target(read)


def test_a_relative_change_too_large_to_compute_is_refused_not_raised() -> None:
    spec = parse_value(f"+{10**15}%", numeric=True)
    assert isinstance(spec, ValueSpec)
    with pytest.raises(ValueError, match="larger than"):
        spec.target(str(10**15))


async def test_hostile_amounts_read_back_skip_their_object_and_the_task_goes_on(start_sim: Any) -> None:
    """An answer like ``daily_budget: "1e30"`` (or 40 digits) once aborted the task with
    ``decimal.InvalidOperation`` after earlier rounds were written; now that object is skipped with the
    reason and every other object is updated."""
    sim = await start_sim()
    ids = await _tree(sim)
    adsets = [ids[k] for k in ("A/s0", "A/s1", "B/s0", "B/s1")]
    sim.node(ids["A/s1"]).data["daily_budget"] = "1e30"
    sim.node(ids["B/s1"]).data["daily_budget"] = "1" * 40
    report = await sim.run(
        {
            "tasks": [
                {
                    "type": "update",
                    "level": "adset",
                    "ids": adsets,
                    "set": {"daily_budget": "+10%"},
                    "batch_size": 1,
                }
            ]
        }
    )
    skipped = {o.op_id.rsplit("/", 1)[-1]: o.reason for o in report.outcomes if o.state.value == "skipped"}
    assert set(skipped) == {ids["A/s1"], ids["B/s1"]}
    assert all("not a whole amount" in str(reason) for reason in skipped.values())
    assert report.counts["failed"] == 0
    assert [sim.node(i).data["daily_budget"] for i in adsets] == ["1100", "1e30", "1100", "1" * 40]
    assert report.tasks[0].details["diff_counts"] == {"changed": 2, "unchanged": 0, "skipped": 2, "failed": 0}


class _RepeatedObjects:
    """An engine whose edge pages list every object twice (Graph paging can repeat an object)."""

    def __init__(self, engine: BulkEngine) -> None:
        self.engine = engine

    async def run(self, job: Any, *, job_id: str | None = None, fingerprint: str | None = None) -> JobResult:
        result = await self.engine.run(job, job_id=job_id, fingerprint=fingerprint)
        outcomes = []
        for outcome in result.outcomes:
            body = outcome.result
            if outcome.kind == "read" and isinstance(body, dict) and body.get("data"):
                body = {**body, "data": [*body["data"], *(dict(item) for item in body["data"])]}
                outcome = dataclasses.replace(outcome, result=body)
            outcomes.append(outcome)
        return dataclasses.replace(result, outcomes=tuple(outcomes))


@pytest.mark.parametrize(
    "task",
    [
        {
            "type": "update",
            "selector": {"level": "adset", "name_prefix": "A set"},
            "set": {"daily_budget": "+20%"},
        },
        {"type": "status", "status": "PAUSED", "selector": {"level": "adset", "name_prefix": "A set"}},
    ],
    ids=["update", "status"],
)
async def test_an_object_repeated_across_edge_pages_is_changed_once(
    start_sim: Any, task: dict[str, Any]
) -> None:
    sim = await start_sim()
    ids = await _tree(sim)
    spec = parse_job({"account_id": sim.act, "tasks": [task]})
    async with sim.engine() as engine:
        report = await run_job(_RepeatedObjects(engine), spec)
    assert report.counts["failed"] == 0 and report.counts["skipped"] == 0
    writes = [o for o in report.outcomes if o.kind == "update"]
    assert sorted(o.op_id.rsplit("/", 1)[-1] for o in writes) == sorted([ids["A/s0"], ids["A/s1"]])
    diff = report.tasks[0].details["diff"]
    assert sorted(e["id"] for e in diff) == sorted([ids["A/s0"], ids["A/s1"]])
    field, value = ("daily_budget", "1200") if task["type"] == "update" else ("status", "PAUSED")
    assert [sim.node(ids[k]).data[field] for k in ("A/s0", "A/s1")] == [value, value]


class _FaultsOnWrites:
    """An engine whose engine jobs of writes meet ``faults`` at the simulator (reads are answered well)."""

    def __init__(self, engine: BulkEngine, sim: Any, faults: FaultConfig) -> None:
        self.engine, self.sim, self.faults = engine, sim, faults

    async def run(self, job: Any, *, job_id: str | None = None, fingerprint: str | None = None) -> JobResult:
        ops = list(job)
        writes = any(op.kind.value == "update" for op in ops)
        if writes:
            self.sim.server.core.set_faults(self.faults)
        try:
            return await self.engine.run(ops, job_id=job_id, fingerprint=fingerprint)
        finally:
            self.sim.server.core.set_faults(FaultConfig())


LOST = FaultConfig(drop_after_commit_rate=1.0)
"""Every write committed, its answer lost (the connection drops after the commit)."""


async def test_a_write_that_failed_after_lost_answers_is_undone(start_sim: Any, tmp_path: Path) -> None:
    """Retries spent on lost answers: the update failed, but it may have been applied (here it was). Its
    diff entry says so, and the undo (from the report or the journal) restores it; the ``expect.`` guard
    makes that safe either way."""
    sim = await start_sim()
    ids = await _tree(sim)
    spec = parse_job(
        {
            "job_id": "lost",
            "account_id": sim.act,
            "tasks": [
                {"type": "update", "level": "adset", "ids": [ids["A/s0"]], "set": {"daily_budget": 1300}}
            ],
        }
    )
    with SqliteJournal(tmp_path / "jobs.sqlite") as journal:
        engine = sim.engine(retry=RetryConfig(max_attempts=2, base_delay_s=0.0, max_delay_s=0.0))
        engine.journal = journal
        async with engine:
            report = await run_job(_FaultsOnWrites(engine, sim, LOST), spec)
        from_journal = undo_from_journal(journal, "lost")
    assert report.counts["failed"] == 1
    assert sim.node(ids["A/s0"]).data["daily_budget"] == "1300"  # applied all the same
    entry = report.tasks[0].details["diff"][0]
    assert entry["state"] == "failed" and entry["outcome_unknown"] is True
    from_report = undo_document(report.to_dict())
    expected = [
        {
            "id": ids["A/s0"],
            "level": "adset",
            "before": {"daily_budget": 1000},
            "after": {"daily_budget": 1300},
        }
    ]
    assert [t["objects"] for t in from_report["tasks"]] == [expected]
    assert [t["objects"] for t in from_journal["tasks"]] == [expected]
    job_file, _ = write_undo_job(from_report, tmp_path / "undo")
    undo = await sim.run(load_job(job_file))
    assert undo.counts["failed"] == 0 and sim.node(ids["A/s0"]).data["daily_budget"] == "1000"


async def test_a_write_refused_by_graph_is_not_undone(start_sim: Any) -> None:
    """A definite refusal (an entry's own transient error, retries spent) changed nothing: nothing to restore."""
    sim = await start_sim()
    ids = await _tree(sim)
    spec = parse_job(
        {
            "account_id": sim.act,
            "tasks": [{"type": "update", "level": "adset", "ids": [ids["A/s0"]], "set": {"name": "N"}}],
        }
    )
    async with sim.engine(retry=RetryConfig(max_attempts=2, base_delay_s=0.0, max_delay_s=0.0)) as engine:
        report = await run_job(_FaultsOnWrites(engine, sim, FaultConfig(transient_rate=1.0)), spec)
    assert report.counts["failed"] == 1
    entry = report.tasks[0].details["diff"][0]
    assert entry["state"] == "failed" and "outcome_unknown" not in entry
    assert all(not t["objects"] for t in undo_document(report.to_dict())["tasks"])


@pytest.mark.parametrize(
    ("report", "undo"),
    [
        ("out/job.json", "out/job.undo.json"),
        ("job.json", "job.undo.json"),
        ("out/job", "out/job.undo.json"),
        ("s3://bucket/runs/raise.json", "s3://bucket/runs/raise.undo.json"),  # an Airflow report_path URL
    ],
)
def test_the_undo_file_is_named_in_one_place(report: str, undo: str) -> None:
    from bulk_engine.cli.undo_file import undo_file_path
    from bulk_engine.operations.undo import undo_file_name

    assert undo_file_name(report) == undo
    if "://" not in report:
        assert undo_file_path(Path(report)) == Path(undo)
