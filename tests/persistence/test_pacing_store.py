"""The governor's pacing state in the journal: per journal (shared by its jobs), newest wins but a running
park stands unless lifted (``merge_pacing``), schema 3."""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
from pathlib import Path

import pytest
from persist_support import JournalFactory

from bulk_engine import JournalError
from bulk_engine.config import IdempotencyConfig
from bulk_engine.persistence import (
    Journal,
    JournalSession,
    MemoryJournal,
    OpStatus,
    PacingRecord,
    PlanWrite,
    SqliteJournal,
)
from bulk_engine.persistence import sqlite as sqlite_module
from bulk_engine.persistence.ephemeral import EphemeralJournal


def _rec(
    scope: str,
    updated_at: float,
    *,
    parked_until: float = 0.0,
    reason: str = "",
    usage_pct: float | None = None,
    **state: float | str,
) -> PacingRecord:
    return PacingRecord(scope, parked_until, reason, usage_pct, state, updated_at)


def _by_scope(journal: Journal) -> dict[str, PacingRecord]:
    records = journal.load_pacing()
    found = {r.scope: r for r in records}
    assert len(found) == len(records), "one record per scope"
    return found


def _session(journal: Journal, job_id: str) -> JournalSession:
    return JournalSession(journal, job_id, fingerprint=None, idempotency=IdempotencyConfig())


# --- every backend ----------------------------------------------------------------------------------
def test_pacing_round_trips(journals: JournalFactory) -> None:
    journal = journals.open()
    assert journal.load_pacing() == []
    parked = _rec(
        "account:act_1",
        1_700_000_100.5,
        parked_until=1_700_000_400.25,
        reason="x-business-use-case-usage: call_count 97%",
        usage_pct=97.0,
        ewma=12.5,
        samples=3,
        mode="cooling",
    )
    idle = _rec("pair:act_1:ads_management", 1_700_000_101.0, usage_pct=None)
    app = _rec("app", 1_700_000_102.0, usage_pct=0.0, reason="é ünïcode")
    journal.save_pacing([parked, idle, app])
    assert _by_scope(journals.reopen()) == {r.scope: r for r in (parked, idle, app)}
    back = _by_scope(journals.reopen())["account:act_1"]
    assert type(back.parked_until) is float and back.parked_until == 1_700_000_400.25
    assert dict(back.state) == {"ewma": 12.5, "samples": 3, "mode": "cooling"}
    assert type(back.state["samples"]) is int  # numbers keep their JSON type


def test_saving_an_existing_scope_overwrites_its_reading_and_keeps_a_running_park(
    journals: JournalFactory,
) -> None:
    """Another worker's save without a park of its own (``parked_until`` 0) must not erase the park a
    worker just wrote for the account: the reading is replaced, the park stands until it runs out."""
    journal = journals.open()
    journal.save_pacing(
        [_rec("account:act_1", 10.0, parked_until=100.0, reason="parked", usage_pct=99.0, n=1)]
    )
    journal.save_pacing([_rec("account:act_2", 10.0, usage_pct=5.0)])
    journal = journals.reopen()
    journal.save_pacing([_rec("account:act_1", 11.0, usage_pct=None, n=2)])  # says nothing of a park
    stored = _by_scope(journals.reopen())
    assert stored["account:act_1"] == _rec(
        "account:act_1", 11.0, parked_until=100.0, reason="parked", usage_pct=None, n=2
    )
    assert stored["account:act_2"] == _rec("account:act_2", 10.0, usage_pct=5.0)  # untouched
    # a newer park replaces it (the newest regain time is the best), a shorter one too
    journals.reopen().save_pacing([_rec("account:act_1", 12.0, parked_until=80.0, reason="newer")])
    assert _by_scope(journals.reopen())["account:act_1"] == _rec(
        "account:act_1", 12.0, parked_until=80.0, reason="newer"
    )
    # a park that ran out before the save is not kept
    journals.reopen().save_pacing([_rec("account:act_1", 81.0, n=3)])
    assert _by_scope(journals.reopen())["account:act_1"] == _rec("account:act_1", 81.0, n=3)


def test_a_lifted_record_clears_a_running_park(journals: JournalFactory) -> None:
    """``clear_parks`` on fresher news: the writer says the account is usable, so the stored park goes."""
    journal = journals.open()
    journal.save_pacing([_rec("pair:act_1:ads_management", 10.0, parked_until=500.0, reason="parked")])
    lifted = dataclasses.replace(_rec("pair:act_1:ads_management", 11.0, usage_pct=3.0), lifted=True)
    journals.reopen().save_pacing([lifted, _rec("account:act_2", 11.0, parked_until=60.0, reason="p2")])
    stored = _by_scope(journals.reopen())
    assert stored["pair:act_1:ads_management"] == _rec("pair:act_1:ads_management", 11.0, usage_pct=3.0)
    assert stored["pair:act_1:ads_management"].lifted is False  # a save's instruction, not stored
    assert stored["account:act_2"].parked_until == 60.0
    # an older lift loses like any older record
    old_lift = dataclasses.replace(_rec("account:act_2", 5.0), lifted=True)
    journals.reopen().save_pacing([old_lift])
    assert _by_scope(journals.reopen())["account:act_2"].parked_until == 60.0


def test_an_older_record_does_not_overwrite_a_newer_one(journals: JournalFactory) -> None:
    journal = journals.open()
    newer = _rec("account:act_1", 20.0, parked_until=500.0, reason="newer park", usage_pct=100.0)
    journal.save_pacing([newer, _rec("account:act_2", 20.0, reason="act_2 at 20")])
    # one batch: act_1's record is older than the stored one (ignored), act_2's is newer (kept)
    journal.save_pacing(
        [
            _rec("account:act_1", 19.999, reason="stale reading", usage_pct=1.0),
            _rec("account:act_2", 21.0, reason="act_2 at 21"),
        ]
    )
    stored = _by_scope(journals.reopen())
    assert stored["account:act_1"] == newer
    assert stored["account:act_2"].reason == "act_2 at 21"
    journals.reopen().save_pacing([_rec("account:act_1", 20.0, usage_pct=42.0)])  # a tie: the write wins
    tied = _by_scope(journals.reopen())["account:act_1"]
    assert (tied.usage_pct, tied.parked_until, tied.reason) == (42.0, 500.0, "newer park")


def test_in_one_batch_the_newest_record_of_a_scope_wins(journals: JournalFactory) -> None:
    journals.open().save_pacing(
        [_rec("app", 5.0, reason="first"), _rec("app", 7.0, reason="newest"), _rec("app", 6.0, reason="late")]
    )
    assert [r.reason for r in journals.reopen().load_pacing()] == ["newest"]


def test_pacing_is_shared_by_every_job_of_the_journal(journals: JournalFactory) -> None:
    """Parks are about ad accounts: no job id, and another job's lock does not fence pacing writes."""
    first_journal = journals.open()
    first = _session(first_journal, "job-1")  # holds job-1's lock
    second_journal = journals.open()  # another connection to the file (SQLite), the same object (memory)
    second = _session(second_journal, "job-2")
    first_journal.save_pacing([_rec("account:act_1", 1.0, parked_until=60.0, reason="parked by job-1")])
    assert _by_scope(second_journal)["account:act_1"].reason == "parked by job-1"
    second_journal.save_pacing([_rec("account:act_1", 2.0, parked_until=90.0, reason="parked by job-2")])
    assert _by_scope(first_journal)["account:act_1"] == _rec(
        "account:act_1", 2.0, parked_until=90.0, reason="parked by job-2"
    )
    first.close()
    second.close()
    reopened = journals.reopen()
    assert sorted(reopened.job_ids()) == ["job-1", "job-2"]
    assert [r.reason for r in reopened.load_pacing()] == ["parked by job-2"]


def test_the_stored_state_is_a_copy(journals: JournalFactory) -> None:
    journal = journals.open()
    state: dict[str, float | str] = {"ewma": 1.0}
    journal.save_pacing([PacingRecord("app", 0.0, "", None, state, 1.0)])
    state["ewma"] = 2.0  # the governor goes on updating its estimator
    loaded = journal.load_pacing()[0]
    assert dict(loaded.state) == {"ewma": 1.0}
    loaded.state["ewma"] = 3.0  # type: ignore[index]  # a reader changing what it got
    assert dict(journals.reopen().load_pacing()[0].state) == {"ewma": 1.0}


def test_many_scopes_in_one_call(journals: JournalFactory) -> None:
    records = [_rec(f"account:act_{i}", float(i), usage_pct=i % 100, n=i) for i in range(2_345)]
    journals.open().save_pacing(records)
    journals.open().save_pacing([])  # nothing to write: no error
    assert _by_scope(journals.reopen()) == {r.scope: r for r in records}


def test_every_backend_still_implements_the_protocol(tmp_path: Path) -> None:
    with SqliteJournal(tmp_path / "j.db") as sqlite_journal:
        assert isinstance(sqlite_journal, Journal)
    assert isinstance(MemoryJournal(), Journal)
    assert isinstance(EphemeralJournal(), Journal)


def test_the_ephemeral_journal_stores_no_pacing() -> None:
    journal = EphemeralJournal()
    journal.save_pacing([_rec("account:act_1", 1.0, parked_until=100.0, reason="parked")])
    assert journal.load_pacing() == []


# --- SQLite -----------------------------------------------------------------------------------------
def test_pacing_survives_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    record = _rec("pair:act_1:ads_management", 3.0, parked_until=1_800_000_000.0, reason="parked", n=7)
    with SqliteJournal(path) as journal:
        journal.save_pacing([record])
    with SqliteJournal(path) as journal:
        assert journal.load_pacing() == [record]


def test_two_journal_objects_on_one_file_see_each_others_writes(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    with SqliteJournal(path) as one, SqliteJournal(path) as two:
        one.save_pacing([_rec("account:act_1", 10.0, reason="from one")])
        assert [r.reason for r in two.load_pacing()] == ["from one"]
        two.save_pacing([_rec("account:act_1", 11.0, reason="from two"), _rec("app", 11.0)])
        assert {r.scope: r.reason for r in one.load_pacing()} == {"account:act_1": "from two", "app": ""}
        one.save_pacing([_rec("account:act_1", 10.5, reason="one's older reading")])  # newest wins
        assert _by_scope(two)["account:act_1"].reason == "from two"


def test_state_is_stored_as_compact_json(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    with SqliteJournal(path) as journal:
        journal.save_pacing([_rec("app", 1.0, b=2.5, a="x y")])
    db = sqlite3.connect(path)
    assert db.execute("SELECT state FROM pacing").fetchall() == [('{"a":"x y","b":2.5}',)]
    db.close()


def test_an_unreadable_stored_state_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "jobs.db"
    good = _rec("app", 1.0, n=1)
    with SqliteJournal(path) as journal:
        journal.save_pacing([good])
    db = sqlite3.connect(path)
    db.executemany(
        "INSERT INTO pacing (scope, parked_until, reason, usage_pct, state, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        [
            ("account:act_bad", 9.0, "", None, '{"ewma": 1.', 1.0),  # truncated JSON
            ("account:act_list", 9.0, "", None, "[1, 2]", 1.0),  # JSON, but not an object
            ("account:act_type", "soon", "", None, "{}", 1.0),  # a text where a time belongs
        ],
    )
    db.commit()
    db.close()
    with SqliteJournal(path) as journal, caplog.at_level(logging.WARNING, logger="bulk_engine.journal"):
        assert journal.load_pacing() == [good]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    assert all(str(path) in w for w in warnings)
    assert any("'account:act_bad'" in w and "not JSON" in w for w in warnings)
    assert any("'account:act_list'" in w and "a JSON list, not an object" in w for w in warnings)
    assert any("'account:act_type'" in w and "wrong type" in w for w in warnings)


def test_a_failed_save_writes_nothing_and_names_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    with SqliteJournal(path) as journal:
        journal.save_pacing([_rec("app", 1.0, reason="before")])
        broken = PacingRecord("account:act_2", None, "", None, {}, 2.0)  # type: ignore[arg-type]
        with pytest.raises(JournalError, match=r"jobs\.db: SQLite error while saving the pacing state"):
            journal.save_pacing([_rec("app", 2.0, reason="after"), broken])  # NOT NULL fails mid-batch
        assert journal.load_pacing() == [_rec("app", 1.0, reason="before")]  # one transaction: rolled back
        with pytest.raises(TypeError):
            journal.save_pacing([_rec("app", 3.0), PacingRecord("app", 0.0, "", None, {"x": object()}, 3.0)])
        assert journal.load_pacing() == [_rec("app", 1.0, reason="before")]
        journal.open_job("j", None, {})  # the journal is still usable
    with pytest.raises(JournalError, match=r"jobs\.db: SQLite error while saving the pacing state"):
        journal.save_pacing([_rec("app", 4.0)])  # closed


def test_a_schema_2_journal_is_migrated_to_3_and_keeps_its_jobs(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with SqliteJournal(path) as journal:
        journal.open_job("j", "fp", {"keys": "name"})
        journal.add_plans("j", [PlanWrite("a", "{}", "d-a", "create_campaign", "act_1", True)])
        journal.mark_sent("j", ["a"])
    db = sqlite3.connect(path)  # what bulk-engine with schema 2 wrote
    db.execute("DROP TABLE pacing")
    db.execute("PRAGMA user_version=2")
    db.commit()
    db.close()
    with SqliteJournal(path) as journal:
        job = journal.get_job("j")
        assert job is not None and job.fingerprint == "fp" and dict(job.options) == {"keys": "name"}
        assert journal.get_ops("j", ["a"])["a"].status is OpStatus.SENT
        assert journal.load_pacing() == []
        journal.save_pacing([_rec("account:act_1", 1.0, parked_until=30.0, reason="parked")])
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == sqlite_module.SCHEMA_VERSION == 5
    assert db.execute("SELECT scope FROM pacing").fetchall() == [("account:act_1",)]
    db.close()
    with SqliteJournal(path) as journal:
        assert [r.reason for r in journal.load_pacing()] == ["parked"]
        assert journal.job_ids() == ["j"]
