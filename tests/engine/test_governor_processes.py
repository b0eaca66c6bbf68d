"""Four engine processes share one ad account with no coordinator, and the server refuses none of their calls.

The issue's acceptance: "four engines sharing one account (separate processes)", with refused calls (Graph's
throttle error 80004) at most 1 per 1,000 calls. bench/scale_out.py scenario D measures this at scale; this
is the bounded version that runs in ``make test``.

Why separate processes: each ``BulkEngine`` has its own governor, and engines in one process could (in
principle) share state through it or through module globals. Four interpreters share nothing but the
server: each learns the others exist only from the usage headers the simulator returns (``X-Business-Use-
Case-Usage``, ``X-Ad-Account-Usage``), i.e. from usage it did not cause. That is the situation of Airflow
mapped tasks or several cron jobs on one account, and what the governor's "shared accounts" rule (each
worker takes its share of the room under the ceiling) must handle.

Setup: a simulator on 127.0.0.1 in this test's event loop, one ad account at the development tier (300
calls per rolling hour, no active ads), ``time_scale=3600`` (a virtual hour per real second) and 20 ms of
latency per HTTP request; 600 seeded ACTIVE campaigns, split into four slices of 150. Each worker
(``governor_worker.py``, ``sys.executable``, token in the environment) pauses its slice with
``ScaledClock(3600)``; all four start sending together (they report ``ready`` and wait for a start line).

What it proves, from the simulator's own call log (not from what the workers say about themselves):

- no call was refused: 80004 answers ≤ ``total_calls // 1000`` (0 for these 600 calls);
- no work is lost or duplicated: every campaign was paused by exactly one successful call, and every
  worker finished its 150 operations, all succeeded (no worker starved);
- the account was not left idle: the span of the traffic stays within 4× the quota bound (600 calls at
  300 per hour = 2 virtual hours). The bench measures the speed; this bound only catches a governor that
  waits far longer than the quota requires (a worker that never sees room come back).

A failure prints the evidence: which worker's call was refused, when (virtual minutes after the start),
and the usage readings that worker's governor saw just before.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from worker_processes import run_workers

WORKER = Path(__file__).with_name("governor_worker.py")
TOKEN_ENV = "GOVERNOR_WORKER_TOKEN"  # as in governor_worker.py: the token never goes in argv
ACCOUNT = "act_3000000001"
WORKERS = 4
OPS_PER_WORKER = 150
SCALE = 3600.0  # virtual seconds per real second, for the simulator and the engines alike
QUOTA_PER_HOUR = 300  # development tier, ads management, no active ads (S003 §Business Use Case Rate Limits)
SPAN_SLACK = 4.0  # the span may be this many times the quota bound (a noisy, shared 2-core machine)
DEADLINE_S = 60.0  # the whole exchange with the workers; far above the ~5 s it takes


async def _start_worker(url: str, first: int, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        url,
        ACCOUNT,
        str(first),
        str(OPS_PER_WORKER),
        str(SCALE),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        limit=2**22,  # the result line carries the governor's trace
    )


async def _run_workers(url: str, token: str, firsts: list[int]) -> list[dict[str, Any]]:
    """Start the workers, wait until all are ready, then start them together; their result lines."""
    env = {**os.environ, TOKEN_ENV: token, "PYTHONUNBUFFERED": "1"}
    procs = [await _start_worker(url, first, env) for first in firsts]
    return await run_workers(procs, deadline_s=DEADLINE_S)


def _evidence(
    refused: list[Any], requests: list[dict[str, Any]], results: list[dict[str, Any]], firsts: list[int]
) -> str:
    """For each refused call (at most 10): the worker, the virtual time, that worker's readings just before."""
    t0 = requests[0]["time"]
    go = min(r["started"] for r in results)
    lines = [f"{len(refused)} refused calls (80004) of {sum(r['graph_calls'] for r in results)}:"]
    for call in refused[:10]:
        number = int(call.path.strip("/").split("/")[-1])
        worker = max(i for i, first in enumerate(firsts) if number >= first)
        at_min = (requests[call.http_request - 1]["time"] - t0) / 60
        before = [b for b in results[worker]["batches"] if (b[0] - go) * SCALE / 60 <= at_min + 1][-4:]
        readings = ", ".join(
            f"{(b[0] - go) * SCALE / 60:.0f} min: {b[1]} calls -> {b[2]} usage {b[3]} conc {b[4]}"
            for b in before
        )
        lines.append(
            f"  worker {worker}, campaign {number}, at {at_min:.0f} virtual min; its readings: {readings}"
        )
    for index, result in enumerate(results):
        lines.append(f"  worker {index}: throttles {result['throttles']} waits {result['waits'][:5]}")
    return "\n".join(lines)


async def test_four_processes_share_one_account_without_refused_calls(start_sim: Any) -> None:
    total_ops = WORKERS * OPS_PER_WORKER
    sim = await start_sim(
        ad_account_ids=(ACCOUNT,),
        seed_campaigns=total_ops,
        access_tier="development_access",
        time_scale=SCALE,
        faults={"latency_ms": 20},
    )
    core = sim.server.core
    first_id, count = core.seeded_campaigns[ACCOUNT]
    assert count == total_ops
    firsts = [int(first_id) + k * OPS_PER_WORKER for k in range(WORKERS)]

    results = await _run_workers(sim.url, sim.token, firsts)

    # Every worker finished its whole slice, all succeeded: nobody starved, nothing was left unfinished.
    for index, result in enumerate(results):
        assert result["states"] == {"succeeded": OPS_PER_WORKER}, (
            index,
            result["states"],
            result["failures"],
        )
        assert result["unfinished"] == 0, (index, result)
        assert result["ended"] > result["started"]

    calls = core.calls
    requests = core.http_requests
    refused = [c for c in calls if c.error_code == 80004]
    assert len(refused) <= max(0, len(calls) // 1000), _evidence(refused, requests, results, firsts)

    # Exactly-once work, by the server's log: each seeded campaign paused by one successful call, no other.
    expected = {str(number) for number in range(int(first_id), int(first_id) + total_ops)}
    paused = Counter(
        c.path.strip("/").split("/")[-1] for c in calls if c.method == "POST" and c.status == 200
    )
    assert set(paused) == expected, (len(set(paused) - expected), len(expected - set(paused)))
    assert set(paused.values()) == {1}, [p for p, n in paused.items() if n != 1][:10]
    assert all(core.store.get(number).status == "PAUSED" for number in expected)
    failed = Counter((c.status, c.error_code) for c in calls if c.status != 200)
    assert not failed, failed

    # The account kept working: the traffic's span (virtual, the simulator's clock) within a sane multiple
    # of the quota bound (calls ÷ 300 per hour).
    span_h = (requests[-1]["time"] - requests[0]["time"]) / 3600
    bound_h = len(calls) / QUOTA_PER_HOUR
    assert span_h <= SPAN_SLACK * bound_h, (span_h, bound_h, [r["waits"][:3] for r in results])
