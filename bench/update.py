"""Scenario U: update ops/s of the ``update`` task against a simulator process (issue 16 item 1).

One simulator process holds ``--objects`` seeded campaigns on one account, zero latency and a quota that
never paces (``quota_override``: the rate limits are not what is measured). Three ways side by side, each repeat on the same simulator:

- ``update``: the ``update`` task from a CSV (``id,name,spend_cap`` — a new name and an absolute cap per row),
  read before write in rounds of ``--batch-size``: one read and one write per object;
- ``blind``: the same writes as plain ``Operation`` s through ``BulkEngine.run`` — no read, no diff, no no-op
  check (what the engine costs without the safety net);
- ``unchanged``: the ``update`` task again with the values already set: reads only, every object skipped
  without a call.

Printed: objects/s (medians of ``--repeat``), HTTP requests, Graph calls, the ratio update / blind, and the
simulator's CPU seconds (single-threaded Python: it bounds every way's speed).

    .venv/bin/python bench/update.py                      # 20,000 campaigns, 3 repeats
    .venv/bin/python bench/update.py --objects 5000 --repeat 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import process_cpu_s, simulator_process

ACT = "act_1000000001"


def _engine(info: dict[str, Any]) -> Any:
    from bulk_engine import BulkEngine, Credentials, EngineConfig

    return BulkEngine(
        EngineConfig(credentials=Credentials(access_token=info["access_token"]), graph_url=info["url"])
    )


def _write_csv(path: Path, first: int, count: int, tag: str) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write("id,name,spend_cap\n")
        for k in range(count):
            out.write(f"{first + k},Campaign {k} {tag},{20_000 + k}\n")


async def _update(info: dict[str, Any], csv: Path, batch_size: int) -> dict[str, Any]:
    from bulk_engine.operations import parse_job, run_job

    spec = parse_job(
        {
            "account_id": ACT,
            "tasks": [{"type": "update", "level": "campaign", "csv": csv.name, "batch_size": batch_size}],
        },
        base_dir=csv.parent,
    )
    started = time.perf_counter()
    async with _engine(info) as engine:
        report = await run_job(engine, spec)
    wall = time.perf_counter() - started
    result = report.to_result()
    counts = report.tasks[0].details["diff_counts"]
    return {"wall_s": wall, "http": result.http_requests, "calls": result.graph_calls, "diff": counts}


async def _blind(info: dict[str, Any], first: int, count: int, tag: str) -> dict[str, Any]:
    from bulk_engine import Operation, OpKind

    ops = [
        Operation(
            op_id=f"w{k}",
            method="POST",
            path=str(first + k),
            params={"name": f"Campaign {k} {tag}", "spend_cap": 30_000 + k},
            account_id=ACT,
            kind=OpKind.UPDATE,
        )
        for k in range(count)
    ]
    started = time.perf_counter()
    async with _engine(info) as engine:
        result = await engine.run(ops)
    return {
        "wall_s": time.perf_counter() - started,
        "http": result.http_requests,
        "calls": result.graph_calls,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=5000)
    args = parser.parse_args()
    config = {
        "seed_campaigns": args.objects,
        "ad_account_ids": [ACT],
        "quota_override": 10**9,  # never paces: the quota is not what is measured
    }
    runs: dict[str, list[dict[str, Any]]] = {"update": [], "blind": [], "unchanged": []}
    with simulator_process(config=config) as info, tempfile.TemporaryDirectory() as folder:
        first = int(info["seeded_campaigns"][ACT][0])
        for n in range(args.repeat):
            csv = Path(folder) / f"u{n}.csv"
            _write_csv(csv, first, args.objects, f"r{n}")
            for way in ("update", "blind", "unchanged"):
                if way == "unchanged":  # set the CSV's values again first: then nothing is left to change
                    anyio.run(_update, info, csv, args.batch_size)
                cpu = process_cpu_s(info["pid"])
                if way == "blind":
                    figures = anyio.run(_blind, info, first, args.objects, f"b{n}")
                else:
                    figures = anyio.run(_update, info, csv, args.batch_size)
                figures["sim_cpu_s"] = process_cpu_s(info["pid"]) - cpu
                figures["per_s"] = args.objects / figures["wall_s"]
                runs[way].append(figures)
    print(
        f"update of {args.objects:,} campaigns (name + spend_cap), rounds of {args.batch_size}, medians of {args.repeat}"
    )
    for way, figures in runs.items():
        med = {
            k: statistics.median(f[k] for f in figures)
            for k in ("per_s", "wall_s", "http", "calls", "sim_cpu_s")
        }
        extra = f"  objects {figures[-1]['diff']}" if "diff" in figures[-1] else ""
        print(
            f"{way:<10} {med['per_s']:>8,.0f} objects/s  {med['wall_s']:6.2f} s  {int(med['http']):>5} HTTP requests  "
            f"{int(med['calls']):>6} Graph calls  sim CPU {med['sim_cpu_s']:.2f} s{extra}"
        )
    ratio = statistics.median(f["per_s"] for f in runs["update"]) / statistics.median(
        f["per_s"] for f in runs["blind"]
    )
    print(f"update / blind: {ratio:.2f}× the objects/s (the read before each write costs the rest)")


if __name__ == "__main__":
    main()
