"""The async backend (issue 18) against the simulator's async batch endpoint, on its virtual clock."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest
from async_support import SimTime, store_view
from engine_support import Sim, campaign_op, tree_ops
from rich.console import Console

from bulk_engine import BulkEngine, OpKind, Ref
from bulk_engine.config import AsyncBatchConfig
from bulk_engine.errors import TransportError
from bulk_engine.execution.async_backend import AsyncRunner
from bulk_engine.execution.events import AsyncSetProgress
from bulk_engine.execution.transport import HttpAnswer
from bulk_engine.operations import parse_job, run_job
from bulk_engine.persistence import AsyncSetRecord, SqliteJournal
from bulk_engine.persistence.ephemeral import EphemeralJournal
from bulk_engine.planning.graph import DependencyGraph, Operation
from bulk_engine.planning.request_sets import ASYNC_KINDS, choose_backend, next_request_set
from bulk_engine.protocol.async_batch import encode_adbatch, request_name
from bulk_engine.protocol.batch import BatchOp
from bulk_engine.protocol.pages import BadPage, parse_page
from bulk_engine.reporting.live import LiveView
from bulk_engine.reporting.recorder import RunRecorder
from bulk_engine.results import JobResult

STANDARD = {"access_tier": "standard_access"}


def trees(sim: Sim, n: int, prefix: str = "t") -> list[Operation]:
    act = sim.accounts[0]
    return [op for i in range(n) for op in tree_ops(f"{prefix}{i}", act, sim.page_id)]


def submits(sim: Sim) -> int:
    """Sets the simulator accepted (every POST to async_batch_requests that created one)."""
    return sum(1 for n in sim.server.core.store.nodes("async_request_set"))


async def run(sim: Sim, ops: list[Operation], backend: str, **config: Any) -> JobResult:
    cfg = sim.engine_config(async_batch=AsyncBatchConfig(**config.pop("async_batch", {})), **config)
    async with BulkEngine(cfg, clock=SimTime(sim.server.core.clock)) as engine:
        return await engine.run(ops, job_id="job-1", backend=backend)  # type: ignore[arg-type]


async def test_a_small_tree_job_runs_as_request_sets(start_sim: Any) -> None:
    sim = await start_sim(**STANDARD)
    ops = trees(sim, 30)
    result = await run(sim, ops, "async")
    assert result.counts == {"succeeded": 120, "failed": 0, "skipped": 0}
    assert (result.backend, result.async_sets) == ("async", 1)
    assert submits(sim) == 1
    assert Counter(k for k, _ in store_view(sim.server)) == {
        "campaign": 30,
        "adset": 30,
        "adcreative": 30,
        "ad": 30,
    }


def _states(result: JobResult) -> dict[str, tuple[str, Any]]:
    """Each op's terminal state and the Graph error code it failed with (the ids differ by simulator)."""
    return {o.op_id: (o.state.value, o.error.code if o.error else None) for o in result.outcomes}


async def test_5000_op_trees_end_exactly_as_on_the_sync_backend(start_sim: Any) -> None:
    sims = [await start_sim(**STANDARD), await start_sim(**STANDARD)]
    results = [
        await run(sim, trees(sim, 1250), backend)
        for sim, backend in zip(sims, ("sync", "async"), strict=True)
    ]
    sync, async_ = results
    assert sync.counts == async_.counts == {"succeeded": 5000, "failed": 0, "skipped": 0}
    assert _states(sync) == _states(async_)
    assert store_view(sims[0].server) == store_view(sims[1].server)
    assert async_.async_sets == submits(sims[1]) == 5  # 1,000 requests a set: 250 whole trees each
    assert submits(sims[0]) == 0
    assert async_.http_requests < sync.http_requests / 4  # measured: 31 vs 129


FAULTS = {"transient_rate": 0.01, "drop_after_commit_rate": 0.01, "null_rate": 0.01}


async def test_5000_op_trees_under_faults_end_as_on_sync_without_a_duplicate(start_sim: Any) -> None:
    """Seeded transient errors, null entries and connections dropped after commit: the async backend
    retries, reconciles and ends with the same store as the sync backend (one object per create)."""
    sims = [await start_sim(**STANDARD, faults=FAULTS, seed=3) for _ in range(2)]
    sync, async_ = [
        await run(sim, trees(sim, 1250), backend)
        for sim, backend in zip(sims, ("sync", "async"), strict=True)
    ]
    assert sync.counts == async_.counts == {"succeeded": 5000, "failed": 0, "skipped": 0}
    assert _states(sync) == _states(async_)
    assert store_view(sims[0].server) == store_view(sims[1].server)
    assert async_.async_sets >= 5 and async_.retries > 0


@pytest.mark.parametrize("window_ops", [5000, 100])  # 100: the resume streams the set's ops in 4 windows
async def test_killed_after_submit_the_next_run_polls_the_set_and_never_submits_again(
    start_sim: Any, tmp_path: Path, window_ops: int
) -> None:
    sim = await start_sim(**STANDARD)
    ops = trees(sim, 100)
    cfg = sim.engine_config(window_ops=window_ops)
    clock = SimTime(sim.server.core.clock)
    killed = anyio.CancelScope()

    def kill_once_submitted(event: Any) -> None:
        if isinstance(event, AsyncSetProgress) and event.state == "submitted":
            killed.cancel()  # the process dies right after the set id was journaled

    with SqliteJournal(tmp_path / "j.db") as journal:
        with killed:
            async with BulkEngine(cfg, clock=clock, journal=journal, observer=kill_once_submitted) as engine:
                await engine.run(ops, job_id="job-1", backend="async")
        assert killed.cancelled_caught
        assert submits(sim) == 1
        (pending,) = journal.load_async_sets("job-1")
        assert len(pending.names) == 400
    with SqliteJournal(tmp_path / "j.db") as journal:
        async with BulkEngine(cfg, clock=clock, journal=journal) as engine:
            result = await engine.resume("job-1")
        assert journal.load_async_sets("job-1") == []  # collected
    assert result.counts == {"succeeded": 400, "failed": 0, "skipped": 0}
    assert submits(sim) == 1  # no second submit
    assert result.lookups == 0  # the set's results settled its ops: no lookup by key, no re-send
    assert Counter(k for k, _ in store_view(sim.server)) == {
        "campaign": 100,
        "adset": 100,
        "adcreative": 100,
        "ad": 100,
    }


async def test_a_submit_whose_answer_is_lost_is_found_by_its_name_not_sent_again(start_sim: Any) -> None:
    """The connection drops after Graph created the set: the engine lists the account's sets, finds it by
    its unique name, and collects it (a lookup of each op's key could not prove anything yet)."""
    sim = await start_sim(**STANDARD)
    ops = trees(sim, 50)
    async with BulkEngine(sim.engine_config(), clock=SimTime(sim.server.core.clock)) as engine:
        assert engine._transport is not None
        real_post = engine._transport.post
        lost: list[str] = []

        async def post(path: str, fields: dict[str, str], *files: Any) -> Any:
            answer = await real_post(path, fields, *files)
            if path.endswith("async_batch_requests") and not lost:
                lost.append(path)
                raise TransportError("connection lost after sending (test)", sent=True)
            return answer

        engine._transport.post = post  # type: ignore[method-assign]
        result = await engine.run(ops, job_id="job-1", backend="async")
    assert lost and submits(sim) == 1
    assert result.counts == {"succeeded": 200, "failed": 0, "skipped": 0}
    assert result.async_sets == 1 and result.lookups == 0
    assert len(store_view(sim.server)) == 200


def _with_bad_adsets(sim: Sim, n: int, bad: set[int]) -> list[Operation]:
    """``n`` trees; the ad sets of trees in ``bad`` lack their targeting (Graph refuses them, code 100)."""
    ops = trees(sim, n)
    out: list[Operation] = []
    for op in ops:
        tree = int(op.op_id.split("-")[0][1:])
        if tree in bad and op.op_id.endswith("-as"):
            params = {k: v for k, v in op.params.items() if k != "targeting"}
            op = Operation(
                op_id=op.op_id,
                method=op.method,
                path=op.path,
                account_id=op.account_id,
                kind=op.kind,
                params=params,
            )
        out.append(op)
    return out


async def test_per_request_failures_carry_the_graph_error_and_skip_their_dependents(start_sim: Any) -> None:
    sims = [await start_sim(**STANDARD) for _ in range(2)]
    bad = {3, 17, 41}
    sync, async_ = [
        await run(sim, _with_bad_adsets(sim, 60, bad), backend)
        for sim, backend in zip(sims, ("sync", "async"), strict=True)
    ]
    assert async_.async_sets == 1
    assert async_.counts == sync.counts == {"succeeded": 234, "failed": 3, "skipped": 3}
    for i in bad:
        failed, skipped = async_.outcome(f"t{i}-as"), async_.outcome(f"t{i}-ad")
        assert failed.state.value == "failed" and failed.error is not None
        expected = sync.outcome(f"t{i}-as").error
        assert expected is not None
        assert (failed.error.code, failed.error.message) == (
            expected.code,
            expected.message,
        )  # the same error
        assert skipped.state.value == "skipped"
        assert skipped.reason == sync.outcome(f"t{i}-ad").reason == f"dependency 't{i}-as' failed"
    assert _states(sync) == _states(async_)
    assert store_view(sims[0].server) == store_view(sims[1].server)


async def test_a_set_past_its_deadline_is_canceled_and_reports_what_finished(start_sim: Any) -> None:
    """At 1 request a second, 200 requests take 200 s; the deadline is 60 s: what ran succeeded, the
    requests Graph had not processed are canceled and skipped with the reason, nothing runs afterwards."""
    sim = await start_sim(**STANDARD, async_requests_per_s=1.0)
    ops = trees(sim, 50)
    result = await run(sim, ops, "async", async_batch={"deadline_s": 60.0, "poll_initial_s": 10.0})
    counts = result.counts
    assert counts["failed"] == 0 and counts["succeeded"] + counts["skipped"] == 200
    assert 50 <= counts["succeeded"] <= 80  # ~60 s of processing at 1 a second, plus the grace polls
    skipped = [o for o in result.outcomes if o.state.value == "skipped"]
    canceled = [
        o for o in skipped if "did not complete within 60 s: canceled before it ran" in (o.reason or "")
    ]
    assert canceled and all(
        o in canceled or " skipped" in (o.reason or "") for o in skipped
    )  # or a dependent
    assert submits(sim) == 1
    assert len(store_view(sim.server)) == counts["succeeded"]
    sim.server.core.clock.advance(1000.0)  # nothing canceled runs later
    assert len(store_view(sim.server)) == counts["succeeded"]


async def test_a_stop_cancels_the_set_and_a_resume_finishes_it_without_duplicates(
    start_sim: Any, tmp_path: Path
) -> None:
    """request_stop while Graph works on a set: the set is canceled (S003: requests "not processed yet"),
    the canceled ops are left unfinished, and a resume sends them (now as sync batches) exactly once."""
    sim = await start_sim(**STANDARD, async_requests_per_s=2.0)
    ops = trees(sim, 50)
    cfg = sim.engine_config(async_batch=AsyncBatchConfig(poll_initial_s=10.0))
    clock = SimTime(sim.server.core.clock)
    with SqliteJournal(tmp_path / "j.db") as journal:
        engine = BulkEngine(cfg, clock=clock, journal=journal)

        def stop_on_first_poll(event: Any) -> None:
            if isinstance(event, AsyncSetProgress) and event.state == "in_progress":
                engine.request_stop()

        engine.observer = stop_on_first_poll
        async with engine:
            first = await engine.run(ops, job_id="job-1", backend="async")
        assert first.unfinished and first.counts["failed"] == first.counts["skipped"] == 0
        assert first.counts["succeeded"] + len(first.unfinished) == 200
        async with BulkEngine(cfg, clock=clock, journal=journal) as engine2:
            second = await engine2.resume("job-1")
    assert second.counts == {"succeeded": 200, "failed": 0, "skipped": 0}
    assert second.from_journal == first.counts["succeeded"]
    assert submits(sim) == 1 and second.async_sets == 0  # the remainder went as sync batches
    assert Counter(k for k, _ in store_view(sim.server)) == {
        "campaign": 50,
        "adset": 50,
        "adcreative": 50,
        "ad": 50,
    }


async def test_reads_and_deletes_go_as_sync_batches_beside_the_sets(start_sim: Any) -> None:
    """Only POSTs go into a set (S003: "an array of HTTP POST requests"): a read of the same job is sent
    as a sync batch and references the set's results by their real ids."""
    sim = await start_sim(**STANDARD)
    act = sim.accounts[0]
    ops = trees(sim, 25)
    ops.append(
        Operation(
            op_id="read-c0",
            method="GET",
            path=Ref("t0-c"),
            account_id=act,
            kind=OpKind.READ,
            params={"fields": "name"},
        )
    )
    result = await run(sim, ops, "async")
    assert result.counts == {"succeeded": 101, "failed": 0, "skipped": 0}
    assert result.async_sets == 1
    assert str(result.outcome("read-c0").result["name"]).startswith("t0-c")


def test_the_documented_limits_are_enforced_before_sending() -> None:
    post = BatchOp("POST", "act_1/campaigns", {"name": "x"}, name="a")
    assert encode_adbatch([post]).startswith('[{"name":"a","relative_url":"act_1/campaigns","body":"name=x"')
    with pytest.raises(ValueError, match=r"limit of 1000"):
        encode_adbatch([BatchOp("POST", "act_1/campaigns", {}, name=f"n{i}") for i in range(1001)])
    with pytest.raises(ValueError, match="POSTs only"):
        encode_adbatch([BatchOp("DELETE", "123", {}, name="d")])
    with pytest.raises(ValueError, match="unique name"):
        encode_adbatch([post, post])
    with pytest.raises(ValueError):
        AsyncBatchConfig(max_requests=1001)


def test_request_sets_hold_at_most_max_requests_and_keep_trees_whole() -> None:
    graph = DependencyGraph(op for i in range(600) for op in tree_ops(f"t{i}", "act_1", "page"))
    sizes = []
    while planned := next_request_set(
        graph, "act_1", max_requests=1000, min_requests=1, eligible=lambda op: True
    ):
        sizes.append(len(planned))
        ids = set(planned.op_ids)
        assert all(dep in ids for op in planned.ops for dep in op.dependencies)  # no tree split
        for op in planned.ops:
            graph.mark_succeeded(op.op_id, {"id": "1"})
    assert sizes == [1000, 1000, 400]


def test_a_tree_bigger_than_a_set_continues_in_the_next_with_real_ids() -> None:
    camp = tree_ops("big", "act_1", "page")[0]
    adsets = [
        Operation(
            op_id=f"as{i}", method="POST", path="act_1/adsets", account_id="act_1", kind=OpKind.CREATE_ADSET,
            params={"name": f"as{i}", "campaign_id": Ref(camp.op_id)},
        )
        for i in range(1500)
    ]  # fmt: skip
    graph = DependencyGraph([camp, *adsets])
    first = next_request_set(graph, "act_1", max_requests=1000, min_requests=1, eligible=lambda op: True)
    assert first is not None and len(first) == 1000 and first.ops[0] is camp
    assert (
        next_request_set(graph, "act_1", max_requests=1000, min_requests=1, eligible=lambda op: True) is None
    )
    for op in first.ops:
        graph.mark_succeeded(op.op_id, {"id": "42"})
    second = next_request_set(graph, "act_1", max_requests=1000, min_requests=1, eligible=lambda op: True)
    assert second is not None and len(second) == 501
    (wire,) = second.to_batch_ops(graph.resolve_ref)[:1]
    assert wire.params["campaign_id"] == "42"  # the parent's real id: it is in an earlier set


def test_auto_picks_async_for_large_create_jobs_and_says_why() -> None:
    def ops(n: int) -> list[Operation]:
        return [op for i in range(n) for op in tree_ops(f"t{i}", "act_1", "page")]

    limits = {"max_requests": 1000, "auto_min_ops": 1000, "max_batch_ops": 50, "max_ads_per_batch": 10}
    small = choose_backend("auto", ops(100), **limits)
    assert small.backend == "sync" and "400 creates/copies, fewer than 1000" in small.reason
    big = choose_backend("auto", ops(2500), **limits)
    assert big.backend == "async" and "10000 creates/copies in 10 request sets" in big.reason
    assert choose_backend("auto", None, **limits).backend == "sync"  # a streamed job
    assert choose_backend("async", ops(1), **limits).reason == "async: as configured"


async def test_auto_on_the_engine_reports_its_choice(start_sim: Any) -> None:
    sim = await start_sim(**STANDARD)
    result = await run(sim, trees(sim, 300), "auto")
    assert result.backend == "async" and result.backend_reason.startswith("auto → async: 1200 creates/copies")
    assert result.to_dict()["backend"] == "async"
    assert result.counts["succeeded"] == 1200


def test_a_journal_that_keeps_nothing_keeps_no_sets() -> None:
    journal = EphemeralJournal()
    journal.save_async_set(AsyncSetRecord("j", "set", "act_1", (("a", "a"),), 0.0, set_id="1"))
    assert journal.load_async_sets("j") == []


async def test_a_job_file_task_names_its_backend(start_sim: Any) -> None:
    """``backend: async`` on one task of a job file: that task goes as request sets, the other as batches."""
    sim = await start_sim(**STANDARD)
    campaign = {"objective": "OUTCOME_TRAFFIC", "special_ad_categories": [], "repeat": 30}
    job = parse_job(
        {
            "account_id": sim.accounts[0],
            "tasks": [
                {
                    "type": "create",
                    "key": "sets",
                    "backend": "async",
                    "campaigns": [{"name": "A {n}", **campaign}],
                },
                {"type": "create", "key": "batches", "campaigns": [{"name": "B {n}", **campaign}]},
            ],
        }
    )
    async with BulkEngine(sim.engine_config(), clock=SimTime(sim.server.core.clock)) as engine:
        report = await run_job(engine, job)
    assert report.counts == {"succeeded": 60, "failed": 0, "skipped": 0}
    by_task = {t.key: t.to_result() for t in report.tasks}
    assert (by_task["sets"].backend, by_task["sets"].async_sets) == ("async", 1)
    assert (by_task["batches"].backend, by_task["batches"].async_sets) == ("sync", 0)
    assert submits(sim) == 1


async def test_detached_sets_are_named_in_the_result_and_collected_by_the_next_run(
    start_sim: Any, tmp_path: Path
) -> None:
    """``detach_sets``: the run submits and leaves (no poll), naming the set; a later run after Meta's work
    collects it with one status read and one results read — no second submit, no lookup."""
    sim = await start_sim(**STANDARD)
    ops = trees(sim, 40)
    clock = SimTime(sim.server.core.clock)
    with SqliteJournal(tmp_path / "j.db") as journal:
        async with BulkEngine(sim.engine_config(), clock=clock, journal=journal) as engine:
            first = await engine.run(ops, job_id="job-1", backend="async", detach_sets=True)
            (held,) = first.stopped
            assert held.scope == "async_set" and held.set_id is not None
            assert len(first.unfinished) == 160 and first.http_requests == 4 + 1  # the probes, one submit
            sim.server.core.clock.advance(600.0)  # Meta works on the set meanwhile
            second = await engine.run(ops, job_id="job-1", backend="async", detach_sets=True)
    assert second.counts == {"succeeded": 160, "failed": 0, "skipped": 0}
    assert not second.stopped and second.lookups == 0 and second.http_requests == 2
    assert submits(sim) == 1 and len(store_view(sim.server)) == 160


async def test_unreadable_results_are_reconciled_by_idempotency_key_never_sent_twice(start_sim: Any) -> None:
    """The set ran, but its results page comes back unusable (no request names): every op's outcome is
    unknown, so each create is looked up by its idempotency key — found, so none is sent again."""
    sim = await start_sim(**STANDARD)
    ops = trees(sim, 25)
    async with BulkEngine(sim.engine_config(), clock=SimTime(sim.server.core.clock)) as engine:
        assert engine._transport is not None
        real = engine._transport.post_batch
        garbled: list[int] = []

        async def post_batch(batch_json: str, *files: Any) -> HttpAnswer:
            answer = await real(batch_json, *files)
            if "/requests?" in batch_json and not garbled:
                garbled.append(1)
                page = json.dumps({"data": [{"id": "1", "status": "SUCCESS"}]})
                body = [{"code": 200, "headers": [], "body": page}]
                return HttpAnswer(200, dict(answer.headers), body, json.dumps(body))
            return answer

        engine._transport.post_batch = post_batch  # type: ignore[method-assign]
        result = await engine.run(ops, job_id="job-1", backend="async")
    assert garbled
    assert result.counts == {"succeeded": 100, "failed": 0, "skipped": 0}
    assert result.unknown_outcomes >= 100 and result.recovered == 100  # found by key, not re-sent
    assert submits(sim) == 1 and len(store_view(sim.server)) == 100


def test_the_live_view_counts_sets_submitted_in_progress_and_done() -> None:
    recorder = RunRecorder()
    for event in (
        AsyncSetProgress("act_1", "11", "submitted", 1000, 0),
        AsyncSetProgress("act_1", "12", "submitted", 500, 0),
        AsyncSetProgress("act_1", "11", "in_progress", 1000, 400),
        AsyncSetProgress("act_1", "12", "done", 500, 500),
    ):
        recorder.observe(event)
    assert recorder.set_counts() == (2, 1, 1)
    out = io.StringIO()
    view = LiveView(recorder, "run", Console(file=out, width=300))
    Console(file=out, width=300).print(view._render())
    assert "request sets 2 submitted / 1 in progress / 1 done" in out.getvalue()


# --- exactly-once under odd answers (review of issue 18) ---------------------------------------------------
def _answer(page: Any, like: HttpAnswer | None = None) -> HttpAnswer:
    """A one-entry batch answer whose entry carries ``page`` (HTTP 200)."""
    body = [{"code": 200, "headers": [], "body": json.dumps(page)}]
    return HttpAnswer(200, dict(like.headers) if like else {}, body, json.dumps(body))


def _lose_the_submit_answer(engine: BulkEngine, lost: list[str]) -> None:
    """The first submit reaches Graph (the set is created) but its answer is lost on the way back."""
    assert engine._transport is not None
    real_post = engine._transport.post

    async def post(path: str, fields: dict[str, str], *files: Any) -> Any:
        answer = await real_post(path, fields, *files)
        if path.endswith("async_batch_requests") and not lost:
            lost.append(fields["name"])
            raise TransportError("connection lost after sending (test)", sent=True)
        return answer

    engine._transport.post = post  # type: ignore[method-assign]


def _rewrite_reads(engine: BulkEngine, rewrite: Any) -> list[str]:
    """Route each read batch through ``rewrite(batch_json, real_answer) -> answer | None`` (None: as is);
    a DELETE (a set's cancel) in :data:`REFUSE` is refused without reaching the simulator."""
    assert engine._transport is not None
    real = engine._transport.post_batch
    seen: list[str] = []

    async def post_batch(batch_json: str, *files: Any) -> HttpAnswer:
        seen.append(batch_json)
        if rewrite is REFUSE_CANCEL and '"DELETE"' in batch_json:
            return _answer({"error": {"code": 100, "message": "cannot cancel (test)"}})
        answer = await real(batch_json, *files)
        changed = None if rewrite is REFUSE_CANCEL else rewrite(batch_json, answer)
        return answer if changed is None else changed

    engine._transport.post_batch = post_batch  # type: ignore[method-assign]
    return seen


REFUSE_CANCEL = object()  # _rewrite_reads: every DELETE refused (code 100), nothing else changed


async def test_a_lost_submit_answer_with_the_set_list_unreadable_sends_nothing_again(
    start_sim: Any, tmp_path: Path
) -> None:
    """The submit's answer is lost and ``act_X/async_requests`` is unreadable too: the set may exist, so
    no op is looked up by key or sent again in this run (they end unknown); the next run finds the set by
    its journaled name and collects it — one submit, one object per create."""
    sim = await start_sim(**STANDARD)
    ops = trees(sim, 50)
    clock = SimTime(sim.server.core.clock)
    with SqliteJournal(tmp_path / "j.db") as journal:
        async with BulkEngine(sim.engine_config(), clock=clock, journal=journal) as engine:
            lost: list[str] = []
            _lose_the_submit_answer(engine, lost)
            _rewrite_reads(
                engine,
                lambda batch, real: _answer({"unexpected": True}) if "async_requests" in batch else None,
            )
            first = await engine.run(ops, job_id="job-1", backend="async")
        assert lost and submits(sim) == 1
        assert first.counts["succeeded"] == 0 and first.lookups == 0
        assert len(store_view(sim.server)) == 200  # the set ran: nothing of it was sent a second time
        (pending,) = journal.load_async_sets("job-1")
        assert (pending.name, pending.set_id) == (lost[0], None)
        async with BulkEngine(sim.engine_config(), clock=clock, journal=journal) as engine:
            second = await engine.resume("job-1")
        assert journal.load_async_sets("job-1") == []
    assert second.counts == {"succeeded": 200, "failed": 0, "skipped": 0}
    assert submits(sim) == 1 and len(store_view(sim.server)) == 200


async def test_a_set_missing_from_one_read_of_the_list_is_read_again_before_it_counts_as_absent(
    start_sim: Any,
) -> None:
    """ "Not in the list" proves nothing on one read (a set created a moment ago may not be listed yet):
    the engine reads the list again a little later, finds the set and follows it."""
    sim = await start_sim(**STANDARD)
    ops = trees(sim, 25)
    async with BulkEngine(sim.engine_config(), clock=SimTime(sim.server.core.clock)) as engine:
        lost: list[str] = []
        _lose_the_submit_answer(engine, lost)
        hidden: list[int] = []

        def hide_once(batch: str, real: HttpAnswer) -> HttpAnswer | None:
            if "async_requests" in batch and not hidden:
                hidden.append(1)
                return _answer({"data": [], "paging": {}}, real)
            return None

        _rewrite_reads(engine, hide_once)
        result = await engine.run(ops, job_id="job-1", backend="async")
    assert hidden and submits(sim) == 1
    assert result.counts == {"succeeded": 100, "failed": 0, "skipped": 0}
    assert len(store_view(sim.server)) == 100


async def test_killed_between_the_submit_and_journaling_its_id_the_next_run_finds_the_set_by_name(
    start_sim: Any, tmp_path: Path
) -> None:
    """The process dies after the POST returned, before the set's id was journaled: the set's unique name
    was journaled before the POST, so the next run finds the set by it and collects it (no re-send)."""
    sim = await start_sim(**STANDARD)
    ops = trees(sim, 50)
    cfg = sim.engine_config()
    clock = SimTime(sim.server.core.clock)
    killed = anyio.CancelScope()
    with SqliteJournal(tmp_path / "j.db") as journal:
        with killed:
            async with BulkEngine(cfg, clock=clock, journal=journal) as engine:
                assert engine._transport is not None
                real_post = engine._transport.post

                async def post(path: str, fields: dict[str, str], *files: Any) -> Any:
                    answer = await real_post(path, fields, *files)
                    if path.endswith("async_batch_requests"):
                        killed.cancel()  # dies before the id is journaled
                        await anyio.lowlevel.checkpoint()
                    return answer

                engine._transport.post = post  # type: ignore[method-assign]
                await engine.run(ops, job_id="job-1", backend="async")
        assert killed.cancelled_caught and submits(sim) == 1
        (pending,) = journal.load_async_sets("job-1")
        assert pending.set_id is None and len(pending.names) == 200
    with SqliteJournal(tmp_path / "j.db") as journal:
        async with BulkEngine(cfg, clock=clock, journal=journal) as engine:
            result = await engine.resume("job-1")
        assert journal.load_async_sets("job-1") == []
    assert result.counts == {"succeeded": 200, "failed": 0, "skipped": 0}
    assert result.lookups == 0 and result.async_sets == 0  # followed, not submitted again
    assert submits(sim) == 1 and len(store_view(sim.server)) == 200


@pytest.mark.parametrize("cursors", [None, "x", [], 7])
def test_a_page_whose_cursors_are_not_an_object_is_a_bad_page_never_a_crash(cursors: Any) -> None:
    with pytest.raises(BadPage):
        parse_page({"data": [{"id": "1"}], "paging": {"cursors": cursors, "next": "https://x/?after=1"}})
    assert parse_page({"data": [{"id": "1"}], "paging": {"cursors": cursors}}).after is None


async def test_odd_paging_in_the_set_list_and_the_results_does_not_crash_or_duplicate(start_sim: Any) -> None:
    """``paging.cursors`` null in the set list (after a lost submit answer) and in the results: read as what
    they are (a last page, or unreadable), never an AttributeError that strands the set."""
    sim = await start_sim(**STANDARD)
    ops = trees(sim, 25)
    async with BulkEngine(sim.engine_config(), clock=SimTime(sim.server.core.clock)) as engine:
        lost: list[str] = []
        _lose_the_submit_answer(engine, lost)

        def null_cursors(batch: str, real: HttpAnswer) -> HttpAnswer | None:
            if "async_requests" not in batch and "/requests?" not in batch:
                return None
            page = json.loads(real.body[0]["body"])
            page["paging"] = {"cursors": None}  # no next: the last page
            return _answer(page, real)

        _rewrite_reads(engine, null_cursors)
        result = await engine.run(ops, job_id="job-1", backend="async")
    assert lost and submits(sim) == 1
    assert result.counts == {"succeeded": 100, "failed": 0, "skipped": 0}
    assert result.lookups == 0 and len(store_view(sim.server)) == 100


async def test_an_unreadable_status_does_not_end_the_polling(start_sim: Any) -> None:
    """One status read comes back unusable while the set still runs: the engine polls on (not reading a
    running set's results, which would leave its unfinished requests to key lookups and re-sends)."""
    sim = await start_sim(**STANDARD, async_requests_per_s=2.0)
    ops = trees(sim, 25)
    async with BulkEngine(sim.engine_config(), clock=SimTime(sim.server.core.clock)) as engine:
        garbled: list[int] = []

        def garble_first_status(batch: str, real: HttpAnswer) -> HttpAnswer | None:
            if "is_completed" in batch and not garbled:
                garbled.append(1)
                return _answer({"oops": True}, real)
            return None

        _rewrite_reads(engine, garble_first_status)
        result = await engine.run(ops, job_id="job-1", backend="async")
    assert garbled
    assert result.counts == {"succeeded": 100, "failed": 0, "skipped": 0}
    assert result.lookups == 0 and result.unknown_outcomes == 0
    assert submits(sim) == 1 and len(store_view(sim.server)) == 100


async def test_a_request_missing_from_the_results_of_a_running_set_is_still_running(start_sim: Any) -> None:
    """Given up past its deadline with its cancel refused, the set still runs; a request absent from its
    results is "still running" (unknown, never looked up or re-sent), so nothing is created twice."""
    sim = await start_sim(**STANDARD, async_requests_per_s=1.0)
    act = sim.accounts[0]
    ops = [campaign_op(f"c{i}", act) for i in range(100)]  # ~55 run before the set is given up
    cfg = {"deadline_s": 30.0, "poll_initial_s": 5.0}
    async with BulkEngine(
        sim.engine_config(async_batch=AsyncBatchConfig(**cfg)), clock=SimTime(sim.server.core.clock)
    ) as engine:
        assert engine._transport is not None
        real = engine._transport.post_batch

        async def post_batch(batch_json: str, *files: Any) -> HttpAnswer:
            if '"DELETE"' in batch_json:  # refused: Graph goes on with the set
                return _answer({"error": {"code": 100, "message": "cannot cancel (test)"}})
            answer = await real(batch_json, *files)
            if "/requests?" in batch_json:
                page = json.loads(answer.body[0]["body"])
                page["data"] = [r for r in page["data"] if request_name(r) != "c99"]
                return _answer(page, answer)
            return answer

        engine._transport.post_batch = post_batch  # type: ignore[method-assign]
        result = await engine.run(ops, job_id="job-1", backend="async")
    missing = result.outcome("c99")
    assert missing.state.value == "failed" and "may still run on the server" in (missing.reason or "")
    assert result.lookups == 0 and result.counts["succeeded"] < 100
    sim.server.core.clock.advance(1000.0)  # the set runs on: still one object per create
    assert submits(sim) == 1
    assert len(store_view(sim.server)) == 100


async def test_a_refused_cancel_after_a_stop_ends_the_run_after_the_grace_polls(start_sim: Any) -> None:
    """request_stop while the set runs, and Graph refuses the DELETE: no hot loop of cancels — one cancel,
    the grace polls ``poll_initial_s`` apart, then the run ends with the set left for the next run."""
    sim = await start_sim(**STANDARD, async_requests_per_s=0.5)
    ops = trees(sim, 25)
    cfg = sim.engine_config(async_batch=AsyncBatchConfig(poll_initial_s=10.0))
    engine = BulkEngine(cfg, clock=SimTime(sim.server.core.clock))

    def stop_on_first_poll(event: Any) -> None:
        if isinstance(event, AsyncSetProgress) and event.state == "in_progress":
            engine.request_stop()

    engine.observer = stop_on_first_poll
    with anyio.fail_after(60):  # a guard on real time: before the fix this loop never yielded to the clock
        async with engine:
            seen = _rewrite_reads(engine, REFUSE_CANCEL)
            result = await engine.run(ops, job_id="job-1", backend="async")
    assert sum('"DELETE"' in b for b in seen) == 1
    assert sum("is_completed" in b for b in seen) <= 2 + 6  # polls before the stop, then 1 + 5 grace
    assert submits(sim) == 1 and result.lookups == 0
    sim.server.core.clock.advance(1000.0)
    assert len(store_view(sim.server)) == 100  # the set ran on; nothing sent a second time


async def test_past_the_deadline_with_the_cancel_refused_the_set_is_given_up_not_polled_forever(
    start_sim: Any, tmp_path: Path
) -> None:
    """A set that would take 200 s, a 30 s deadline, every DELETE refused: given up after the grace polls
    (unknown, journaled); the next run reads the rest of its results from it — no duplicate."""
    sim = await start_sim(**STANDARD, async_requests_per_s=0.5)
    ops = trees(sim, 25)
    cfg = sim.engine_config(async_batch=AsyncBatchConfig(deadline_s=30.0, poll_initial_s=5.0))
    clock = SimTime(sim.server.core.clock)
    with SqliteJournal(tmp_path / "j.db") as journal:
        async with BulkEngine(cfg, clock=clock, journal=journal) as engine:
            started = sim.server.core.clock.now()
            _rewrite_reads(engine, REFUSE_CANCEL)
            first = await engine.run(ops, job_id="job-1", backend="async")
            assert sim.server.core.clock.now() - started < 30.0 + 80.0  # not until the set completes (200 s)
        assert first.counts["succeeded"] < 100 and first.lookups == 0
        assert len(journal.load_async_sets("job-1")) == 1  # kept for the next run
        sim.server.core.clock.advance(1000.0)
        async with BulkEngine(cfg, clock=clock, journal=journal) as engine:
            second = await engine.resume("job-1")
    assert second.counts == {"succeeded": 100, "failed": 0, "skipped": 0}
    assert submits(sim) == 1 and len(store_view(sim.server)) == 100


async def test_a_stop_while_the_set_waits_for_the_governor_sends_nothing(start_sim: Any) -> None:
    """request_stop cuts a set's governor wait short like a batch's: its ops go back unsent."""
    sim = await start_sim(**STANDARD)
    ops = trees(sim, 25)
    with anyio.fail_after(30):
        async with BulkEngine(sim.engine_config(), clock=SimTime(sim.server.core.clock)) as engine:
            real_acquire = engine.governor.acquire

            async def acquire(account_id: str, n: int, buc_type: str = "ads_management") -> Any:
                if n > 1:  # the set's booking: the governor makes it wait, and the run is stopped meanwhile
                    engine.request_stop()
                    await anyio.sleep_forever()
                return await real_acquire(account_id, n, buc_type)

            engine.governor.acquire = acquire  # type: ignore[method-assign]
            result = await engine.run(ops, job_id="job-1", backend="async")
    assert len(result.unfinished) == 100 and submits(sim) == 0


def test_marketing_message_creates_never_go_into_a_request_set() -> None:
    assert OpKind.CREATE_OTHER not in ASYNC_KINDS
    graph = DependencyGraph()
    graph.add(
        Operation(
            op_id=f"m{i}",
            method="POST",
            path="act_1/messages",
            account_id="act_1",
            kind=OpKind.CREATE_OTHER,
            params={"name": f"m{i}"},
        )
        for i in range(5)
    )
    eligible = lambda op: op.kind in ASYNC_KINDS  # noqa: E731
    assert next_request_set(graph, "act_1", max_requests=10, min_requests=1, eligible=eligible) is None


async def test_the_store_view_runs_every_set_first_so_an_unread_set_shows(start_sim: Any) -> None:
    """The simulator runs a set only when it is read: store_view advances every set first, so a set nobody
    reads again (abandoned, or submitted twice) shows in a no-duplicate assertion."""
    sim = await start_sim(**STANDARD)
    ops = trees(sim, 5)
    async with BulkEngine(sim.engine_config(), clock=SimTime(sim.server.core.clock)) as engine:
        result = await engine.run(ops, job_id="job-1", backend="async", detach_sets=True)
    assert len(result.unfinished) == 20 and submits(sim) == 1
    sim.server.core.clock.advance(600.0)
    assert len(store_view(sim.server)) == 20  # nobody read the set since it was submitted


async def test_the_tally_of_sets_in_progress_never_goes_negative_for_adopted_sets(
    start_sim: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A set adopted from the journal counts as in progress while it is followed, and 0 once collected."""
    runners: list[AsyncRunner] = []

    class Recorded(AsyncRunner):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            runners.append(self)

    monkeypatch.setattr("bulk_engine.engine.AsyncRunner", Recorded)
    sim = await start_sim(**STANDARD)
    ops = trees(sim, 10)
    clock = SimTime(sim.server.core.clock)
    with SqliteJournal(tmp_path / "j.db") as journal:
        async with BulkEngine(sim.engine_config(), clock=clock, journal=journal) as engine:
            await engine.run(ops, job_id="job-1", backend="async", detach_sets=True)
            sim.server.core.clock.advance(600.0)
            second = await engine.run(ops, job_id="job-1", backend="async")
    assert second.counts == {"succeeded": 40, "failed": 0, "skipped": 0}
    assert [(r.sets.submitted, r.sets.in_progress, r.sets.done) for r in runners] == [(1, 0, 0), (0, 0, 1)]
