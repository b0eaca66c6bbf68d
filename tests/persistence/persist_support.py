"""Shared helpers for the journal tests: jobs of campaign trees, store inspection, exactness checks."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import engine_support
import psycopg

from bulk_engine import Job, Operation, OpKind
from bulk_engine.persistence import Journal, KeyScheme, MemoryJournal, SqliteJournal
from bulk_engine.persistence.keys import key_in_name
from bulk_engine.persistence.lock import LockOwner
from bulk_engine.persistence.postgres import PostgresJournal, PostgresTarget

TARGETING = {"geo_locations": {"countries": ["US"]}}
TYPES = ("campaign", "adset", "adcreative", "ad")


class Sim(engine_support.Sim):
    """The engine tests' simulator handle, plus a snapshot of the ad objects for exactness checks."""

    def nodes(self) -> list[dict[str, Any]]:
        return self.server.core.store.snapshot(TYPES)


def tree(i: int, act: str, page_id: str, prefix: str = "t") -> list[Operation]:
    """campaign → ad set → creative → ad (4 creates; op ids ``<prefix><i>/c``, ``/as``, ``/cr``, ``/ad``)."""
    job = Job(act)
    base = f"{prefix}{i}"
    ids = (f"{base}/c", f"{base}/as", f"{base}/cr", f"{base}/ad")
    names = (f"Campaign {i}", f"Ad set {i}", f"Creative {i}", f"Ad {i}")
    engine_support.add_tree(job, ids, names, page_id, f"Hello {i}")
    return job.operations()


def trees(n: int, accounts: list[str], page_id: str, prefix: str = "t") -> list[Operation]:
    ops: list[Operation] = []
    for i in range(n):
        ops.extend(tree(i, accounts[i % len(accounts)], page_id, prefix))
    return ops


@dataclass
class Exactness:
    per_type: dict[str, int]
    duplicates: dict[str, int]  # key -> copies beyond the first
    missing: list[str]  # op ids without an object
    unexpected: int  # objects carrying no key of the job

    @property
    def ok(self) -> bool:
        return not self.duplicates and not self.missing and not self.unexpected


def check_exact(nodes: Iterable[dict[str, Any]], ops: Iterable[Operation], job_id: str) -> Exactness:
    """Compare the store with the job: one object per create op, found by its idempotency key."""
    keys = KeyScheme(job_id)
    expected = {keys.key(op.op_id): op for op in ops if op.kind.value.startswith("create_")}
    per_type: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    unexpected = 0
    for node in nodes:
        if node["type"] not in TYPES:
            continue
        per_type[node["type"]] += 1
        key = key_in_name(str(node.get("name", "")))
        if key is None or key not in expected:
            unexpected += 1
            continue
        seen[key] += 1
    duplicates = {key: count - 1 for key, count in seen.items() if count > 1}
    missing = sorted(op.op_id for key, op in expected.items() if seen[key] == 0)
    return Exactness(dict(per_type), duplicates, missing, unexpected)


def expected_per_type(ops: Iterable[Operation]) -> dict[str, int]:
    names = {
        OpKind.CREATE_CAMPAIGN: "campaign",
        OpKind.CREATE_ADSET: "adset",
        OpKind.CREATE_CREATIVE: "adcreative",
        OpKind.CREATE_AD: "ad",
    }
    return dict(Counter(names[op.kind] for op in ops if op.kind in names))


class JournalFactory:
    """Makes the backend under test; ``reopen()`` gives the same journal as a later process would see.

    ``postgres``: ``url`` names a schema of its own on the session's server (tests/pg_server.py)."""

    def __init__(self, kind: str, tmp_path: Path, url: str | None = None) -> None:
        self.kind = kind
        self.path = tmp_path / "journal.db"
        self.url = url
        self._memory: MemoryJournal | None = None
        self._open: list[Journal] = []

    @property
    def durable(self) -> bool:
        """Whether another journal object (another process) sees what this one wrote."""
        return self.kind != "memory"

    def open(self) -> Journal:
        journal: Journal
        if self.kind == "sqlite":
            journal = SqliteJournal(self.path)
        elif self.kind == "postgres":
            assert self.url is not None
            journal = PostgresJournal(self.url)
        else:
            if self._memory is None:
                self._memory = MemoryJournal()
            journal = self._memory
        self._open.append(journal)
        return journal

    def reopen(self) -> Journal:
        if self.durable:
            for journal in self._open:
                journal.close()
            self._open.clear()
        return self.open()

    # --- dead lock holders, as each backend sees them -----------------------------------------------
    def leave_lock(self, journal: Journal, job_id: str, owner: LockOwner) -> None:
        """What a run killed while holding ``job_id``'s lock leaves behind: its lock record. (PostgreSQL: the
        ``job_locks`` row alone — the server released the advisory lock with the dead run's connection.)"""
        if self.kind != "postgres":
            journal.acquire_lock(job_id, owner)
            return
        target = PostgresTarget.parse(self.url or "")
        now = time.time()
        with psycopg.connect(target.conninfo, autocommit=True) as conn:
            conn.execute(
                f'INSERT INTO "{target.schema}".job_locks (job_id, owner, pid, host, process, acquired_at, '
                "heartbeat_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (job_id, owner.token, owner.pid, owner.host, owner.process, now, now),
            )

    def holder_dies(self, taker: Journal, job_id: str) -> str:
        """The live holder of ``job_id``'s lock (another host's) is now dead as ``taker`` can tell, and the
        words of the takeover's WARNING that say why: SQLite and memory — its lease ran out (``taker``'s lease
        set to 0); PostgreSQL — its lock connection dropped (ended by the server, as when its host vanishes)."""
        if self.kind != "postgres":
            assert isinstance(taker, SqliteJournal | MemoryJournal)
            taker.lease_ttl_s = 0.0  # as if the holder had not written a heartbeat for longer than the lease
            return "no heartbeat for"
        target = PostgresTarget.parse(self.url or "")
        with psycopg.connect(target.conninfo, autocommit=True) as conn:
            row = conn.execute(
                f'SELECT pg_terminate_backend(backend_pid, 30000) FROM "{target.schema}".job_locks '
                "WHERE job_id = %s",
                (job_id,),
            ).fetchone()
        assert row == (True,), row
        return "connection to the PostgreSQL server is gone"

    def close_all(self) -> None:
        if self.durable:
            for journal in self._open:
                journal.close()
        self._open.clear()
