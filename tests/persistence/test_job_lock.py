"""One job, one runner: the per-(journal, job id) lock, against every backend, across processes, in the engine."""

from __future__ import annotations

import logging
import os
import re
import select
import socket
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import aclosing, closing, contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from persist_support import JournalFactory, Sim, check_exact, expected_per_type, trees
from pg_server import new_schema_url

from bulk_engine import BulkEngine, EngineConfig, GovernorConfig, JournalError
from bulk_engine.config import IdempotencyConfig
from bulk_engine.errors import JobLockedError
from bulk_engine.execution.events import BatchSent
from bulk_engine.persistence import (
    Journal,
    JournalSession,
    MemoryJournal,
    OpStatus,
    OutcomeWrite,
    PlanWrite,
    SqliteJournal,
    open_journal,
)
from bulk_engine.persistence import lock as lock_module
from bulk_engine.persistence import sqlite as sqlite_module
from bulk_engine.persistence import sqlite_lock as sqlite_lock_module
from bulk_engine.persistence.lock import JobLock, LockOwner
from bulk_engine.simulator import FaultConfig

ROOT = Path(__file__).resolve().parents[2]
HOST = socket.gethostname()
TIMEOUT_S = 60.0  # bounds every wait on a child process
ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00"
StartSim = Callable[..., Any]


def session(journal: Journal, job_id: str = "j", fingerprint: str | None = None) -> JournalSession:
    return JournalSession(journal, job_id, fingerprint=fingerprint, idempotency=IdempotencyConfig())


def second(journals: JournalFactory) -> Journal:
    """The journal as another session sees it: another connection to the file (SQLite), the same object."""
    return journals.open()


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    assert child.wait(timeout=TIMEOUT_S) == 0
    return child.pid


def lock_of(journal: Journal, job_id: str = "j") -> JobLock:
    found = journal.get_lock(job_id)
    assert found is not None, f"job {job_id} is not locked"
    return found


def foreign(pid: int, host: str = HOST, process: str = "") -> LockOwner:
    return LockOwner(uuid.uuid4().hex, pid, host, process)


# --- the lock, against every backend ------------------------------------------------------------------
def test_second_session_of_a_job_is_refused_naming_the_holder(journals: JournalFactory) -> None:
    first = session(journals.open())
    with pytest.raises(JobLockedError) as refused:
        session(second(journals))
    message = str(refused.value)
    assert f"pid {os.getpid()} on host {HOST}" in message and "another session of this process" in message
    assert "job 'j' is being run by" in message
    assert "Wait for it to finish, or stop it; a lock left by a dead process is taken over" in message
    assert refused.value.pid == os.getpid() and refused.value.host == HOST
    assert refused.value.acquired_at is not None
    assert isinstance(refused.value, JournalError)  # the CLI and Airflow report it like other refusals
    assert re.search(rf"since {ISO}", message)
    first.close()


def test_a_refused_session_changes_nothing_in_the_journal(journals: JournalFactory) -> None:
    journal = journals.open()
    holder = session(journal, fingerprint=None)
    with pytest.raises(JobLockedError):  # not "a different job": the lock is checked before the job
        session(second(journals), fingerprint="fp-other")
    job = journal.get_job("j")
    assert job is not None and job.fingerprint is None
    other_host = foreign(os.getpid(), host="other-host.invalid")
    journal.acquire_lock("new-job", other_host)  # a live run elsewhere, before it opened its job
    with pytest.raises(JobLockedError, match=r"pid \d+ on host other-host\.invalid"):
        session(second(journals), "new-job")
    assert journal.get_job("new-job") is None and "new-job" not in journal.job_ids()
    assert lock_of(journal, "new-job").owner == other_host
    holder.close()


def test_other_jobs_of_the_journal_run_meanwhile(journals: JournalFactory) -> None:
    a = session(journals.open(), "job-a")
    b = session(second(journals), "job-b")
    assert a.lock_owner is not None and b.lock_owner is not None
    assert a.lock_owner.token != b.lock_owner.token
    a.close()
    b.close()


def test_close_releases_the_lock_and_is_idempotent(journals: JournalFactory) -> None:
    journal = journals.open()
    first = session(journal)
    assert journal.get_lock("j") is not None
    first.close()
    first.close()
    assert journal.get_lock("j") is None
    again = session(second(journals))  # a later run of the job starts at once
    assert lock_of(journals.open()).owner == again.lock_owner
    again.close()


def test_a_session_refused_for_another_reason_gives_the_lock_back(journals: JournalFactory) -> None:
    journal = journals.open()
    session(journal, fingerprint="fp-1").close()
    with pytest.raises(JournalError, match="was started with a different job"):
        session(second(journals), fingerprint="fp-2")
    assert journal.get_lock("j") is None
    session(second(journals), fingerprint="fp-1").close()


def test_release_only_removes_its_own_lock(journals: JournalFactory) -> None:
    journal = journals.open()
    holder = session(journal)
    journal.release_lock("j", foreign(os.getpid()))  # somebody else's token: not theirs to release
    assert lock_of(journal).owner == holder.lock_owner
    with pytest.raises(JobLockedError):
        session(second(journals))
    holder.close()


def test_lock_of_a_dead_process_is_taken_over_with_a_warning(
    journals: JournalFactory, caplog: pytest.LogCaptureFixture
) -> None:
    journal = journals.open()
    pid = dead_pid()
    journals.leave_lock(journal, "j", foreign(pid))  # what a killed run leaves behind
    with caplog.at_level(logging.WARNING, logger="bulk_engine.journal"):
        taker = session(second(journals))
    assert lock_of(journals.open()).owner == taker.lock_owner
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"pid {pid} on host {HOST}" in w and "no longer exists" in w for w in warnings), warnings
    taker.close()


def test_lock_of_an_earlier_process_with_this_pid_is_taken_over(
    journals: JournalFactory, caplog: pytest.LogCaptureFixture
) -> None:
    journal = journals.open()
    left = foreign(os.getpid())  # a restarted container: same host name, same pid, another process
    journals.leave_lock(journal, "j", left)
    lock_module.let_go(left.token)  # no session of this process holds it
    with caplog.at_level(logging.WARNING, logger="bulk_engine.journal"):
        session(second(journals)).close()
    assert "an earlier process with the same pid" in caplog.text


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process identity needs /proc (Linux)")
@pytest.mark.parametrize(
    ("process", "reason"),
    [("another-boot:1", "the host rebooted since"), ("BOOT:1", "now belongs to another process")],
)
def test_a_reused_pid_does_not_keep_a_dead_lock(
    journals: JournalFactory, caplog: pytest.LogCaptureFixture, process: str, reason: str
) -> None:
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    journal = journals.open()
    journals.leave_lock(
        journal, "j", foreign(os.getppid(), process=process.replace("BOOT", boot))
    )  # live pid
    with caplog.at_level(logging.WARNING, logger="bulk_engine.journal"):
        session(second(journals)).close()
    assert reason in caplog.text


def test_another_hosts_lock_is_kept_while_its_holder_lives(
    journals: JournalFactory, caplog: pytest.LogCaptureFixture
) -> None:
    journal = journals.open()
    journal.acquire_lock("j", foreign(12345, host="worker-7.invalid"))
    with pytest.raises(JobLockedError, match=r"pid 12345 on host worker-7\.invalid"):
        session(second(journals))
    taker_journal = second(journals)
    why = journals.holder_dies(taker_journal, "j")  # SQLite: its lease ran out; PostgreSQL: its connection
    with caplog.at_level(logging.WARNING, logger="bulk_engine.journal"):
        taker = session(taker_journal)
    assert "pid 12345 on host worker-7.invalid" in caplog.text and why in caplog.text
    taker.close()


def test_refresh_lock_writes_the_heartbeat_and_refuses_a_non_owner(journals: JournalFactory) -> None:
    journal = journals.open()
    holder = session(journal)
    assert holder.lock_owner is not None
    before = lock_of(journal).heartbeat_at
    journal.refresh_lock("j", holder.lock_owner)
    assert lock_of(journal).heartbeat_at >= before
    with pytest.raises(JobLockedError, match="taken over"):
        journal.refresh_lock("j", foreign(os.getpid()))
    holder.close()


def test_memory_journal_locks_are_per_journal() -> None:
    a, b = MemoryJournal(), MemoryJournal()
    first = session(a)
    session(b).close()  # another journal: another job as far as locks go
    with pytest.raises(JobLockedError):
        session(a)
    first.close()


# --- SQLite: fencing, heartbeats, schema migration ----------------------------------------------------
def test_a_run_whose_lock_was_taken_over_stops_writing(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    with SqliteJournal(path) as idle, SqliteJournal(path, lease_ttl_s=0.0) as taker_journal:
        idle.acquire_lock("j", foreign(4242, host="idle-host.invalid"))  # idle's run, as its host sees it
        idle.open_job("j", None, {})
        idle.add_plans("j", [PlanWrite("a", "{}", "d-a", "create_campaign", "act_1", True)])
        taker = session(taker_journal)  # idle's heartbeat is "too old": taken over
        with pytest.raises(JobLockedError, match=rf"lock was taken over by .*pid {os.getpid()}"):
            idle.mark_sent("j", ["a"])  # the intent is refused, so the batch is never sent
        assert taker_journal.get_ops("j", ["a"])["a"].status is OpStatus.PLANNED
        with pytest.raises(JobLockedError):
            idle.record_outcomes("j", [OutcomeWrite("a", OpStatus.FAILED, 1, False, reason="x")])
        with pytest.raises(JobLockedError):
            idle.mark_unknown("j", ["a"], False)
        with pytest.raises(JobLockedError):
            idle.add_plans("j", [PlanWrite("b", "{}", "d-b", "create_campaign", "act_1", True)])
        with pytest.raises(JobLockedError):
            idle.refresh_lock("j", foreign(4242))
        taker.close()


def test_writes_refresh_the_heartbeat_at_most_every_refresh_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SqliteJournal(tmp_path / "jobs.db") as journal:
        holder = session(journal)
        journal.add_plans("j", [PlanWrite("a", "{}", "d-a", "create_campaign", "act_1", True)])
        beat = lock_of(journal).heartbeat_at
        journal.mark_sent("j", ["a"])  # within REFRESH_EVERY_S of taking it: no extra write
        assert lock_of(journal).heartbeat_at == beat
        monkeypatch.setattr(sqlite_lock_module, "REFRESH_EVERY_S", 0.0)
        journal.mark_sent("j", ["a"])
        assert lock_of(journal).heartbeat_at > beat
        holder.close()


def test_journal_close_releases_its_locks(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    journal = SqliteJournal(path)
    holder = session(journal)
    journal.close()
    holder.close()  # after its journal: nothing to do, no error
    with SqliteJournal(path) as again:
        assert again.get_lock("j") is None
        session(again).close()


def test_an_old_journal_opens_and_gets_the_lock_table(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with SqliteJournal(path) as journal:
        journal.open_job("j", "fp", {})
    db = sqlite3.connect(path)  # what bulk-engine with schema 1 wrote
    db.execute("DROP TABLE job_locks")
    db.execute("DROP TABLE pacing")
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    with SqliteJournal(path) as journal:
        assert journal.get_job("j") is not None
        session(journal, fingerprint="fp").close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == sqlite_module.SCHEMA_VERSION == 5
    assert db.execute("SELECT count(*) FROM sqlite_master WHERE name='job_locks'").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM sqlite_master WHERE name='pacing'").fetchone()[0] == 1
    db.close()


# --- two processes on one journal (an SQLite file, a PostgreSQL schema) ------------------------------
CHILD = """
import sys
from bulk_engine.config import IdempotencyConfig
from bulk_engine.persistence import JournalSession, open_journal

journal = open_journal(sys.argv[1])
session = JournalSession(journal, sys.argv[2], fingerprint=None, idempotency=IdempotencyConfig())
print("locked", flush=True)
sys.stdin.readline()
session.close()
journal.close()
print("released", flush=True)
"""


@pytest.fixture(params=["sqlite", "postgres"])
def shared_journal(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """What two processes open as one journal: a file, or a schema on the session's PostgreSQL server."""
    if request.param == "sqlite":
        return str(tmp_path / "jobs.db")
    return new_schema_url(request.getfixturevalue("postgres_server"))


@contextmanager
def holder_process(path: str, job_id: str) -> Iterator[subprocess.Popen[str]]:
    """A child process holding a session of ``job_id`` open (it has printed "locked"); killed at the end."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), job_id],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = read_line(proc)
        assert line == "locked", proc.stderr.read() if proc.stderr and proc.poll() is not None else line
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=TIMEOUT_S)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def read_line(proc: subprocess.Popen[str]) -> str:
    """The child's next stdout line, waiting at most TIMEOUT_S (never a sleep)."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], TIMEOUT_S)
    assert ready, f"no line from the child within {TIMEOUT_S} s"
    return proc.stdout.readline().strip()


@pytest.mark.skipif(sys.platform == "win32", reason="select() on pipes and SIGKILL are POSIX")
def test_another_process_is_refused_then_takes_over_once_it_is_killed(
    shared_journal: str, caplog: pytest.LogCaptureFixture
) -> None:
    with holder_process(shared_journal, "job-x") as proc, closing(open_journal(shared_journal)) as journal:
        with pytest.raises(JobLockedError) as refused:
            session(journal, "job-x")
        assert f"pid {proc.pid} on host {HOST}" in str(refused.value) and refused.value.pid == proc.pid
        assert "another session of this process" not in str(refused.value)
        assert journal.get_job("job-x") is not None  # the child's; the refusal wrote nothing
        session(journal, "job-y").close()  # other jobs of the file are free
        proc.kill()  # SIGKILL: no chance to release
        proc.wait(timeout=TIMEOUT_S)
        with caplog.at_level(logging.WARNING, logger="bulk_engine.journal"):
            taker = session(journal, "job-x")
        assert f"pid {proc.pid} on host {HOST}" in caplog.text and "no longer exists" in caplog.text
        taker.close()


@pytest.mark.skipif(sys.platform == "win32", reason="select() on pipes is POSIX")
def test_a_lock_another_process_released_is_free_at_once(
    shared_journal: str, caplog: pytest.LogCaptureFixture
) -> None:
    with holder_process(shared_journal, "job-x") as proc, closing(open_journal(shared_journal)) as journal:
        assert proc.stdin is not None
        proc.stdin.write("done\n")
        proc.stdin.flush()
        assert read_line(proc) == "released"
        with caplog.at_level(logging.WARNING, logger="bulk_engine.journal"):
            session(journal, "job-x").close()
        assert "taking over" not in caplog.text


# --- the engine ------------------------------------------------------------------------------------
def one_at_a_time(sim: Sim) -> EngineConfig:
    """Small batches, one at a time: the first run is still sending when the second starts."""
    one = GovernorConfig(initial_concurrency=1, max_concurrency=1)
    return sim.engine_config(max_batch_ops=8, governor=one)


async def test_two_concurrent_runs_of_one_job_the_second_is_refused_and_sends_nothing(
    tmp_path: Path, start_sim: StartSim
) -> None:
    sim: Sim = await start_sim(faults=FaultConfig(latency_ms=5), seed=3)
    ops = trees(8, sim.accounts, sim.page_id)
    sending = anyio.Event()

    def observe(event: object) -> None:
        if isinstance(event, BatchSent):
            sending.set()

    results: list[Any] = []
    with SqliteJournal(tmp_path / "jobs.db") as journal:
        async with BulkEngine(one_at_a_time(sim), journal=journal, observer=observe) as engine:

            async def first() -> None:
                results.append(await engine.run(ops, job_id="same"))

            with anyio.fail_after(TIMEOUT_S):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(first)
                    await sending.wait()  # the first run is sending
                    assert not results
                    with pytest.raises(JobLockedError, match=f"pid {os.getpid()} on host"):
                        await engine.run(ops, job_id="same")
            (done,) = results
            assert done.ok
            assert len(sim.server.core.http_requests) == done.http_requests  # none of the second run
            exact = check_exact(sim.nodes(), ops, "same")
            assert exact.ok and exact.per_type == expected_per_type(ops)
            again = await engine.run(ops, job_id="same")  # the first released its lock when it ended
    assert again.ok and again.http_requests == 0 and again.from_journal == len(ops)


async def test_an_abandoned_stream_releases_the_lock(tmp_path: Path, start_sim: StartSim) -> None:
    sim: Sim = await start_sim(faults=FaultConfig(latency_ms=2), seed=4)
    ops = trees(6, sim.accounts, sim.page_id)
    with SqliteJournal(tmp_path / "jobs.db") as journal:
        async with BulkEngine(one_at_a_time(sim), journal=journal) as engine:
            async with aclosing(engine.stream(ops, job_id="job-s")) as outcomes:
                async for _ in outcomes:
                    break  # the consumer stops early
            assert journal.get_lock("job-s") is None
            result = await engine.run(ops, job_id="job-s")
    assert result.ok
    exact = check_exact(sim.nodes(), ops, "job-s")
    assert exact.ok and exact.per_type == expected_per_type(ops)
