"""What only the PostgreSQL journal has: URLs and schemas, refusals of foreign or damaged schemas, the
password kept out of every message, and the job lock held by the server (fencing, a lost lock connection).

The contract shared with SQLite runs in the other files of this folder against every backend.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from engine_support import campaign_op
from pg_server import PostgresServer, new_schema_url

from bulk_engine import BulkEngine, JournalError, RetryConfig, ScaledClock
from bulk_engine.config import IdempotencyConfig
from bulk_engine.errors import JobLockedError
from bulk_engine.execution.events import Park
from bulk_engine.persistence import (
    JournalSession,
    OpStatus,
    OutcomeWrite,
    PlanWrite,
    SqliteJournal,
    open_journal,
)
from bulk_engine.persistence import postgres as pg_module
from bulk_engine.persistence import postgres_lock as pg_lock_module
from bulk_engine.persistence.lock import LockOwner
from bulk_engine.persistence.postgres import PostgresJournal, PostgresTarget


@pytest.fixture
def url(postgres_server: PostgresServer) -> str:
    return new_schema_url(postgres_server)


@pytest.fixture
def journal(url: str) -> Iterator[PostgresJournal]:
    with PostgresJournal(url) as opened:
        yield opened


def sql(url: str, statement: str) -> list[tuple[object, ...]]:
    target = PostgresTarget.parse(url)
    with psycopg.connect(target.conninfo, autocommit=True) as conn:
        cur = conn.execute(statement.replace("{s}", f'"{target.schema}"'))
        return cur.fetchall() if cur.description else []


def plan(op_id: str) -> PlanWrite:
    return PlanWrite(op_id, "{}", f"d-{op_id}", "create_campaign", "act_1", True)


# --- URLs, schemas, open_journal -----------------------------------------------------------------------
def test_open_journal_picks_the_backend_from_the_target(url: str, tmp_path: object) -> None:
    with open_journal(url) as journal:  # type: ignore[attr-defined]
        assert isinstance(journal, PostgresJournal) and journal.schema == url.rsplit("=", 1)[1]
    with open_journal(url.replace("postgresql://", "postgres://")) as journal:  # type: ignore[attr-defined]
        assert isinstance(journal, PostgresJournal)
    sqlite = open_journal(str(tmp_path) + "/j.db")
    assert isinstance(sqlite, SqliteJournal)
    sqlite.close()


def test_the_default_schema_is_meta_bulk(postgres_server: PostgresServer) -> None:
    with PostgresJournal(postgres_server.url("journals")) as journal:
        assert journal.schema == pg_module.DEFAULT_SCHEMA == "meta_bulk"
        assert journal.location.endswith("/journals?schema=meta_bulk")


def test_schemas_of_one_database_are_separate_journals(postgres_server: PostgresServer) -> None:
    one, two = new_schema_url(postgres_server), new_schema_url(postgres_server)
    with PostgresJournal(one) as a, PostgresJournal(two) as b:
        a.open_job("same-id", "fp-a", {})
        b.open_job("same-id", "fp-b", {})  # another schema: another job under the same id
        a.add_plans("same-id", [plan("x")])
        assert list(b.iter_ops("same-id")) == []
        session = JournalSession(a, "same-id", fingerprint=None, idempotency=IdempotencyConfig())
        JournalSession(b, "same-id", fingerprint=None, idempotency=IdempotencyConfig()).close()  # own lock
        session.close()


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("mysql://u@127.0.0.1/db", "not a postgresql:// URL"),
        ("postgresql://u@127.0.0.1/db?schema=Bad-Name", "is not a plain lower-case SQL name"),
        ("postgresql://u@127.0.0.1/db?schema=x&nonsense=1", "not a valid PostgreSQL URL"),
    ],
)
def test_bad_urls_are_refused(bad: str, message: str) -> None:
    with pytest.raises(JournalError, match=message):
        PostgresJournal(bad)


# --- refusals of what is not (or no longer) a journal -------------------------------------------------------
def test_a_schema_of_another_application_is_refused_untouched(url: str) -> None:
    schema = PostgresTarget.parse(url).schema
    sql(url, "CREATE SCHEMA {s}")
    sql(url, "CREATE TABLE {s}.invoices (id int)")
    with pytest.raises(
        JournalError, match=rf"schema '{schema}' holds tables of another application \(invoices\)"
    ):
        PostgresJournal(url)
    assert sql(url, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'x'") == [(0,)]
    tables = sql(url, f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{schema}'")
    assert tables == [("invoices",)]


def test_another_applications_marker_a_newer_schema_and_damage_are_refused(url: str) -> None:
    PostgresJournal(url).close()
    sql(url, "UPDATE {s}.journal_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(JournalError, match=r"newer bulk-engine \(schema 99 > 2\); upgrade"):
        PostgresJournal(url)
    sql(url, "UPDATE {s}.journal_meta SET value = 'x' WHERE key = 'schema_version'")
    with pytest.raises(JournalError, match=r"the journal is corrupt \(schema_version 'x'\)"):
        PostgresJournal(url)
    sql(url, "UPDATE {s}.journal_meta SET value = '2' WHERE key = 'schema_version'")
    sql(url, "ALTER TABLE {s}.ops DROP COLUMN digest")
    sql(url, "DROP TABLE {s}.runs")
    with pytest.raises(
        JournalError, match=r"corrupt: missing tables or columns .*'ops': \['digest'\].*'runs'"
    ):
        PostgresJournal(url)
    sql(url, "UPDATE {s}.journal_meta SET value = 'someone-else' WHERE key = 'application'")
    with pytest.raises(
        JournalError, match=r"is not a bulk-engine journal \(journal_meta names 'someone-else'\)"
    ):
        PostgresJournal(url)


def test_an_empty_existing_schema_becomes_a_journal(url: str) -> None:
    sql(url, "CREATE SCHEMA {s}")  # a DBA created it for us
    with PostgresJournal(url) as journal:
        journal.open_job("j", None, {})
    assert sql(url, "SELECT key, value FROM {s}.journal_meta ORDER BY key") == [
        ("application", "bulk-engine-journal"),
        ("schema_version", "2"),
    ]


# --- credentials ---------------------------------------------------------------------------------------
def test_the_password_is_in_no_message_repr_or_log(
    postgres_server: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    password = postgres_server.password
    url = new_schema_url(postgres_server)
    assert password in url
    with caplog.at_level(logging.DEBUG), PostgresJournal(url) as journal:
        shown = [repr(journal), journal.location, repr(journal.target), str(journal.__dict__)]
        session = JournalSession(journal, "j", fingerprint="fp-1", idempotency=IdempotencyConfig())
        with pytest.raises(JobLockedError) as locked:
            JournalSession(journal, "j", fingerprint="fp-1", idempotency=IdempotencyConfig())
        shown.append(str(locked.value))
        session.close()
        with pytest.raises(JournalError) as changed:
            journal.open_job("j", "fp-2", {})
        shown.append(str(changed.value))
    wrong = url.replace(password, password[::-1])
    with pytest.raises(JournalError) as refused:
        PostgresJournal(wrong)
    assert "password authentication failed" in str(refused.value)
    shown += [str(refused.value), caplog.text]
    closed_port = postgres_server.url("journals").replace(str(postgres_server.port), "1")
    with pytest.raises(JournalError, match="PostgreSQL error while opening it") as unreachable:
        PostgresJournal(closed_port)
    shown.append(str(unreachable.value))
    for text in shown:
        assert password not in text and password[::-1] not in text
    assert "bulk@127.0.0.1" in str(refused.value)


def test_the_refusal_of_a_changed_job_says_which_rows_to_delete(journal: PostgresJournal) -> None:
    journal.open_job("spring/t0/1", "fp-1", {})
    with pytest.raises(JournalError) as refused:
        journal.open_job("spring/t0/1", "fp-2", {})
    text = str(refused.value)
    assert "change the job id 'spring'" in text
    assert "delete its rows (job_id = 'spring' OR job_id LIKE 'spring/%')" in text
    assert f'"{journal.schema}".ops' in text


def test_a_version_1_journal_is_migrated_on_open_and_keeps_its_jobs(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Schema versions (Deliver 1: "versioned and migrated on open"): a journal written before version 2
    (no ``async_sets`` table, ``schema_version`` 1) opens as version 2 — the missing table created, one log
    line, its jobs and plans as they were."""
    with PostgresJournal(url) as first:
        first.open_job("old", "fp", {})
        first.add_plans("old", [plan("c1"), plan("c2")])
    sql(url, "DROP TABLE {s}.async_sets")
    sql(url, "UPDATE {s}.journal_meta SET value = '1' WHERE key = 'schema_version'")
    with caplog.at_level(logging.INFO, logger="bulk_engine.journal"):
        with PostgresJournal(url) as reopened:
            assert [op.op_id for op in reopened.iter_ops("old")] == ["c1", "c2"]
            assert reopened.load_async_sets("old") == []
    assert "schema migrated from version 1 to 2" in caplog.text
    assert sql(url, "SELECT value FROM {s}.journal_meta WHERE key = 'schema_version'") == [("2",)]


# --- the lock the server holds -----------------------------------------------------------------------------
def _owner() -> LockOwner:
    return LockOwner.current()


def _terminate_lock_connection(url: str, job_id: str) -> None:
    """End the holder's lock connection on the server (what TCP keepalives do when its host vanishes)."""
    rows = sql(
        url, f"SELECT pg_terminate_backend(backend_pid, 30000) FROM {{s}}.job_locks WHERE job_id = '{job_id}'"
    )
    assert rows == [(True,)]


def test_a_holder_whose_connection_died_is_taken_over_and_its_writes_are_refused(url: str) -> None:
    with PostgresJournal(url) as idle, PostgresJournal(url) as taker_journal:
        owner = _owner()
        idle.acquire_lock("j", owner)
        idle.open_job("j", None, {})
        idle.add_plans("j", [plan("a")])
        with pytest.raises(JobLockedError):
            taker_journal.acquire_lock("j", _owner())  # alive: refused, however long it idles
        _terminate_lock_connection(url, "j")
        taker = _owner()
        taker_journal.acquire_lock("j", taker)  # the server freed the lock
        with pytest.raises(JobLockedError, match=rf"lock was taken over by .*pid {os.getpid()}"):
            idle.mark_sent("j", ["a"])  # the intent is refused, so the batch is never sent
        assert taker_journal.get_ops("j", ["a"])["a"].status is OpStatus.PLANNED
        with pytest.raises(JobLockedError):
            idle.record_outcomes("j", [OutcomeWrite("a", OpStatus.FAILED, 1, False, reason="x")])
        idle.release_lock("j", owner)  # not its lock any more: the taker keeps it
        assert taker_journal.get_lock("j").owner == taker  # type: ignore[union-attr]
        taker_journal.release_lock("j", taker)


def test_a_lost_lock_connection_is_taken_again_when_nobody_took_the_lock(
    url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with PostgresJournal(url) as journal, PostgresJournal(url) as other:
        owner = _owner()
        journal.acquire_lock("j", owner)
        journal.open_job("j", None, {})
        journal.add_plans("j", [plan("a")])
        _terminate_lock_connection(url, "j")
        # the next write checks the lock connection
        monkeypatch.setattr(pg_lock_module, "REFRESH_EVERY_S", 0.0)
        with caplog.at_level(logging.WARNING, logger="bulk_engine.journal"):
            journal.mark_sent("j", ["a"])
        assert "the lock's connection was lost; lock taken again" in caplog.text
        with pytest.raises(JobLockedError, match=rf"pid {os.getpid()}"):
            other.acquire_lock("j", _owner())  # held again
        journal.release_lock("j", owner)
        other.acquire_lock("j", _owner())  # released at once: the advisory lock is freed before closing


def test_a_broken_pooled_connection_is_replaced(url: str) -> None:
    with PostgresJournal(url) as journal:
        journal.open_job("j", None, {})
        ended = sql(
            url,
            "SELECT pg_terminate_backend(pid, 30000) FROM pg_stat_activity "
            "WHERE application_name = 'bulk-engine journal'",
        )
        assert ended and all(row == (True,) for row in ended)
        journal.add_plans("j", [plan("a")])  # retried once on a new connection
        assert [op.op_id for op in journal.iter_ops("j")] == ["a"]


# --- park memory every worker of an account shares ------------------------------------------------------
SCALE = 600.0  # 1 real second = 10 virtual minutes, for the simulator and the engine alike


async def test_a_park_met_by_one_worker_holds_another_workers_job_on_that_account(
    start_sim: Any, postgres_server: PostgresServer
) -> None:
    """Worker 1 meets a block on an account and gives up its ops; worker 2 — another process as far as
    its journal object, engine and governor go — runs *another job* on the same account against the same
    PostgreSQL schema: it starts parked ("restored from the journal", heard by ``on_park`` before anything
    is sent) and sends nothing until the server's regain time."""
    sim = await start_sim(time_scale=SCALE)
    act = sim.accounts[0]
    core = sim.server.core
    url = new_schema_url(postgres_server)
    blocked_for = 1800.0  # 3 s of wall time at SCALE
    fresh = IdempotencyConfig(rebuild="never")  # new jobs: no probes (they would wait the park out)
    config = sim.engine_config(retry=RetryConfig(max_throttle_waits=0), idempotency=fresh)
    with PostgresJournal(url) as worker_1:
        async with BulkEngine(config, clock=ScaledClock(SCALE), journal=worker_1) as one:
            await one.run([campaign_op("seed", act)], job_id="job-1")  # the account's first reading
            start = core.clock.now()
            core.rate_limiter.force_block(act, "ads_management", blocked_for, start)
            first = await one.run([campaign_op(f"a{i}", act) for i in range(5)], job_id="job-1b")
    assert first.counts["failed"] == 5
    sent_by_worker_1 = len(core.http_requests)
    parks: list[Park] = []

    async def wait_it_out(park: Park) -> bool:
        parks.append(park)
        return False

    with PostgresJournal(url) as worker_2:
        config = sim.engine_config(idempotency=fresh)
        async with BulkEngine(config, clock=ScaledClock(SCALE), journal=worker_2) as two:
            second = await two.run(
                [campaign_op(f"b{i}", act) for i in range(5)], job_id="job-2", on_park=wait_it_out
            )
    assert second.counts == {"succeeded": 5, "failed": 0, "skipped": 0}
    assert parks and "restored from the journal" in parks[0].reason
    later = core.http_requests[sent_by_worker_1:]
    assert later and all(r["time"] >= start + blocked_for for r in later), [r["time"] - start for r in later]
