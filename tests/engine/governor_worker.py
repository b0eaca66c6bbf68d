"""One engine process of test_governor_processes.py: pause a slice of one ad account's seeded campaigns.

Run as ``python governor_worker.py URL ACCOUNT FIRST_ID COUNT SCALE``; the access token comes from the
environment (``GOVERNOR_WORKER_TOKEN``), never argv. The worker imports everything, prints ``ready``, waits
for a line on stdin (so every worker starts sending together, whatever their start-up took), runs one
``BulkEngine`` with ``ScaledClock(SCALE)`` over ``COUNT`` status changes (campaigns ``FIRST_ID`` …) and
prints one JSON result line: outcome counts, failures, the job's figures and a trace of what its governor
saw (each answered batch with the usage reading, each throttle and long wait), for evidence when a call is
refused.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import anyio

from bulk_engine import BulkEngine, Credentials, EngineConfig, Operation, OpKind, ScaledClock
from bulk_engine.execution.events import BatchDone, EngineEvent, Throttled, Waiting

TOKEN_ENV = "GOVERNOR_WORKER_TOKEN"


def status_changes(account: str, first: int, count: int) -> Iterator[Operation]:
    """PAUSED for campaigns ``first`` … ``first + count - 1`` (streamed, as bench/scale_out.py does)."""
    for number in range(first, first + count):
        yield Operation(
            op_id=f"{account}/{number}",
            method="POST",
            path=str(number),
            account_id=account,
            kind=OpKind.UPDATE,
            params={"status": "PAUSED"},
        )


async def work(url: str, account: str, first: int, count: int, scale: float) -> dict[str, Any]:
    batches: list[list[Any]] = []  # [real epoch s, calls, http status, usage %, concurrency, parked s]
    throttles: list[dict[str, Any]] = []
    waits: list[dict[str, Any]] = []

    def observe(event: EngineEvent) -> None:
        now = time.time()
        if isinstance(event, BatchDone):
            batches.append(
                [now, event.calls, event.http_status, event.usage_pct, event.concurrency, event.parked_s]
            )
        elif isinstance(event, Throttled):
            throttles.append(
                {"at": now, "code": event.code, "usage_pct": event.usage_pct, "parked_s": event.parked_s}
            )
        elif isinstance(event, Waiting):
            waits.append({"at": now, "scope": event.scope, "reason": event.reason, "seconds": event.seconds})

    config = EngineConfig(credentials=Credentials(access_token=os.environ[TOKEN_ENV]), graph_url=url, seed=1)
    states: dict[str, int] = {}
    failures: list[str] = []
    async with BulkEngine(config, clock=ScaledClock(scale), observer=observe) as engine:
        started = time.time()
        run = engine.stream(status_changes(account, first, count))
        async for outcome in run:
            states[outcome.state.value] = states.get(outcome.state.value, 0) + 1
            if outcome.state.value != "succeeded" and len(failures) < 5:
                failures.append(f"{outcome.op_id}: {outcome.state.value} {outcome.reason} {outcome.error!r}")
        ended = time.time()
        result = run.result
    return {
        "account": account,
        "first": first,
        "count": count,
        "states": states,
        "failures": failures,
        "started": started,
        "ended": ended,
        "http_requests": result.http_requests,
        "graph_calls": result.graph_calls,
        "retries": result.retries,
        "throttle_events": result.throttle_events,
        "unfinished": len(result.unfinished),
        "batches": batches,
        "throttles": throttles,
        "waits": waits,
    }


def main(argv: list[str]) -> None:
    url, account, first, count, scale = argv
    print("ready", flush=True)
    if not sys.stdin.readline():  # the test went away before the start signal
        raise SystemExit("no start signal")
    result = anyio.run(work, url, account, int(first), int(count), float(scale))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
