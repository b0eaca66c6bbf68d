"""Scenario Q: a quota-bound run — 20,000 status changes on one ad account with a development-tier quota.

The simulator gives the account 300 calls per rolling hour (``300 + 40 × active ads``; the campaigns have
no ads), time-scaled so an hour passes in ``3600 / SCALE`` real seconds; every client uses a clock with the
same scale, so its waits are virtual hours too. Three clients, side by side in one run:

1. this engine (governor paced by the usage headers of every answer);
2. the Airbyte policy re-implemented as a baseline: batches of 50 one after another; after a *successful*
   answer read the usage headers and sleep 2 minutes at ≥ 85 % usage, 10 minutes at ≥ 95 %; a throttle
   error is retried with exponential backoff (60 s doubling, capped at 10 minutes) without reading headers;
3. a naive client: batches of 50 one after another, throttle errors retried after a fixed 60 s backoff.

Reported: completion time relative to the quota bound (calls ÷ quota rate; 100 % = as fast as the quota
allows), throttle errors received, and calls the server received while the account was blocked.

Also reported: the longest gap between two consecutive HTTP requests of the client (virtual minutes, from
the simulator's request log), and for the engine the number of ``Waiting`` events and the longest one.

Run: ``.venv/bin/python bench/quota.py [--ops 20000] [--scale 3600] [--clients engine,airbyte,naive]
[--repeat N]`` (a virtual hour per real second; a larger scale makes each millisecond of client overhead
cost minutes of virtual time and skews the result). ``--clients engine`` runs the engine alone; with
``--repeat N`` each client runs N times (a fresh simulator each) and the table shows medians, with the range
of the share of the bound and of the throttle errors in brackets.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import anyio

from bulk_engine import BulkEngine, Credentials, EngineConfig, Operation, OpKind, ScaledClock
from bulk_engine.protocol.batch import BatchOp, decode_batch_response, encode_batch
from bulk_engine.protocol.errors import ErrorClass
from bulk_engine.protocol.usage import parse_usage_headers
from bulk_engine.simulator import SimulatorConfig, SimulatorServer
from bulk_engine.simulator.ratelimit import RateLimiter

QUOTA_PER_HOUR = 300
GIVE_UP_FACTOR = 3.0  # a client still running at 3x the quota bound is stopped and reported unfinished
ACT = "act_1000000001"

Client = Callable[[str, str, list[str], ScaledClock], Awaitable[None]]


async def _prepared_simulator(ops: int, scale: float) -> tuple[SimulatorServer, list[str]]:
    """A simulator holding ``ops`` campaigns, with a fresh development-tier window for the run."""
    server = await SimulatorServer(
        SimulatorConfig(time_scale=scale, access_tier="development_access", quota_override=10**9)
    ).start()
    core = server.core
    async with aiohttp.ClientSession() as session:
        token = server.info()["access_token"]
        ids: list[str] = []
        for start in range(0, ops, 50):
            batch = [
                BatchOp(
                    "POST",
                    f"{ACT}/campaigns",
                    {
                        "name": f"c{i}",
                        "objective": "OUTCOME_TRAFFIC",
                        "special_ad_categories": [],
                        "status": "ACTIVE",
                    },
                )
                for i in range(start, min(ops, start + 50))
            ]
            async with session.post(
                f"{server.url}/v24.0/", data={"access_token": token, "batch": encode_batch(batch)}
            ) as resp:
                for item in decode_batch_response(await resp.text(), len(batch)):
                    ids.append(str(item.body["id"]))
    # The run starts with an empty window and the real quota formula.
    core.rate_limiter = RateLimiter(core.config.model_copy(update={"quota_override": None}), core.clock)
    return server, ids


def _pauses(ids: list[str]) -> list[BatchOp]:
    return [BatchOp("POST", object_id, {"status": "PAUSED"}) for object_id in ids]


ENGINE_WAITS: list[float] = []  # seconds of the engine's Waiting events in the current run


async def run_engine(url: str, token: str, ids: list[str], clock: ScaledClock) -> None:
    ops = [
        Operation(
            op_id=f"p{i}",
            method="POST",
            path=object_id,
            account_id=ACT,
            kind=OpKind.UPDATE,
            params={"status": "PAUSED"},
        )
        for i, object_id in enumerate(ids)
    ]
    config = EngineConfig(credentials=Credentials(access_token=token), graph_url=url, seed=1)

    def observer(event: object) -> None:
        if type(event).__name__ == "Waiting":  # the governor before issue 13 has no such event
            ENGINE_WAITS.append(event.seconds)  # type: ignore[attr-defined]

    async with BulkEngine(config, clock=clock, observer=observer) as engine:
        result = await engine.run(ops)
    assert result.counts["succeeded"] == len(ids), result.counts


async def _sequential(
    url: str,
    token: str,
    ids: list[str],
    clock: ScaledClock,
    after_success: Callable[[float], float],
    throttle_backoff: Callable[[int], float],
) -> None:
    """Batches of 50 one after another; the policy decides the sleeps."""
    pending = _pauses(ids)
    give_up_at = clock.monotonic() + GIVE_UP_FACTOR * len(ids) / QUOTA_PER_HOUR * 3600.0
    async with aiohttp.ClientSession() as session:
        while pending and clock.monotonic() < give_up_at:
            chunk, pending = pending[:50], pending[50:]
            streak = 0
            while chunk and clock.monotonic() < give_up_at:
                async with session.post(
                    f"{url}/v24.0/", data={"access_token": token, "batch": encode_batch(chunk)}
                ) as resp:
                    items = decode_batch_response(await resp.text(), len(chunk))
                retry = [op for op, item in zip(chunk, items, strict=True) if not item.ok]
                throttled = any(item.error_class is ErrorClass.THROTTLED for item in items)
                ok_items = [item for item in items if item.ok]
                if ok_items:  # Airbyte reads the usage only from successful answers
                    usage = parse_usage_headers(ok_items[-1].headers, account_id=ACT)
                    pct = usage.max_pct_for(ACT, "ads_management") or 0.0
                    await clock.sleep(after_success(pct))
                if throttled:
                    streak += 1
                    await clock.sleep(throttle_backoff(streak))
                chunk = retry


async def run_airbyte(url: str, token: str, ids: list[str], clock: ScaledClock) -> None:
    await _sequential(
        url,
        token,
        ids,
        clock,
        after_success=lambda pct: 600.0 if pct >= 95 else 120.0 if pct >= 85 else 0.0,
        throttle_backoff=lambda n: min(600.0, 60.0 * 2 ** (n - 1)),
    )


async def run_naive(url: str, token: str, ids: list[str], clock: ScaledClock) -> None:
    await _sequential(url, token, ids, clock, after_success=lambda pct: 0.0, throttle_backoff=lambda n: 60.0)


async def measure(name: str, client: Client, ops: int, scale: float) -> dict[str, Any]:
    server, ids = await _prepared_simulator(ops, scale)
    core = server.core
    ENGINE_WAITS.clear()
    try:
        first_call = len(core.calls)
        first_request = len(core.http_requests)
        start_virtual = core.clock.now()
        started = time.perf_counter()
        await client(server.url, server.info()["access_token"], ids, ScaledClock(scale))
        wall = time.perf_counter() - started
        virtual = core.clock.now() - start_virtual
        calls = core.calls[first_call:]
        throttled = sum(1 for c in calls if c.error_code == 80004)
        done = sum(1 for c in calls if c.status == 200)
        sends = [r["time"] for r in core.http_requests[first_request:]]
        gap = max((b - a for a, b in itertools.pairwise(sends)), default=0.0)
    finally:
        await server.stop()
    bound = ops / QUOTA_PER_HOUR * 3600.0
    return {
        "client": name,
        "virtual_hours": virtual / 3600,
        "bound_hours": bound / 3600,
        "pct_of_bound": 100.0 * bound / virtual,
        "throttle_errors": throttled,
        "calls_while_blocked": throttled,
        "calls_sent": len(calls),
        "done": done,
        "wall_s": wall,
        "longest_gap_min": gap / 60.0,
        "waiting_events": len(ENGINE_WAITS) if name == "engine" else None,
        "max_waiting_min": max(ENGINE_WAITS) / 60.0 if name == "engine" and ENGINE_WAITS else None,
    }


CLIENTS: dict[str, tuple[str, Client]] = {
    "engine": ("engine", run_engine),
    "airbyte": ("airbyte policy", run_airbyte),
    "naive": ("naive backoff", run_naive),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, default=20_000)
    parser.add_argument("--scale", type=float, default=3_600.0)
    parser.add_argument(
        "--clients", default="engine,airbyte,naive", help="comma list of engine, airbyte, naive"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per client (medians are printed)")
    args = parser.parse_args()
    names = [name.strip() for name in args.clients.split(",") if name.strip()]
    unknown = [name for name in names if name not in CLIENTS]
    if unknown:
        parser.error(f"unknown clients {unknown}; choose from {','.join(CLIENTS)}")
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for _ in range(args.repeat):
        for name in names:
            label, client = CLIENTS[name]
            runs[name].append(anyio.run(measure, label, client, args.ops, args.scale))
            print(json.dumps(runs[name][-1]), flush=True)
    print(
        f"\nScenario Q: {args.ops} status changes, {QUOTA_PER_HOUR} calls/hour, time scale {args.scale:g}"
        + (f"; medians of {args.repeat} repeats (range)" if args.repeat > 1 else "")
        + f"; engine from {Path(sys.modules['bulk_engine'].__file__ or '').parent}"
    )
    print(
        f"{'client':<16}{'hours':>8}{'bound h':>9}{'of bound':>10}{'throttled':>11}{'calls':>8}"
        f"{'per 10k':>9}{'gap min':>9}{'Waiting max min':>17}  finished"
    )
    for rows in runs.values():
        med = {
            key: statistics.median(r[key] for r in rows)
            for key in rows[0]
            if isinstance(rows[0][key], int | float) and rows[0][key] is not None
        }
        per10k = statistics.median(10_000 * r["throttle_errors"] / r["calls_sent"] for r in rows)
        waits = [r["max_waiting_min"] for r in rows if r["max_waiting_min"] is not None]
        waiting = f"{statistics.median(waits):.1f}" if waits else "—"
        print(
            f"{rows[0]['client']:<16}{med['virtual_hours']:>8.1f}{med['bound_hours']:>9.1f}"
            f"{med['pct_of_bound']:>9.1f}%{med['throttle_errors']:>11.0f}{med['calls_sent']:>8.0f}{per10k:>9.1f}"
            f"{med['longest_gap_min']:>9.1f}{waiting:>17}  {med['done']:.0f}/{args.ops}"
        )
        if len(rows) > 1:
            pcts = [r["pct_of_bound"] for r in rows]
            throttles = [r["throttle_errors"] for r in rows]
            print(
                f"{'':<16}  of bound {min(pcts):.1f}–{max(pcts):.1f} %, throttled {min(throttles)}–{max(throttles)}"
            )


if __name__ == "__main__":
    main()
