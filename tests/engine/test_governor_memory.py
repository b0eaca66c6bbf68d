"""One governor per engine, remembered by the journal: parks hold the next task, the next run and every
account an app-level throttle covers (issue "Governor": memory across tasks, runs and workers; real scopes).

All against the simulator over HTTP with its virtual clock sped up (``SCALE``): the simulator's request log
gives the time of every HTTP request on the server's clock, so "nothing was sent until the park ended" is
checked against the server, not the engine's own bookkeeping.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import anyio
from aiohttp import web
from engine_support import HOUR, campaign_op, optimal_finish, status_op

from bulk_engine import BulkEngine, GovernorConfig, IdempotencyConfig, RetryConfig, ScaledClock
from bulk_engine.execution.events import Park
from bulk_engine.persistence.sqlite import SqliteJournal
from bulk_engine.simulator.server import serve_app

SCALE = 600.0  # 1 real second = 10 virtual minutes, for the simulator and the engine alike


def _requests_after(core: Any, since: float) -> list[dict[str, Any]]:
    return [r for r in core.http_requests if r["time"] >= since]


async def test_a_park_in_one_task_holds_the_next_task_of_the_job(start_sim: Any) -> None:
    """Tasks of a job run one after another on one engine (``run_job``). The first meets a block of 20
    virtual minutes and gives up its ops (``max_throttle_waits=0``); the server's headers said when access
    comes back, and the second task sends nothing before then. (Before: each task had a governor of its own
    and the next one sent 6 ms after the server said "wait".)"""
    sim = await start_sim(time_scale=SCALE)
    act = sim.accounts[0]
    core = sim.server.core
    blocked_for = 1200.0
    config = sim.engine_config(retry=RetryConfig(max_throttle_waits=0))
    async with BulkEngine(config, clock=ScaledClock(SCALE)) as engine:
        await engine.run([campaign_op("seed", act)])  # the account's first reading
        start = core.clock.now()
        core.rate_limiter.force_block(act, "ads_management", blocked_for, start)
        first = await engine.run([campaign_op(f"a{i}", act) for i in range(5)])
        assert first.counts["failed"] == 5 and engine.governor.parked_for(act) > 0
        seen = len(core.http_requests)
        second = await engine.run([campaign_op(f"b{i}", act) for i in range(5)])
        third = await engine.run([campaign_op(f"c{i}", act) for i in range(5)])
    assert second.counts["succeeded"] == 5 and third.counts["succeeded"] == 5
    later = core.http_requests[seen:]
    assert later and all(r["time"] >= start + blocked_for for r in later), [r["time"] - start for r in later]


async def test_a_journaled_run_killed_while_parked_resumes_parked(start_sim: Any, tmp_path: Path) -> None:
    """Run 1 is throttled, its account parked, and it is killed there (cancelled mid-wait, as a worker
    that dies). Run 2 — a new engine, as far as the governor knows a new process — opens the same journal:
    it starts parked, says so (``on_park`` hears of the park before anything is sent), and sends nothing
    until the server's regain time."""
    sim = await start_sim(time_scale=SCALE)
    act = sim.accounts[0]
    core = sim.server.core
    journal_path = tmp_path / "jobs.sqlite"
    blocked_for = 1800.0  # 3 s of wall time at SCALE
    ops = [campaign_op(f"c{i}", act) for i in range(20)]

    start = core.clock.now()
    core.rate_limiter.force_block(act, "ads_management", blocked_for, start)
    fresh = sim.engine_config(
        idempotency=IdempotencyConfig(rebuild="never")
    )  # a new job: nothing to look for
    with anyio.move_on_after(1.0) as killed:
        async with BulkEngine(fresh, clock=ScaledClock(SCALE), journal=SqliteJournal(journal_path)) as one:
            await one.run(ops, job_id="j")
    assert killed.cancelled_caught, "run 1 was meant to be killed while parked"
    sent_by_run_1 = len(core.http_requests)
    assert any(c.error_code == 80004 for c in core.calls)  # it met the block

    parks: list[Park] = []

    async def wait_it_out(park: Park) -> bool:
        parks.append(park)
        return False

    async with BulkEngine(
        sim.engine_config(), clock=ScaledClock(SCALE), journal=SqliteJournal(journal_path)
    ) as two:
        resumed = await two.run(ops, job_id="j", on_park=wait_it_out)
    assert resumed.counts == {"succeeded": 20, "failed": 0, "skipped": 0}
    assert parks and "restored from the journal" in parks[0].reason
    assert parks[0].seconds > 0.3 * blocked_for
    run_2 = core.http_requests[sent_by_run_1:]
    assert run_2 and all(r["time"] >= start + blocked_for for r in run_2), [r["time"] - start for r in run_2]
    assert not any(c.error_code == 80004 for c in core.calls if c.http_request > sent_by_run_1)


class AppThrottleFront:
    """Forwards to the simulator, except the first batch after ``arm()``: every entry answers Graph's
    app-level throttle, code 4 "Application request limit reached" (S003 §Platform Rate Limits)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.armed = False
        self.throttled_at: float | None = None
        self.requests: list[tuple[float, str]] = []  # (server time, accounts in the batch)
        self.clock: Any = None

    async def start(self) -> str:
        import aiohttp

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._session = aiohttp.ClientSession()
        self._runner, port = await serve_app(app)
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        await self._session.close()
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        form = await request.post() if request.method == "POST" else {}
        batch = json.loads(str(form.get("batch", "[]")))
        now = self.clock.now()
        accounts = {m for op in batch for m in re.findall(r"act_\d+", str(op.get("relative_url", "")))}
        self.requests.append((now, ",".join(sorted(accounts))))
        if self.armed and batch:
            self.armed = False
            self.throttled_at = now
            error = {
                "error": {
                    "code": 4,
                    "message": "(#4) Application request limit reached",
                    "type": "OAuthException",
                }
            }
            entries = [{"code": 400, "headers": [], "body": json.dumps(error)} for _ in batch]
            return web.json_response(entries)
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            data=body,
            headers={"Content-Type": request.content_type},
        ) as up:
            return web.Response(
                body=await up.read(),
                status=up.status,
                headers={
                    k: v
                    for k, v in up.headers.items()
                    if k.lower().startswith("x-") or k.lower() == "content-type"
                },
            )


async def test_an_app_level_throttle_holds_every_account_of_the_job(start_sim: Any) -> None:
    """Code 4 counts every call of the app: the park holds all three accounts, none sends until it lifts,
    then all finish."""
    sim = await start_sim(time_scale=SCALE)
    core = sim.server.core
    front = AppThrottleFront(sim.url)
    front.clock = core.clock
    url = await front.start()
    try:
        one_at_a_time = GovernorConfig(default_park_s=600.0, initial_concurrency=1, max_concurrency=1)
        config = sim.engine_config(graph_url=url, governor=one_at_a_time)  # work left on every account
        async with BulkEngine(config, clock=ScaledClock(SCALE)) as engine:
            await engine.run(
                [campaign_op(f"seed{i}", act) for i, act in enumerate(sim.accounts)]
            )  # first readings
            front.armed = True
            ops = [campaign_op(f"{act}-{i}", act) for act in sim.accounts for i in range(120)]
            result = await engine.run(ops)
    finally:
        await front.stop()
    assert result.counts == {"succeeded": 360, "failed": 0, "skipped": 0}
    assert front.throttled_at is not None
    after = [(t, accounts) for t, accounts in front.requests if t > front.throttled_at + 5.0]  # not in flight
    assert after, "the job went on after the park"
    assert all(t >= front.throttled_at + 600.0 - 1.0 for t, _ in after), [
        t - front.throttled_at for t, _ in after
    ]
    assert {a for _, accounts in after for a in accounts.split(",")} >= set(sim.accounts)


async def test_a_window_others_filled_to_90_pct_finishes_within_1_1x_of_its_bound(start_sim: Any) -> None:
    """Another client used 270 of the account's 300 calls of the hour just before the run. The run uses
    the room under the ceiling at once and paces from there — no hour-long wait at the start, no refused
    call — and finishes within 1.1× of what a perfect client could (``optimal_finish``)."""
    scale = 3600.0
    sim = await start_sim(time_scale=scale, seed_campaigns=600, access_tier="development_access")
    act = sim.accounts[0]
    core = sim.server.core
    first, count = sim.server.info()["seeded_campaigns"][act]
    first_id = int(first)
    start = core.clock.now()
    core.rate_limiter.charge(act, "ads_management", 270, start)
    ops = [status_op(f"p{i}", act, str(first_id + i)) for i in range(count)]
    async with BulkEngine(sim.engine_config(), clock=ScaledClock(scale)) as engine:
        result = await engine.run(ops)
    took = core.clock.now() - start
    assert result.counts["succeeded"] == 600
    assert not any(c.error_code == 80004 for c in core.calls)
    bound = optimal_finish([start] * 270, 600, start)
    assert took <= 1.1 * bound, (took / HOUR, bound / HOUR)
    first_sends = [r["time"] - start for r in core.http_requests if r["time"] >= start][:3]
    assert first_sends[-1] < 120.0, first_sends  # the room under the ceiling goes at once
