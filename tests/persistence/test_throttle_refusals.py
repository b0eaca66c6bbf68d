"""A throttled op was refused, not run: the journal must say "not sent", so the next run sends it without a
lookup (issue "defect 5": after a deferral, refused ops were journaled as unknown, each resumption spent its
calls on idempotency lookups and, with a quota of 6 calls an hour, a task looped defer/resume for ever).

Each test runs a journaled job the way the Airflow job operator does: the engine's ``on_park`` stops an account
parked for at least a minute, the run breaks off, the task "defers" until the regain time the park announced,
then runs the same job id again on the same SQLite journal. The engine's clock is the simulator's virtual
clock (:class:`SimTime`): a wait jumps it forward, so nothing waits in real time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
from aiohttp import ClientSession, web
from persist_support import Sim, check_exact, trees

from bulk_engine import BulkEngine, EngineConfig, IdempotencyConfig, JobResult, Operation, OpKind
from bulk_engine.execution.events import Park
from bulk_engine.persistence import SqliteJournal
from bulk_engine.persistence.journal import PacingRecord
from bulk_engine.simulator.clock import VirtualClock
from bulk_engine.simulator.server import serve_app

StartSim = Callable[..., Any]
QUOTA = 6  # calls per (ad account, business use case) per rolling hour
DEFER_AFTER_S = 60.0  # the operator's defer_after_s: parks at least this long stop the account
THROTTLE = {
    "error": {
        "code": 80004,
        "error_subcode": 2446079,
        "message": "(#80004) There have been too many calls to this ad-account. Wait a bit and try again.",
        "type": "OAuthException",
        "is_transient": True,
    }
}


class SimTime:
    """The engine's clock read from the simulator's virtual clock; ``sleep`` jumps the clock forward instead
    of waiting (a sleeper never moves time back, so concurrent sleepers wake in order)."""

    scale = 1.0

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock

    def monotonic(self) -> float:
        return self.clock.now()

    def wall(self) -> float:
        return self.clock.now()

    async def sleep(self, seconds: float) -> None:
        target = self.clock.now() + max(0.0, seconds)
        await anyio.lowlevel.checkpoint()
        behind = target - self.clock.now()
        if behind > 0:
            self.clock.advance(behind)


class WholeBatchThrottleFront:
    """Forwards to the simulator, except the first batch POST that carries a ``/copies`` call: it is refused
    as a whole, HTTP 400 with a throttle envelope (S003 §Handling Errors, code 80004) and usage headers
    announcing an hour's wait. Nothing of it reaches the simulator; ``refused_ops`` counts its ops."""

    def __init__(self, upstream: str, account_id: str) -> None:
        self.upstream = upstream
        self.account_id = account_id
        self.refused_ops = 0

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._session = ClientSession()
        self._runner, port = await serve_app(app)
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        await self._session.close()
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        form = await request.post() if request.method == "POST" else {}
        batch = json.loads(str(form.get("batch", "[]")))
        if not self.refused_ops and any("/copies" in str(entry.get("relative_url")) for entry in batch):
            self.refused_ops = len(batch)
            account = self.account_id.removeprefix("act_")
            usage = {
                account: [
                    {
                        "type": "ads_management",
                        "call_count": 100,
                        "total_cputime": 10,
                        "total_time": 10,
                        "estimated_time_to_regain_access": 60,
                    }
                ]
            }
            return web.json_response(
                THROTTLE, status=400, headers={"X-Business-Use-Case-Usage": json.dumps(usage)}
            )
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            data=body,
            headers={"Content-Type": request.content_type},
        ) as up:
            headers = {k: v for k, v in up.headers.items() if k.lower().startswith("x-")}
            return web.Response(
                body=await up.read(), status=up.status, headers=headers, content_type="application/json"
            )


def copy_op(op_id: str, act: str, source_id: str) -> Operation:
    """``POST /<campaign>/copies``: an unkeyed create (no idempotency key can find it again)."""
    return Operation(
        op_id=op_id,
        method="POST",
        path=(source_id, "copies"),
        account_id=act,
        kind=OpKind.COPY,
        params={"deep_copy": False, "status_option": "PAUSED"},
    )


async def seed_source(sim: Sim) -> str:
    """A campaign to copy, created outside the job; the clock then moves past the window it charged."""
    async with BulkEngine(sim.engine_config(), clock=SimTime(sim.server.core.clock)) as engine:
        seeded = await engine.run(trees(1, sim.accounts[:1], sim.page_id, prefix="src")[:1])
    (outcome,) = seeded.outcomes
    assert outcome.graph_id is not None
    sim.server.core.clock.advance(3601.0)
    return outcome.graph_id


@dataclass
class Run:
    result: JobResult
    flagged: list[str]  # ops the journal holds as "may have run" (looked up first by the next run)


async def run_like_deferring_task(
    config: EngineConfig, clock: SimTime, journal_path: Path, ops: list[Operation], *, max_runs: int
) -> list[Run]:
    """Run ``ops`` as job ``j``; while a run breaks off for a parked account, wait out the park (the task
    defers until the regain time) and run it again, at most ``max_runs`` times."""

    async def stop_long_parks(park: Park) -> bool:
        return park.seconds >= DEFER_AFTER_S

    runs: list[Run] = []
    for _ in range(max_runs):
        with SqliteJournal(journal_path) as journal:
            async with BulkEngine(config, clock=clock, journal=journal) as engine:
                result = await engine.run(ops, job_id="j", on_park=stop_long_parks)
            runs.append(Run(result, [op.op_id for op in journal.iter_ops("j") if op.unknown]))
        if not result.stopped:
            break
        clock.clock.advance(max(p.seconds for p in result.stopped))  # the deferral: until the regain time
    return runs


def assert_refusals_known(runs: list[Run]) -> None:
    """No lookup in any run, and no refused op ever counted or journaled as unknown."""
    assert [r.result.lookups for r in runs] == [0] * len(runs)
    assert [r.result.unknown_outcomes for r in runs] == [0] * len(runs)
    assert [r.flagged for r in runs] == [[]] * len(runs)


def assert_done_once(sim: Sim, ops: list[Operation], runs: list[Run], source_id: str | None = None) -> None:
    """Every op succeeded (the last run answers the earlier runs' successes from the journal), each create
    made exactly one object, and the source (if any) was copied once."""
    last = runs[-1].result
    assert not last.stopped and not last.unfinished, f"still parked after {len(runs)} runs"
    assert last.counts == {"succeeded": len(ops), "failed": 0, "skipped": 0}, last.counts
    keyed = [op for op in ops if op.kind is not OpKind.COPY]
    mine = [n for n in sim.nodes() if n["id"] != source_id and n.get("source_campaign_id") is None]
    exact = check_exact(mine, keyed, "j")
    assert exact.ok, (exact.duplicates, exact.missing, exact.unexpected)
    copies = [n for n in sim.nodes() if n["type"] == "campaign" and n.get("source_campaign_id") is not None]
    assert [c["source_campaign_id"] for c in copies] == ([source_id] if source_id else []), copies


async def test_entries_refused_over_the_quota_are_resent_without_lookups(
    start_sim: StartSim, tmp_path: Path
) -> None:
    """Quota 6/h: in every window the entries sent beyond the quota are refused inside the 200 batch answer
    (throttle errors; their children in the batch answer "depends on a request that failed"), the account is
    parked for about an hour and the run stops. Every later run sends what the window has room for — never a
    lookup — until the job is done, in the fewest runs the quota allows (before: the lookups of the refused
    creates grew until they took every window, and from the 8th run on no op progressed)."""
    sim: Sim = await start_sim(quota_override=QUOTA)
    core = sim.server.core
    clock = SimTime(core.clock)
    source = await seed_source(sim)
    seeded = len(core.calls)
    # more refused ops than the quota: before, the lookups alone filled every later window (a loop)
    ops = [*trees(12, sim.accounts[:1], sim.page_id), copy_op("cp", sim.accounts[0], source)]
    config = sim.engine_config(idempotency=IdempotencyConfig(rebuild="never"))  # no key probes: blind batch
    bound = math.ceil(len(ops) / QUOTA) + 1

    runs = await run_like_deferring_task(config, clock, tmp_path / "j.sqlite", ops, max_runs=3 * bound)

    first = runs[0].result
    assert first.throttle_events > 0 and first.stopped, "the first batch was meant to be refused in part"
    assert_refusals_known(runs)
    assert_done_once(sim, ops, runs, source)
    assert len(runs) <= bound, [r.result.counts for r in runs]
    job_calls = core.calls[seeded:]
    assert not [c.path for c in job_calls if c.method == "GET"]  # not one lookup reached the server
    assert sum(1 for c in job_calls if c.error_code is None) == len(ops)  # each op ran once


async def test_a_batch_refused_as_a_whole_is_resent_without_lookups(
    start_sim: StartSim, tmp_path: Path
) -> None:
    """The batch POST itself is answered HTTP 400 with a throttle envelope: none of its ops ran. The next
    run sends them — no lookup of the keyed creates, and the unkeyed ``/copies`` is sent (before: 4 lookups,
    and the copy failed, "outcome unknown and this operation carries no idempotency key")."""
    sim: Sim = await start_sim(quota_override=50)
    clock = SimTime(sim.server.core.clock)
    source = await seed_source(sim)
    act = sim.accounts[0]
    front = WholeBatchThrottleFront(sim.url, act)
    url = await front.start()
    try:
        ops = [*trees(3, [act], sim.page_id), copy_op("cp", act, source)]
        config = sim.engine_config(graph_url=url, idempotency=IdempotencyConfig(rebuild="never"))
        runs = await run_like_deferring_task(config, clock, tmp_path / "j.sqlite", ops, max_runs=4)
    finally:
        await front.stop()

    assert front.refused_ops > 1 and runs[0].result.stopped, "a batch with the copy was meant to be refused"
    assert_refusals_known(runs)
    assert len(runs) == 2
    assert_done_once(sim, ops, runs, source)


async def test_creates_not_probed_before_a_stop_are_probed_again_not_looked_up(
    start_sim: StartSim, tmp_path: Path
) -> None:
    """A job new to the journal under an explicit id is probed for objects an earlier run elsewhere may have
    made (``rebuild="auto"``); its creates are journaled "may exist" until then. The account is parked from
    the start (an earlier task's park, remembered by the journal), so the run stops before any probe. The
    next run probes each edge once (nothing found: none of them can exist) instead of looking every create
    up (before: one lookup per create)."""
    sim: Sim = await start_sim(quota_override=50)  # room for the probes and the creates in one window
    core = sim.server.core
    clock = SimTime(core.clock)
    act = sim.accounts[0]
    path = tmp_path / "j.sqlite"
    now = clock.wall()
    with SqliteJournal(path) as journal:
        park = PacingRecord(
            f"pair:{act}:ads_management", now + 3600, "throttled (code 80004)", 100.0, {}, now
        )
        journal.save_pacing([park])
    ops = trees(1, [act], sim.page_id)  # 4 creates on 4 edges

    runs = await run_like_deferring_task(sim.engine_config(), clock, path, ops, max_runs=3)

    first = runs[0].result
    assert first.stopped and first.http_requests == 0, "the run was meant to stop before sending anything"
    assert [r.result.lookups for r in runs] == [0, 0] and len(runs) == 2
    probes = [c.path for c in core.calls if c.method == "GET"]
    assert len(probes) == 4, probes  # one per edge, in the second run
    assert_done_once(sim, ops, runs)
