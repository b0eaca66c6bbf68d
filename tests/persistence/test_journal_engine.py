"""The engine with a journal, against every backend: resume, exactly-once creates, refusals, secrets."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import aclosing
from pathlib import Path
from typing import Any

import psycopg
import pytest
from persist_support import JournalFactory, Sim, check_exact, expected_per_type, tree, trees
from pydantic import SecretStr

from bulk_engine import (
    BulkEngine,
    ConfigError,
    Credentials,
    EngineConfig,
    GovernorConfig,
    JournalError,
    Operation,
    OpKind,
    OutcomeState,
    RetryConfig,
)
from bulk_engine.config import IdempotencyConfig
from bulk_engine.execution.events import OperationFinished
from bulk_engine.persistence import JournalSession, MemoryJournal
from bulk_engine.persistence.codec import REDACTED
from bulk_engine.persistence.postgres import PostgresTarget
from bulk_engine.simulator import FaultConfig

StartSim = Callable[..., Any]
RETRY = RetryConfig(max_attempts=12, base_delay_s=0.001, max_delay_s=0.01)


def slow_config(sim: Sim, **overrides: Any) -> EngineConfig:
    """Small batches, one at a time per account: an interruption lands mid-job."""
    one = GovernorConfig(initial_concurrency=1, max_concurrency=1)
    return sim.engine_config(retry=RETRY, max_batch_ops=8, governor=one, **overrides)


async def run_until(engine: BulkEngine, job: Any, job_id: str, stop_after: int) -> int:
    """Run ``job`` and abandon it after ``stop_after`` outcomes, like a crash (nothing is finished)."""
    seen = 0
    async with aclosing(engine.stream(job, job_id=job_id)) as outcomes:
        async for _ in outcomes:
            seen += 1
            if seen >= stop_after:
                break
    return seen


def assert_exact(sim: Sim, ops: list[Operation], job_id: str) -> None:
    exact = check_exact(sim.nodes(), ops, job_id)
    assert exact.ok, (exact.duplicates, exact.missing[:5], exact.unexpected)
    assert exact.per_type == expected_per_type(ops)


async def test_rerun_answers_from_the_journal_and_sends_nothing(
    journals: JournalFactory, start_sim: StartSim
) -> None:
    sim: Sim = await start_sim()
    ops = trees(10, sim.accounts, sim.page_id)
    async with BulkEngine(sim.engine_config(), journal=journals.open()) as engine:
        first = await engine.run(ops, job_id="job-a")
    assert first.ok and first.job_id == "job-a"
    events: list[Any] = []
    async with BulkEngine(sim.engine_config(), journal=journals.reopen(), observer=events.append) as engine:
        again = await engine.run(ops, job_id="job-a")
    assert again.ok and again.http_requests == 0 and again.from_journal == len(ops)
    assert len([e for e in events if isinstance(e, OperationFinished)]) == len(ops)  # progress views see them
    assert {o.op_id: o.graph_id for o in again.outcomes} == {o.op_id: o.graph_id for o in first.outcomes}
    assert_exact(sim, ops, "job-a")


async def test_interrupted_run_is_finished_from_the_journal_alone(
    journals: JournalFactory, start_sim: StartSim
) -> None:
    faults = FaultConfig(null_rate=0.05, drop_after_commit_rate=0.05, latency_ms=2)
    sim: Sim = await start_sim(faults=faults, seed=11)
    ops = trees(40, sim.accounts, sim.page_id)
    config = slow_config(sim)
    async with BulkEngine(config, journal=journals.open()) as engine:
        assert await run_until(engine, ops, "job-b", 30) == 30
    assert len(sim.nodes()) < len(ops)
    journal = journals.reopen()
    job = journal.get_job("job-b")
    assert job is not None and sum(job.counts.values()) == len(ops)  # every plan was journaled
    async with BulkEngine(config, journal=journal) as engine:
        result = await engine.resume("job-b")
    assert result.ok and result.counts["succeeded"] == len(ops)
    assert 0 < result.from_journal < len(ops)
    assert_exact(sim, ops, "job-b")
    counts = journals.reopen().get_job("job-b").counts  # type: ignore[union-attr]
    assert counts["succeeded"] == len(ops)


async def test_streamed_job_resumes_in_plan_order(journals: JournalFactory, start_sim: StartSim) -> None:
    sim: Sim = await start_sim(faults=FaultConfig(null_rate=0.05, latency_ms=2), seed=5)
    ops = trees(30, sim.accounts, sim.page_id)
    config = slow_config(sim, window_ops=40)

    def job() -> Iterable[Operation]:
        yield from ops  # a generator: streamed in windows, not validated whole

    async with BulkEngine(config, journal=journals.open()) as engine:
        await run_until(engine, job(), "job-s", 30)
    assert 0 < len(sim.nodes()) < len(ops)
    journal = journals.reopen()
    assert journal.get_job("job-s").ordered  # type: ignore[union-attr]
    async with BulkEngine(config, journal=journal) as engine:
        result = await engine.resume("job-s")
    assert result.ok and len(result.outcomes) == len(ops)
    assert_exact(sim, ops, "job-s")


async def test_lost_journal_is_rebuilt_from_the_keys_on_the_server(
    journals: JournalFactory, start_sim: StartSim
) -> None:
    sim: Sim = await start_sim(faults=FaultConfig(drop_after_commit_rate=0.05, latency_ms=2), seed=3)
    ops = trees(30, sim.accounts, sim.page_id)
    config = slow_config(sim)
    async with BulkEngine(config, journal=journals.open()) as engine:
        await run_until(engine, ops, "job-c", 30)
    created = len(sim.nodes())
    assert 0 < created < len(ops)
    async with BulkEngine(config, journal=MemoryJournal()) as engine:  # the journal is gone
        result = await engine.run(ops, job_id="job-c")
    assert result.ok
    assert result.recovered >= created  # found by key, not created again
    assert_exact(sim, ops, "job-c")


async def test_fresh_job_probes_each_edge_once_and_looks_nothing_up(
    journals: JournalFactory, start_sim: StartSim
) -> None:
    sim: Sim = await start_sim()
    ops = trees(6, sim.accounts, sim.page_id)
    async with BulkEngine(sim.engine_config(), journal=journals.open()) as engine:
        result = await engine.run(ops, job_id="job-fresh")
    assert result.ok and result.lookups == 0 and result.recovered == 0
    batches = [r for r in sim.server.core.http_requests if r["batch"]]
    probes = len(sim.accounts) * 4  # one per (ad account, edge)
    assert result.http_requests == len(batches) and len(batches) > probes
    async with BulkEngine(sim.engine_config(), journal=MemoryJournal()) as engine:
        no_id = await engine.run(trees(3, sim.accounts, sim.page_id, prefix="n"))
    assert no_id.ok and no_id.lookups == 0  # a new random job id cannot have been run before


async def test_unknown_outcomes_are_reconciled_never_duplicated(
    journals: JournalFactory, start_sim: StartSim
) -> None:
    faults = FaultConfig(null_rate=0.15, drop_after_commit_rate=0.1, transient_rate=0.05)
    sim: Sim = await start_sim(faults=faults, seed=21)
    ops = trees(30, sim.accounts, sim.page_id)
    async with BulkEngine(sim.engine_config(retry=RETRY), journal=journals.open()) as engine:
        result = await engine.run(ops, job_id="job-d")
    assert result.ok
    injected = sim.server.core.faults.injected
    assert injected["null"] > 0 and injected["drop"] > 0
    assert result.unknown_outcomes > 0 and result.lookups > 0 and result.recovered > 0
    assert_exact(sim, ops, "job-d")


async def test_without_keys_unknown_creates_fail_instead_of_duplicating(
    journals: JournalFactory, start_sim: StartSim
) -> None:
    sim: Sim = await start_sim(faults=FaultConfig(null_rate=0.2), seed=2)
    ops = trees(20, sim.accounts, sim.page_id)
    config = sim.engine_config(retry=RETRY, idempotency=IdempotencyConfig(keys="off"))
    async with BulkEngine(config, journal=journals.open()) as engine:
        result = await engine.run(ops, job_id="job-off")
    failed = [o for o in result.outcomes if o.state is OutcomeState.FAILED]
    assert failed and all("no idempotency key" in (o.reason or "") for o in failed)
    names = [n["name"] for n in sim.nodes()]
    assert len(names) == len(set(names))  # nothing created twice
    assert not any("[be:" in name for name in names)


async def test_adlabels_carrier_keeps_names_and_stays_exact(
    journals: JournalFactory, start_sim: StartSim
) -> None:
    sim: Sim = await start_sim(faults=FaultConfig(null_rate=0.15, drop_after_commit_rate=0.1), seed=8)
    ops = trees(20, sim.accounts, sim.page_id)
    config = sim.engine_config(retry=RETRY, idempotency=IdempotencyConfig(keys="adlabels"))
    async with BulkEngine(config, journal=journals.open()) as engine:
        result = await engine.run(ops, job_id="job-l")
    assert result.ok and result.recovered > 0
    session_keys = JournalSession(
        MemoryJournal(), "job-l", fingerprint=None, idempotency=IdempotencyConfig(keys="adlabels")
    ).keys
    by_key: dict[str, int] = {}
    for node in sim.nodes():
        assert "[be:" not in node["name"]
        labels = {label["name"] for label in node["adlabels"]}
        assert session_keys.job_label in labels
        for label in labels - {session_keys.job_label}:
            by_key[label] = by_key.get(label, 0) + 1
    assert by_key == {session_keys.key(op.op_id): 1 for op in ops}


async def test_failed_and_skipped_ops_run_again_on_resume(
    journals: JournalFactory, start_sim: StartSim
) -> None:
    sim: Sim = await start_sim(expired_tokens=(SecretStr("EXPIRED-TOKEN"),))
    ops = trees(5, sim.accounts, sim.page_id)
    expired = sim.engine_config(credentials=Credentials(access_token="EXPIRED-TOKEN"))
    async with BulkEngine(expired, journal=journals.open()) as engine:
        first = await engine.run(ops, job_id="job-e")
    assert first.counts["succeeded"] == 0 and first.counts["failed"] > 0 and first.counts["skipped"] > 0
    async with BulkEngine(sim.engine_config(), journal=journals.reopen()) as engine:
        second = await engine.resume("job-e")
    assert second.ok and second.from_journal == 0
    assert_exact(sim, ops, "job-e")


async def test_changed_operation_is_refused(journals: JournalFactory, start_sim: StartSim) -> None:
    sim: Sim = await start_sim()
    ops = trees(3, sim.accounts, sim.page_id)
    async with BulkEngine(sim.engine_config(), journal=journals.open()) as engine:
        await engine.run(ops, job_id="job-f", fingerprint="fp")
    changed = [*ops[:-1], tree(2, sim.accounts[0], sim.page_id)[-1]]  # the last ad moved account
    before = len(sim.nodes())
    async with BulkEngine(sim.engine_config(), journal=journals.reopen()) as engine:
        with pytest.raises(JournalError, match=r"operation 't2/ad' of job 'job-f' differs"):
            await engine.run(changed, job_id="job-f", fingerprint="fp")
        with pytest.raises(JournalError, match=r"job 'job-f' was started with a different job"):
            await engine.run(changed, job_id="job-f")  # its computed plan fingerprint differs
    assert len(sim.nodes()) == before


async def test_resume_errors_name_the_problem(journals: JournalFactory, start_sim: StartSim) -> None:
    sim: Sim = await start_sim()
    async with BulkEngine(sim.engine_config()) as engine:
        with pytest.raises(ConfigError, match="resume needs a journal"):
            await engine.resume("x")
    async with BulkEngine(sim.engine_config(), journal=journals.open()) as engine:
        with pytest.raises(JournalError, match=r"has no job 'x'"):
            await engine.resume("x")


def test_unkeyed_creates_are_never_reconciled_blind() -> None:
    session = JournalSession(MemoryJournal(), "j", fingerprint=None, idempotency=IdempotencyConfig())
    copy = Operation(op_id="cp", method="POST", path="123/copies", account_id="act_1", kind=OpKind.COPY)
    update = Operation(
        op_id="up", method="POST", path="123", account_id="act_1", kind=OpKind.UPDATE, params={"a": 1}
    )
    session.unknown(copy)
    session.unknown(update)
    assert session.needs_lookup("cp") and not session.needs_lookup("up")  # updates are just retried
    reason = session.lookup_request(copy, lambda ref: "1")
    assert isinstance(reason, str) and "no idempotency key" in reason


SENTINEL_TOKEN = "SENTINEL-TOKEN-4d1c9e0b7a"
SENTINEL_SECRET = "SENTINEL-SECRET-93ab55e1"


async def test_secrets_never_reach_the_journal(
    journals: JournalFactory, start_sim: StartSim, tmp_path: Path
) -> None:
    sim: Sim = await start_sim(
        access_tokens=(SecretStr(SENTINEL_TOKEN),),
        app_secret=SecretStr(SENTINEL_SECRET),
        faults=FaultConfig(null_rate=0.1),
        seed=4,
    )
    credentials = Credentials(access_token=SENTINEL_TOKEN, app_secret=SENTINEL_SECRET)
    proof = credentials.appsecret_proof()
    assert proof
    act = sim.accounts[0]
    read = Operation(
        op_id="read",
        method="GET",
        path=f"{act}/campaigns",
        account_id=act,
        kind=OpKind.READ,
        params={"fields": "id,name", "limit": 1},
    )
    ops = [*trees(4, sim.accounts, sim.page_id), read]
    config = EngineConfig(credentials=credentials, graph_url=sim.url, retry=RETRY, seed=1)
    journal = journals.open()
    async with BulkEngine(config, journal=journal) as engine:
        result = await engine.run(ops, job_id="job-secret")
    assert result.ok
    assert "paging" in result.outcome("read").result  # Graph's paging links carry the token…
    stored = journals.reopen().get_ops("job-secret", ["read"])["read"]
    assert stored.result is not None and REDACTED in stored.result  # …the journal does not
    assert_no_secret(journals, [SENTINEL_TOKEN, SENTINEL_SECRET, proof])


def assert_no_secret(journals: JournalFactory, secrets: list[str]) -> None:
    if journals.kind == "sqlite":
        journals.close_all()
        blobs = [
            p.read_bytes() for p in journals.path.parent.iterdir() if p.name.startswith(journals.path.name)
        ]
        assert blobs
    elif journals.kind == "postgres":  # every row of every table of the schema, as the server holds it
        target = PostgresTarget.parse(journals.url or "")
        with psycopg.connect(target.conninfo, autocommit=True) as conn:
            blobs = [
                str(
                    conn.execute(f'SELECT array_agg(t::text) FROM "{target.schema}".{table} t').fetchone()
                ).encode()
                for table in ("jobs", "ops", "job_locks", "pacing", "runs", "journal_meta")
            ]
        assert b"job-secret" in b"".join(blobs)
    else:
        journal = journals.open()
        blobs = [
            repr(list(journal.iter_ops(j))).encode() + repr(journal.get_job(j)).encode()
            for j in journal.job_ids()
        ]
    for blob in blobs:
        for secret in secrets:
            for form in (secret, secret.replace("-", "%2D")):
                assert form.encode() not in blob


async def test_rebuild_always_looks_every_create_up_and_never_probes(
    journals: JournalFactory, start_sim: StartSim
) -> None:
    sim: Sim = await start_sim()
    ops = trees(4, sim.accounts, sim.page_id)
    config = sim.engine_config(idempotency=IdempotencyConfig(rebuild="always"))
    async with BulkEngine(config, journal=journals.open()) as engine:
        result = await engine.run(ops, job_id="job-always")
    assert result.ok and result.lookups == len(ops) and result.recovered == 0
    assert_exact(sim, ops, "job-always")
    never = sim.engine_config(idempotency=IdempotencyConfig(rebuild="never"))
    calls_before = len(sim.server.core.calls)
    async with BulkEngine(never, journal=MemoryJournal()) as engine:
        fresh = await engine.run(trees(2, sim.accounts, sim.page_id, prefix="x"), job_id="job-never")
    assert fresh.ok and fresh.lookups == 0
    assert len(sim.server.core.calls) - calls_before == 8  # the 8 creates: no probe, no lookup


async def test_rebuild_interrupted_before_its_probes_stays_safe(
    journals: JournalFactory, start_sim: StartSim
) -> None:
    sim: Sim = await start_sim(faults=FaultConfig(latency_ms=2), seed=9)
    ops = trees(20, sim.accounts, sim.page_id)
    config = slow_config(sim)
    async with BulkEngine(config, journal=MemoryJournal()) as engine:  # a first run, journal later lost
        await run_until(engine, ops, "job-r", 20)
    created = len(sim.nodes())
    assert 0 < created < len(ops)
    journal = journals.open()  # a new journal: the rebuild run journals its plans, then dies at once
    session = JournalSession(journal, "job-r", fingerprint=None, idempotency=IdempotencyConfig())
    graph_ids: set[str] = set()
    session.admit(ops, known=graph_ids.__contains__, add_resolved=lambda op_id, result: None)
    session.commit_plans()
    session.close()  # the dead run's lock: a live one would (rightly) refuse the resumed run
    rows = journals.reopen().get_ops("job-r", [op.op_id for op in ops])
    assert all(row.unknown for row in rows.values())  # "may exist" until a probe says otherwise
    async with BulkEngine(config, journal=journals.reopen()) as engine:  # resumed from that journal
        result = await engine.run(ops, job_id="job-r")
    assert result.ok and result.recovered >= created
    assert_exact(sim, ops, "job-r")


async def test_changed_operation_in_a_later_window_of_a_stream_is_refused(
    journals: JournalFactory, start_sim: StartSim
) -> None:
    sim: Sim = await start_sim()
    ops = trees(12, sim.accounts, sim.page_id)
    config = sim.engine_config(window_ops=8)
    async with BulkEngine(config, journal=journals.open()) as engine:
        assert (await engine.run(iter(ops), job_id="job-g")).ok
    changed = [*ops[:-1], tree(11, sim.accounts[1], sim.page_id)[-1]]
    async with BulkEngine(config, journal=journals.reopen()) as engine:
        with pytest.raises(JournalError, match=r"operation 't11/ad' of job 'job-g' differs"):
            await engine.run(iter(changed), job_id="job-g")
