"""Issue 18: 10,000 creates on the sync backend (Graph batches) vs the async backend (request sets).

``--trees`` campaign → ad set → creative → ad trees (default 2,500: 10,000 creates) on one ``standard_access``
account, each way against its own fresh simulator process with ``--latency-ms`` (default 100) per HTTP
request. The simulator processes each request set at ``--rate`` requests per virtual second (its
``async_requests_per_s``, sets in parallel), and its clock runs ``--time-scale`` times faster than the wall,
paired with the engine's :class:`~bulk_engine.execution.clock.ScaledClock` (so the async backend's waits between
polls are scaled too): the async wall time is the simulator's modelled processing time divided by the
scale, plus the real HTTP round trips. The seeds do not document how fast Meta processes a set.

Printed per way (medians of ``--repeat`` repeats, each on a fresh simulator): HTTP requests (the simulator's
request log), calls charged to the quota (its call log: every batch op, every request a set ran, every
submit and poll), engine wall seconds, the virtual (server-side) seconds that took, and the outcome counts.

    .venv/bin/python bench/async_backend.py                    # 2,500 trees, 3 repeats
    .venv/bin/python bench/async_backend.py --trees 500 --repeat 5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import simulator_process, table, tree_ops

from bulk_engine import BulkEngine, Credentials, EngineConfig
from bulk_engine.execution.clock import ScaledClock


def _get(url: str) -> Any:
    with urlopen(url) as answer:  # the simulator, on 127.0.0.1
        return json.loads(answer.read())


async def _one(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    config = {
        "access_tier": "standard_access",
        "time_scale": args.time_scale,
        "async_requests_per_s": args.rate,
        "faults": {"latency_ms": args.latency_ms},
    }
    with simulator_process(config=config) as info:
        act = info["ad_account_ids"][0]
        ops = [op for i in range(args.trees) for op in tree_ops(i, act, info["page_ids"][0])]
        engine_config = EngineConfig(
            credentials=Credentials(access_token=info["access_token"]), graph_url=info["url"]
        )
        clock = ScaledClock(args.time_scale)
        virtual_start = _get(f"{info['url']}/__sim__/clock")["now"]
        started = time.perf_counter()
        async with BulkEngine(engine_config, clock=clock) as engine:
            result = await engine.run(ops, job_id="bench", backend=backend)  # type: ignore[arg-type]
        wall = time.perf_counter() - started
        virtual = _get(f"{info['url']}/__sim__/clock")["now"] - virtual_start
        requests = _get(f"{info['url']}/__sim__/requests")
        calls = _get(f"{info['url']}/__sim__/calls")
        return {
            "backend": backend,
            "http_requests": len(requests),
            "engine_http_requests": result.http_requests,
            "calls_charged": len(calls),
            "wall_s": wall,
            "virtual_s": virtual,
            "async_sets": result.async_sets,
            "counts": result.counts,
        }


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(float(r[key]) for r in runs)


async def main(args: argparse.Namespace) -> None:
    runs: dict[str, list[dict[str, Any]]] = {"sync": [], "async": []}
    for _ in range(args.repeat):
        for backend in ("sync", "async"):  # alternated, so machine load hits both alike
            runs[backend].append(await _one(backend, args))
    rows = [("figure (median)", "sync", "async", "async / sync")]
    for key, label in (
        ("http_requests", "HTTP requests"),
        ("calls_charged", "calls charged to the quota"),
        ("wall_s", f"wall s at {args.latency_ms:g} ms latency"),
        ("virtual_s", "server-side (virtual) s"),
        ("async_sets", "request sets"),
    ):
        s, a = _median(runs["sync"], key), _median(runs["async"], key)
        ratio = f"{a / s:.3f}" if s else "-"
        rows.append((label, f"{s:,.2f}".rstrip("0").rstrip("."), f"{a:,.2f}".rstrip("0").rstrip("."), ratio))
    print(
        f"{args.trees * 4:,} creates ({args.trees:,} trees), {args.repeat} repeats, "
        f"time scale {args.time_scale:g}, {args.rate:g} requests/s per set"
    )
    print(table(rows))
    for backend, items in runs.items():
        print(backend, "outcomes:", [r["counts"] for r in items])
    if args.json:
        await anyio.Path(args.json).write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trees", type=int, default=2500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--time-scale", type=float, default=100.0)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--json")
    anyio.run(main, parser.parse_args())
