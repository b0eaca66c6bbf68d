"""Scenario E: export rows/s of the ``export`` task against a simulator process (issue 16 item 2).

One simulator process holds ``--objects`` seeded campaigns on one account (``standard_access``: the quota is
not what is measured). Each repeat exports all of them with ``fields=name,status,objective`` through a
fresh engine, as CSV and as JSON Lines, and prints rows/s (medians of ``--repeat``), HTTP requests, the
client's peak RSS growth (the export streams: it must not grow with the row count) and the simulator's CPU
seconds (single-threaded Python: it bounds the export's speed) beside the client's CPU per row. A last run against a simulator that
refuses pages over 250 objects four times ("Please reduce the amount of data", code 1) shows what the
adaptive page size costs.

    .venv/bin/python bench/export.py                       # 50,000 objects, 3 repeats
    .venv/bin/python bench/export.py --objects 200000 --repeat 5 --page-size 1000
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
from common import process_cpu_s, process_memory_mb, simulator_process


async def _export(info: dict[str, Any], out: Path, page_size: int) -> dict[str, Any]:
    from bulk_engine import BulkEngine, Credentials, EngineConfig, RetryConfig
    from bulk_engine.operations import parse_job, run_job

    act = info["ad_account_ids"][0]
    spec = parse_job(
        {
            "account_id": act,
            "tasks": [
                {
                    "type": "export",
                    "edge": "campaigns",
                    "fields": ["name", "status", "objective"],
                    "output": str(out),
                    "page_size": page_size,
                }
            ],
        }
    )
    config = EngineConfig(
        credentials=Credentials(access_token=info["access_token"]),
        graph_url=info["url"],
        retry=RetryConfig(max_attempts=2, base_delay_s=0.0),
    )
    rss_before = process_memory_mb()[0]
    cpu_before = time.process_time()
    started = time.perf_counter()
    async with BulkEngine(config) as engine:
        report = await run_job(engine, spec)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    task = report.tasks[0]
    totals = task.to_result()
    return {
        "rows": task.details["rows"],
        "pages": task.details["pages"],
        "wall_s": wall,
        "rows_per_s": task.details["rows"] / wall,
        "http_requests": totals.http_requests,
        "page_size": task.details["page_size"],
        "rss_growth_mb": process_memory_mb()[1] - rss_before,
        "client_cpu_us_per_row": cpu / max(1, task.details["rows"]) * 1e6,
        "ok": report.ok,
    }


def _run(config: dict[str, Any], fmt: str, repeat: int, page_size: int) -> list[dict[str, Any]]:
    runs = []
    with simulator_process(config=config) as info, tempfile.TemporaryDirectory() as folder:
        for n in range(repeat):
            cpu_before = process_cpu_s(info["pid"])
            figures = anyio.run(_export, info, Path(folder) / f"out{n}.{fmt}", page_size)
            figures["sim_cpu_s"] = process_cpu_s(info["pid"]) - cpu_before
            runs.append(figures)
    return runs


def _line(label: str, runs: list[dict[str, Any]]) -> str:
    def med(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    rates = sorted(r["rows_per_s"] for r in runs)
    sizes = runs[-1]["page_size"]
    return (
        f"{label:<28} {med('rows_per_s'):>9,.0f} rows/s (min {rates[0]:,.0f}, max {rates[-1]:,.0f})  "
        f"{med('wall_s'):6.2f} s  {runs[-1]['rows']:,} rows  {int(med('http_requests'))} requests  "
        f"sim CPU {med('sim_cpu_s'):.2f} s  client CPU {med('client_cpu_us_per_row'):.1f} µs/row  client peak RSS +{med('rss_growth_mb'):.1f} MB  "
        f"page size {sizes['requested']}→{sizes['smallest']}→{sizes['final']}"
        + ("" if all(r["ok"] for r in runs) else "  NOT OK")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--page-size", type=int, default=500)
    args = parser.parse_args()
    base = {
        "seed_campaigns": args.objects,
        "access_tier": "standard_access",
        "ad_account_ids": ["act_1000000001"],
    }
    print(
        f"export of {args.objects:,} campaigns, page size {args.page_size}, medians of {args.repeat} repeats"
    )
    for fmt in ("csv", "jsonl"):
        print(_line(fmt, _run(base, fmt, args.repeat, args.page_size)))
    reduce = {**base, "faults": {"reduce_data_above": 250, "reduce_data_times": 4}}
    print(_line("jsonl, reduce-data ×4 (once)", _run(reduce, "jsonl", 1, args.page_size)))


if __name__ == "__main__":
    main()
