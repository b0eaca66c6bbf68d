"""Undo of create and copy jobs against the simulator: the tops of what a job made are paused or deleted,
nothing else changes, objects changed since are skipped and listed, a killed undo resumes once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ops_support import adset, campaign, changes, ids_by_op, simple_tree, snapshot, tree_job

from bulk_engine.engine import BulkEngine
from bulk_engine.operations import JobReport, JobSpec, load_job, parse_job, run_job
from bulk_engine.operations.undo import undo_document, undo_from_journal, write_undo_job
from bulk_engine.persistence import SqliteJournal
from bulk_engine.results import JobResult

# --- helpers --------------------------------------------------------------------------------------------


async def _launch(sim: Any) -> tuple[JobSpec, JobReport, dict[str, str]]:
    """A pre-existing campaign P, then job ``launch``: campaign A (ACTIVE, 2 ad sets with an ad each), campaign
    B (PAUSED, 1 ad set, 1 ad) sharing one creative, and an ACTIVE ad set X under P (a raw create)."""
    pre = await sim.run(tree_job([campaign("P")]))
    p = str(ids_by_op(pre)["t0/c0"])
    create = tree_job([simple_tree("A", ads=1, adsets=2), simple_tree("B", ads=1, status="PAUSED")])
    extra = {
        "type": "operations",
        "key": "extra",
        "operations": [
            {
                "op_id": "extra/x",
                "path": "{account_id}/adsets",
                "params": {**adset("X", status="ACTIVE"), "campaign_id": p},
            }
        ],
    }
    spec = parse_job({"job_id": "launch", "account_id": sim.act, "tasks": [*create["tasks"], extra]})
    report = await sim.run(spec)
    assert report.ok, [o.reason for o in report.outcomes if o.reason]
    ids = {k: str(v) for k, v in ids_by_op(report).items()}
    return spec, report, {"P": p, "A": ids["t0/c0"], "B": ids["t0/c1"], "X": ids["extra/x"], **ids}


async def _undo(sim: Any, doc: dict[str, Any], folder: Path, **kw: Any) -> JobReport:
    job_file, _ = write_undo_job(doc, folder, **kw)
    return await sim.run(load_job(job_file))


def _skipped(report: JobReport) -> dict[str, str]:
    """Skipped writes of an undo: object id → reason."""
    return {o.op_id.rsplit(":", 1)[1]: str(o.reason) for o in report.outcomes if o.state.value == "skipped"}


# --- create ---------------------------------------------------------------------------------------------
async def test_undo_of_a_create_pauses_the_top_of_each_tree_and_nothing_else(
    start_sim: Any, tmp_path: Path
) -> None:
    sim = await start_sim()
    spec, report, ids = await _launch(sim)
    doc = undo_document(report.to_dict(), job=spec)
    tops = {(c["id"], c["level"], c["status"]) for t in doc["tasks"] for c in t["created"]}
    # the children of A and B follow their campaign; X, under the pre-existing P, is its own top
    assert tops == {
        (ids["A"], "campaign", "ACTIVE"),
        (ids["B"], "campaign", "PAUSED"),
        (ids["X"], "adset", "ACTIVE"),
    }
    assert [(n["id"], "creative" in n["reason"]) for n in doc["not_undoable"]] == [(ids["t0/cr:c"], True)]
    before = snapshot(sim)
    undo = await _undo(sim, doc, tmp_path / "undo")
    assert undo.job_id == "undo-launch" and undo.counts["failed"] == 0
    assert _skipped(undo) == {ids["B"]: "unchanged: status already PAUSED"}  # created paused
    assert changes(before, sim) == {  # the whole store: these and nothing else
        ids["A"]: {"status": ("ACTIVE", "PAUSED")},
        ids["X"]: {"status": ("ACTIVE", "PAUSED")},
    }
    # the undo is an update job: its own undo re-activates what it paused
    again = await _undo(sim, undo_document(undo.to_dict()), tmp_path / "undo-undo")
    assert again.counts == {"succeeded": 4, "failed": 0, "skipped": 0}
    assert changes(before, sim) == {}


async def test_undo_with_delete_deletes_the_tops_and_keeps_the_creative(
    start_sim: Any, tmp_path: Path
) -> None:
    sim = await start_sim()
    spec, report, ids = await _launch(sim)
    before = snapshot(sim)
    undo = await _undo(sim, undo_document(report.to_dict(), job=spec), tmp_path / "undo", created="delete")
    assert undo.job_id == "undo-launch-delete"
    assert undo.counts == {"succeeded": 6, "failed": 0, "skipped": 0}  # 3 reads, 3 writes
    assert changes(before, sim) == {
        ids["A"]: {"status": ("ACTIVE", "DELETED")},
        ids["B"]: {"status": ("PAUSED", "DELETED")},
        ids["X"]: {"status": ("ACTIVE", "DELETED")},
    }
    assert sim.node(ids["t0/cr:c"]).data == before[ids["t0/cr:c"]]  # listed, not deleted


async def test_objects_changed_since_are_skipped_and_listed_never_overwritten(
    start_sim: Any, tmp_path: Path
) -> None:
    """B (made PAUSED) re-activated by someone, X deleted by someone: both skipped with the reason; A paused."""
    sim = await start_sim()
    spec, report, ids = await _launch(sim)
    others = await sim.run(
        {
            "tasks": [
                {"type": "update", "level": "campaign", "ids": [ids["B"]], "set": {"status": "ACTIVE"}},
                {"type": "update", "level": "adset", "ids": [ids["X"]], "set": {"status": "DELETED"}},
            ]
        }
    )
    assert others.counts["failed"] == 0 and others.counts["skipped"] == 0
    before = snapshot(sim)
    undo = await _undo(sim, undo_document(report.to_dict(), job=spec), tmp_path / "undo")
    skipped = _skipped(undo)
    assert set(skipped) == {ids["B"], ids["X"]}
    assert "changed since: status is 'ACTIVE', not 'PAUSED'" in skipped[ids["B"]]
    assert "changed since: status is 'DELETED', not 'ACTIVE'" in skipped[ids["X"]]
    assert changes(before, sim) == {ids["A"]: {"status": ("ACTIVE", "PAUSED")}}
    # with delete, an object already DELETED is skipped as such
    deleted = await _undo(
        sim, undo_document(report.to_dict(), job=spec), tmp_path / "delete", created="delete"
    )
    assert _skipped(deleted)[ids["X"]] == "unchanged: status already DELETED"


# --- copy -----------------------------------------------------------------------------------------------
async def test_undo_of_a_copy_pauses_the_copies_sync_chunked_and_into_a_target(
    start_sim: Any, tmp_path: Path
) -> None:
    """A small campaign (sync deep copy), a large one (chunked fallback: its pieces follow the shell) and an
    ad set copied into a pre-existing campaign (its own top): each copy's top paused, the sources untouched."""
    sim = await start_sim()
    made = await sim.run(
        tree_job([simple_tree("S", ads=1), simple_tree("L", ads=2, adsets=2), campaign("T")])
    )
    src = {k: str(v) for k, v in ids_by_op(made).items()}
    spec = parse_job(
        {
            "job_id": "copies",
            "account_id": sim.act,
            "tasks": [
                {
                    "type": "copy",
                    "key": "cc",
                    "source_ids": [src["t0/c0"], src["t0/c1"]],
                    "status_option": "ACTIVE",
                },
                {
                    "type": "copy",
                    "key": "sc",
                    "level": "adset",
                    "source_ids": [src["t0/c0/s0"]],
                    "target_campaign_id": src["t0/c2"],
                    "status_option": "ACTIVE",
                },
            ],
        }
    )
    report = await sim.run(spec)
    assert report.counts["failed"] == 0, [o.reason for o in report.outcomes if o.reason]
    copies = report.task("cc").details["copies"]
    assert {c["mode"] for c in copies.values()} == {"sync", "chunked"}
    tops = {str(c["new_id"]) for c in copies.values()} | {
        str(c["new_id"]) for c in report.task("sc").details["copies"].values()
    }
    doc = undo_document(report.to_dict(), job=spec)
    assert {c["id"] for t in doc["tasks"] for c in t["created"]} == tops
    assert doc["not_undoable"] == []
    before = snapshot(sim)
    undo = await _undo(sim, doc, tmp_path / "undo")
    assert undo.counts["failed"] == 0 and undo.counts["skipped"] == 0
    assert changes(before, sim) == {i: {"status": ("ACTIVE", "PAUSED")} for i in tops}


async def test_a_copy_with_an_inherited_status_is_listed_not_undone(start_sim: Any, tmp_path: Path) -> None:
    sim = await start_sim()
    made = await sim.run(tree_job([simple_tree("S", ads=1)]))
    spec = parse_job(
        {
            "job_id": "inherit",
            "account_id": sim.act,
            "tasks": [
                {
                    "type": "copy",
                    "source_ids": [str(ids_by_op(made)["t0/c0"])],
                    "status_option": "INHERITED_FROM_SOURCE",
                }
            ],
        }
    )
    report = await sim.run(spec)
    doc = undo_document(report.to_dict(), job=spec)
    assert doc["tasks"] == []
    assert [n["reason"] for n in doc["not_undoable"]] == [
        "copied with status_option INHERITED_FROM_SOURCE: the status it was made with is not known"
    ]


# --- journal: interrupted runs, killed undos ------------------------------------------------------------
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


async def _journaled(sim: Any, journal: SqliteJournal, spec: JobSpec, killed_after: int | None) -> JobReport:
    engine = sim.engine()
    engine.journal = journal
    async with engine:
        if killed_after is None:
            return await run_job(engine, spec)
        with pytest.raises(_KilledAfter.Killed):
            await run_job(_KilledAfter(engine, killed_after), spec)
    return JobReport(spec.job_id or "", spec.fingerprint())


async def test_an_interrupted_create_is_undone_from_the_journal(start_sim: Any, tmp_path: Path) -> None:
    """Killed half-way through its creates: the journal knows what was made (and with which status)."""
    sim = await start_sim()
    spec = parse_job(
        {"job_id": "cut", "account_id": sim.act, **tree_job([simple_tree(f"K{i}", ads=1) for i in range(4)])}
    )
    with SqliteJournal(tmp_path / "jobs.sqlite") as journal:
        await _journaled(sim, journal, spec, killed_after=0)
        doc = undo_from_journal(journal, "cut")
    made = {n.id for n in sim.nodes("campaign")}
    assert made and {c["id"] for t in doc["tasks"] for c in t["created"]} == made
    assert {c["status"] for t in doc["tasks"] for c in t["created"]} == {"ACTIVE"}
    before = snapshot(sim)
    undo = await _undo(sim, doc, tmp_path / "undo")
    assert undo.counts["failed"] == 0 and undo.counts["skipped"] == 0
    assert changes(before, sim) == {i: {"status": ("ACTIVE", "PAUSED")} for i in made}


async def test_a_killed_undo_of_a_create_resumes_and_applies_once(start_sim: Any, tmp_path: Path) -> None:
    """Killed half-way through its writes: resumed on its journal, the reads and the writes already done are
    answered from the journal (not taken for changes by someone else, not sent again)."""
    sim = await start_sim()
    spec = parse_job(
        {"job_id": "four", "account_id": sim.act, **tree_job([simple_tree(f"C{i}") for i in range(4)])}
    )
    report = await sim.run(spec)
    made = [str(ids_by_op(report)[f"t0/c{i}"]) for i in range(4)]
    job_file, _ = write_undo_job(undo_document(report.to_dict(), job=spec), tmp_path / "undo")
    undo_spec = load_job(job_file)
    before = snapshot(sim)
    with SqliteJournal(tmp_path / "jobs.sqlite") as journal:
        await _journaled(sim, journal, undo_spec, killed_after=1)  # the reads, then half of the writes
        assert sorted(sim.node(i).data["status"] for i in made) == ["ACTIVE"] * 2 + ["PAUSED"] * 2
        resumed = await _journaled(sim, journal, undo_spec, killed_after=None)
    assert resumed.counts == {"succeeded": 8, "failed": 0, "skipped": 0}
    assert resumed.to_result().from_journal == 4 + 2  # the reads and the writes done before the kill
    assert changes(before, sim) == {i: {"status": ("ACTIVE", "PAUSED")} for i in made}


async def test_the_statuses_come_from_the_report_s_job_file_unless_it_changed(
    start_sim: Any, tmp_path: Path
) -> None:
    sim = await start_sim()
    job_file = tmp_path / "launch.json"
    job = {"job_id": "file", "account_id": sim.act, **tree_job([simple_tree("F", ads=1)])}
    job_file.write_text(json.dumps(job), encoding="utf-8")
    spec = load_job(job_file)
    report = {**(await sim.run(spec)).to_dict(), "source": str(job_file)}
    doc = undo_document(report)
    assert [(c["level"], c["status"]) for t in doc["tasks"] for c in t["created"]] == [("campaign", "ACTIVE")]
    job["tasks"][0]["campaigns"][0]["status"] = (
        "PAUSED"  # edited after the run: its statuses are not the run's
    )
    job_file.write_text(json.dumps(job), encoding="utf-8")
    doc = undo_document(report)
    assert doc["tasks"] == []
    assert "changed since the run" in doc["not_undoable"][-1]["reason"]
