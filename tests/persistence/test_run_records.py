"""Run records in the journal (one row per run of a job, upserted by run id), every backend; schema 4."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path
from typing import Any

from persist_support import JournalFactory

from bulk_engine import RunTotals
from bulk_engine.config import IdempotencyConfig
from bulk_engine.persistence import (
    Journal,
    JournalSession,
    OpStatus,
    PacingRecord,
    PlanWrite,
    RunRecord,
    RunState,
    SqliteJournal,
)
from bulk_engine.persistence import sqlite as sqlite_module
from bulk_engine.persistence.ephemeral import EphemeralJournal
from bulk_engine.results import JobStats


def _run(job_id: str, run_id: str, number: int, updated_at: float, **figures: Any) -> RunRecord:
    return RunRecord(job_id, run_id, number, RunState.RUNNING, 100.0, updated_at, None, **figures)


def test_a_run_record_round_trips_and_is_upserted_by_its_run_id(journals: JournalFactory) -> None:
    journal = journals.open()
    journal.open_job("j", None, {})
    journal.save_run(_run("j", "r1", 1, 101.0, http_requests=2, graph_calls=9))
    ended = dataclasses.replace(
        _run("j", "r1", 1, 105.0, http_requests=5, graph_calls=30, elapsed_s=4.5, succeeded=30),
        state=RunState.FINISHED,
        ended_at=105.0,
    )
    journal.save_run(ended)
    journal.save_run(_run("j", "r1", 1, 104.0, http_requests=4))  # a late refresh never undoes the end
    assert journals.reopen().load_runs("j") == [ended]


def test_runs_are_per_job_and_in_order(journals: JournalFactory) -> None:
    journal = journals.open()
    journal.save_run(_run("j", "b", 2, 1.0))
    journal.save_run(_run("j", "a", 1, 1.0))
    journal.save_run(_run("other", "c", 1, 1.0))
    journal = journals.reopen()
    assert [r.run_id for r in journal.load_runs("j")] == ["a", "b"]
    assert [r.run_id for r in journal.load_runs("other")] == ["c"]
    assert journal.load_runs("nobody") == []


def test_a_record_counts_as_one_run() -> None:
    record = _run("j", "r", 1, 1.0, http_requests=3, graph_calls=7, retries=1, lookups=2, elapsed_s=1.5)
    assert record.totals() == RunTotals(
        runs=1, http_requests=3, graph_calls=7, retries=1, lookups=2, elapsed_s=1.5
    )


def test_the_ephemeral_journal_keeps_no_runs() -> None:
    journal = EphemeralJournal()
    journal.save_run(_run("j", "r", 1, 1.0))
    assert journal.load_runs("j") == []
    session = JournalSession(journal, "j", fingerprint=None, idempotency=IdempotencyConfig())
    session.start_run()
    assert session.run is None and session.save_run(JobStats(http_requests=3), 1.0) is None


def test_a_session_numbers_its_run_and_ends_it_once(journals: JournalFactory) -> None:
    journal: Journal = journals.open()
    journal.save_run(_run("j", "earlier", 1, 1.0, http_requests=4, graph_calls=10, elapsed_s=2.0))
    session = JournalSession(journal, "j", fingerprint=None, idempotency=IdempotencyConfig())
    session.start_run()
    assert session.run is not None and session.run.number == 2
    assert [r.state for r in journal.load_runs("j")] == [RunState.RUNNING, RunState.RUNNING]
    totals = session.save_run(JobStats(http_requests=1, graph_calls=3), 0.5, RunState.STOPPED)
    assert totals == RunTotals(runs=2, http_requests=5, graph_calls=13, elapsed_s=2.5)
    again = session.save_run(JobStats(http_requests=9), 9.0, RunState.RAISED, "RuntimeError")
    assert again == totals  # the first ending stands
    session.close()
    mine = journals.reopen().load_runs("j")[1]
    assert (mine.state, mine.http_requests, mine.error, mine.ended_at is not None) == (
        RunState.STOPPED,
        1,
        None,
        True,
    )


def test_a_schema_3_journal_is_migrated_to_4_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with SqliteJournal(path) as journal:
        journal.open_job("j", "fp", {"keys": "name"})
        journal.add_plans("j", [PlanWrite("a", "{}", "d-a", "create_campaign", "act_1", True)])
        journal.mark_sent("j", ["a"])
        journal.save_pacing([PacingRecord("account:act_1", 30.0, "parked", 99.0, {"n": 1}, 1.0)])
    db = sqlite3.connect(path)  # what bulk-engine with schema 3 wrote
    db.execute("DROP TABLE runs")
    db.execute("PRAGMA user_version=3")
    db.commit()
    db.close()
    with SqliteJournal(path) as journal:
        job = journal.get_job("j")
        assert job is not None and job.fingerprint == "fp" and dict(job.options) == {"keys": "name"}
        assert journal.get_ops("j", ["a"])["a"].status is OpStatus.SENT
        assert [r.reason for r in journal.load_pacing()] == ["parked"]
        assert journal.load_runs("j") == []  # its earlier runs simply have no records
        journal.save_run(_run("j", "r1", 1, 1.0, http_requests=2))
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == sqlite_module.SCHEMA_VERSION == 5
    assert db.execute("SELECT run_id, state, http_requests FROM runs").fetchall() == [("r1", "running", 2)]
    db.close()
    with SqliteJournal(path) as journal:
        assert [r.http_requests for r in journal.load_runs("j")] == [2]
        assert journal.job_ids() == ["j"]


def test_a_journal_that_cannot_take_a_run_record_does_not_stop_the_session(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "jobs.db")
    session = JournalSession(journal, "j", fingerprint=None, idempotency=IdempotencyConfig())
    session.start_run()
    journal._db.execute("DROP TABLE runs")  # a write that fails
    totals = session.save_run(JobStats(http_requests=2), 1.0, RunState.FINISHED)
    assert totals == RunTotals(runs=1, http_requests=2, elapsed_s=1.0)  # still known: this run's figures
    session.close()
    journal.close()
