"""A damaged or foreign journal file is refused with a JournalError naming the file and the problem."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bulk_engine import JournalError
from bulk_engine.persistence import OpStatus, OutcomeWrite, PlanWrite, SqliteJournal


def _filled(path: Path, ops: int = 3_000) -> None:
    with SqliteJournal(path) as journal:
        journal.open_job("job", "fp", {"keys": "name"})
        journal.add_plans(
            "job",
            [
                PlanWrite(f"op{i}", '{"plan": "' + "x" * 200 + '"}', f"d{i}", "create_ad", "act_1", True)
                for i in range(ops)
            ],
        )
        journal.record_outcomes(
            "job", [OutcomeWrite(f"op{i}", OpStatus.SUCCEEDED, 1, False) for i in range(ops)]
        )


def test_a_journal_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    _filled(path)
    with SqliteJournal(path) as journal:
        job = journal.get_job("job")
        assert job is not None and job.counts["succeeded"] == 3_000


def test_garbage_bytes_are_not_a_journal(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    path.write_bytes(b"\x00\xffnot a database at all" * 100)
    with pytest.raises(JournalError, match=r"j\.db: not a bulk-engine journal .* not an SQLite database"):
        SqliteJournal(path)
    assert path.read_bytes().startswith(b"\x00\xffnot a database")  # left untouched


def test_a_text_file_is_not_a_journal(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("tasks:\n  - type: create\n")
    with pytest.raises(JournalError, match="not an SQLite database"):
        SqliteJournal(path)


def test_truncated_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    _filled(path)
    size = path.stat().st_size
    assert size > 100_000
    with path.open("r+b") as fh:
        fh.truncate(size // 2)
    with pytest.raises(JournalError, match=r"j\.db: the database is truncated"):
        SqliteJournal(path)


def test_truncated_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    _filled(path, ops=10)
    with path.open("r+b") as fh:
        fh.truncate(60)
    with pytest.raises(JournalError, match="truncated"):
        SqliteJournal(path)


def test_overwritten_pages_are_reported_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    _filled(path)
    size = path.stat().st_size
    with path.open("r+b") as fh:
        for offset in range(8_192, size - 8_192, 16_384):
            fh.seek(offset)
            fh.write(b"\xde\xad\xbe\xef" * 512)
    with pytest.raises(JournalError, match=r"j\.db: the database is corrupt"):
        SqliteJournal(path)


def test_another_applications_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    db.commit()
    db.close()
    with pytest.raises(JournalError, match="an SQLite database, but not a bulk-engine journal"):
        SqliteJournal(path)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    _filled(path, ops=1)
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=99")
    db.commit()
    db.close()
    with pytest.raises(JournalError, match=r"newer bulk-engine \(schema 99"):
        SqliteJournal(path)


def test_an_empty_file_is_a_new_journal(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    path.touch()  # e.g. created by a process killed before its first write
    with SqliteJournal(path) as journal:
        assert journal.job_ids() == []
    with SqliteJournal(path) as journal:  # and it is now a real journal
        assert journal.open_job("a", None, {}).job_id == "a"


def test_a_missing_directory_is_reported(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match=r"cannot open it|SQLite error"):
        SqliteJournal(tmp_path / "missing" / "j.db")


def test_wal_mode_and_application_id(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    _filled(path, ops=1)
    with SqliteJournal(path) as journal:
        journal.open_job("b", None, {})
        db = sqlite3.connect(path)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA application_id").fetchone()[0] == 0x42454A4C
        db.close()
