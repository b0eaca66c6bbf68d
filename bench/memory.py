"""Scenario M: a 1,000,000-op streamed job in bounded memory (issue 8 item 2).

Status changes (``PAUSED``) of N existing campaigns, read lazily from a CSV of ids by the job files' own
status task (``StatusTask(csv=…).compile``, the path ``bulk-engine run`` takes) and run with
``BulkEngine.stream`` — not ``run``, which keeps every outcome. The simulator runs in another process
with zero latency, its campaigns seeded at start (``SimulatorConfig.seed_campaigns``: contiguous ids, so
the CSV is written from two numbers) and a quota that never paces (``quota_override``), so the engine
runs as fast as the two processes allow.

Printed: the engine process's RSS (current and peak, ``/proc/self/status``) before the job and at every
10 % of the outcomes, throughput, and the simulator's memory and CPU. Target: peak RSS ≤ 250 MB and flat.
``--tracemalloc`` adds the top allocation sites growing between 10 % and 100 % (slow: use fewer ops).

``--cli`` runs the same job as a user would first — a job file with one status task over the CSV, through
``python -m bulk_engine run job.yaml --graph-url … --report … --report-csv … --report-html … --log-format json``
in its own process — and samples that process's RSS (``VmRSS`` / ``VmHWM`` of ``/proc/PID/status``) every
0.5 s, placing each sample by the ``operation`` events counted on its stdout; printed: RSS at every 10 % of the
operations, once the reports are written, the exact peak (``wait4``'s ``ru_maxrss``) and the reports' sizes.
Then the library stream runs in this process against the same simulator, for the figure beside it. Target
(issue 20): the CLI peaks at <= 300 MB on 1,000,000 operations, flat from 10 % on.

Run: ``.venv/bin/python bench/memory.py [--ops 1000000] [--cli] [--json out.json]``
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import IO, Any

import anyio
from common import process_cpu_s, process_memory_mb, simulator_process, table

from bulk_engine import BulkEngine, Credentials, EngineConfig
from bulk_engine.operations.base import CompileContext, TaskEnv
from bulk_engine.operations.status import StatusTask

ACT = "act_1000000001"


def write_csv(path: Path, first_id: str, count: int) -> None:
    """``id,status`` rows for ``count`` contiguous campaign ids (the simulator's seeded span)."""
    first = int(first_id)
    with path.open("w") as out:
        out.write("id,status\n")
        for start in range(0, count, 10_000):
            out.write("".join(f"{first + k},PAUSED\n" for k in range(start, min(count, start + 10_000))))


def sample(label: str, done: int, started: float) -> dict[str, Any]:
    rss, peak = process_memory_mb()
    return {
        "at": label,
        "ops": done,
        "rss_mb": rss,
        "peak_mb": peak,
        "elapsed_s": time.perf_counter() - started,
    }


async def run_job(info: dict[str, Any], csv_path: Path, ops: int, trace: bool) -> dict[str, Any]:
    task = StatusTask(type="status", status="PAUSED", csv=str(csv_path))
    env = TaskEnv(key="pause", account_id=ACT, base_dir=csv_path.parent, ctx=CompileContext())
    config = EngineConfig(
        credentials=Credentials(access_token=info["access_token"]), graph_url=info["url"], seed=1
    )
    marks = {max(1, ops * tenth // 10): f"{tenth * 10} %" for tenth in range(1, 11)}
    samples: list[dict[str, Any]] = []
    states: dict[str, int] = {}
    snapshots: dict[str, tracemalloc.Snapshot] = {}
    gc.collect()
    async with BulkEngine(config) as engine:
        started = time.perf_counter()
        cpu0 = time.process_time()
        samples.append(sample("start", 0, started))
        done = 0
        run = engine.stream(task.compile(env))
        async for outcome in run:
            done += 1
            states[outcome.state.value] = states.get(outcome.state.value, 0) + 1
            label = marks.get(done)
            if label is not None:
                samples.append(sample(label, done, started))
                if trace and label in ("10 %", "100 %"):
                    snapshots[label] = tracemalloc.take_snapshot()
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu0
        stats = run.result
    growth: list[str] = []
    if len(snapshots) == 2:
        diff = snapshots["100 %"].compare_to(snapshots["10 %"], "lineno")
        growth = [str(stat) for stat in diff[:15]]
    return {
        "ops": ops,
        "states": states,
        "elapsed_s": elapsed,
        "ops_per_s": done / elapsed,
        "engine_cpu_s": cpu,
        "http_requests": stats.http_requests,
        "peak_tracked_ops": stats.peak_tracked_ops,
        "samples": samples,
        "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "tracemalloc_growth": growth,
    }


# --- the CLI in its own process ----------------------------------------------------------------------------
SAMPLE_EVERY_S = 0.5


class OperationCounter:
    """Counts the ``operation`` events of ``--log-format json`` on the CLI's stdout (a reader thread)."""

    def __init__(self, stream: IO[str]) -> None:
        self.done = 0
        self.finished: dict[str, Any] | None = None
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            if '"event":"operation"' in line:
                self.done += 1
            elif '"event":"job_finished"' in line:
                self.finished = json.loads(line)

    def join(self) -> None:
        self._thread.join(timeout=60)


def run_cli(info: dict[str, Any], csv_path: Path, ops: int) -> dict[str, Any]:
    """``bulk-engine run`` of the status job as a subprocess; its RSS sampled every 0.5 s."""
    folder = csv_path.parent
    job = folder / "job.yaml"
    job.write_text(
        json.dumps(
            {
                "version": 1,
                "job_id": "memory-cli",
                "account_id": ACT,
                "tasks": [{"type": "status", "key": "pause", "status": "PAUSED", "csv": csv_path.name}],
            }
        )
    )
    reports = {"json": folder / "r.json", "csv": folder / "r.csv", "html": folder / "r.html"}
    command = [sys.executable, "-m", "bulk_engine", "run", str(job), "--graph-url", info["url"]]
    command += ["--report", str(reports["json"]), "--report-csv", str(reports["csv"])]
    command += ["--report-html", str(reports["html"]), "--log-format", "json"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("META_")}
    env["META_ACCESS_TOKEN"] = info["access_token"]
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    assert proc.stdout is not None
    counter = OperationCounter(proc.stdout)
    samples: list[dict[str, Any]] = []  # every 0.5 s: ops done, RSS, peak RSS
    status = None
    while status is None:
        pid, status_code, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            status = status_code
            break
        rss, peak = process_memory_mb(proc.pid)
        if rss == rss:  # not NaN: the process is still there
            samples.append(
                {"ops": counter.done, "rss_mb": rss, "peak_mb": peak, "t": time.perf_counter() - started}
            )
        time.sleep(SAMPLE_EVERY_S)  # a sampling period, not a wait for an outcome
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    counter.join()
    marks = []
    for tenth in range(1, 11):
        target = ops * tenth // 10
        at = next((s for s in samples if s["ops"] >= target), None)
        if at is not None:
            marks.append({"at": f"{tenth * 10} %", **at})
    if samples:
        marks.append({"at": "reports", **samples[-1]})  # the last sample: the reports being written
    return {
        "exit_code": proc.returncode,
        "ops_seen": counter.done,
        "elapsed_s": elapsed,
        "ops_per_s": counter.done / elapsed if elapsed else 0.0,
        "peak_mb": usage.ru_maxrss / 1024,  # the exact peak over the process's life
        "marks": marks,
        "samples": len(samples),
        "counts": (counter.finished or {}).get("counts"),
        "report_mb": {k: p.stat().st_size / 2**20 if p.exists() else None for k, p in reports.items()},
    }


def report_cli(r: dict[str, Any], library: dict[str, Any] | None) -> None:
    lib_marks = {s["at"]: s for s in (library or {}).get("samples", [])}
    rows = [("at", "ops", "CLI RSS MB", "CLI peak MB", "s", "library stream RSS MB")]
    for m in r["marks"]:
        lib = lib_marks.get(m["at"])
        rows.append(
            (
                m["at"],
                f"{m['ops']:,}",
                f"{m['rss_mb']:.1f}",
                f"{m['peak_mb']:.1f}",
                f"{m['t']:.1f}",
                f"{lib['rss_mb']:.1f}" if lib else "",
            )
        )
    print(
        f"bulk-engine run (its own process): {r['ops_seen']:,} status changes, exit {r['exit_code']}, {r['counts']}"
    )
    print(table(rows))
    tenth = next((m for m in r["marks"] if m["at"] == "10 %"), None)
    last = next((m for m in reversed(r["marks"]) if m["at"] == "100 %"), None)
    growth = f"{last['rss_mb'] - tenth['rss_mb']:+.1f} MB" if tenth and last else "n/a"
    sizes = ", ".join(
        f"{k.upper()} {v * 1024:,.0f} KB" if k == "html" else f"{k.upper()} {v:,.1f} MB"
        for k, v in r["report_mb"].items()
        if v is not None
    )
    print(
        f"CLI peak RSS {r['peak_mb']:.1f} MB (wait4 ru_maxrss; target <= 300); growth 10 % -> 100 %: {growth}; "
        f"{r['ops_per_s']:,.0f} ops/s ({r['elapsed_s']:.1f} s incl. start-up and reports); reports: {sizes}"
    )
    if library is not None:
        print(f"library stream (this process) peak RSS {library['samples'][-1]['peak_mb']:.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1_000_000)
    parser.add_argument(
        "--cli", action="store_true", help="run bulk-engine run as a subprocess first (RSS, reports)"
    )
    parser.add_argument(
        "--tracemalloc", action="store_true", help="show allocations grown from 10 %% to 100 %%"
    )
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    if args.tracemalloc:
        tracemalloc.start(5)
    sim_config = {
        "ad_account_ids": [ACT],
        "seed_campaigns": args.ops,
        "access_tier": "standard_access",
        "quota_override": 10**9,  # never paces: the engine runs flat out
        "app_users": 10**6,  # the app's Platform quota (200 x users per hour) must not bind either
    }
    seed_started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, simulator_process(config=sim_config) as info:
        seed_s = time.perf_counter() - seed_started
        csv_path = Path(tmp) / "ids.csv"
        first, count = info["seeded_campaigns"][ACT]
        write_csv(csv_path, first, count)
        sim_pid = info["pid"]
        cli = run_cli(info, csv_path, args.ops) if args.cli else None
        sim_cpu0 = process_cpu_s(sim_pid)
        sim_before = process_memory_mb(sim_pid)
        result = anyio.run(run_job, info, csv_path, args.ops, args.tracemalloc)
        result["simulator"] = {
            "seed_s": seed_s,
            "cpu_s": process_cpu_s(sim_pid) - sim_cpu0,
            "rss_before_mb": sim_before[0],
            "rss_after_mb": process_memory_mb(sim_pid)[0],
            "peak_mb": process_memory_mb(sim_pid)[1],
        }
        result["csv_mb"] = csv_path.stat().st_size / 2**20
    report(result)
    if cli is not None:
        print()
        report_cli(cli, result)
        result["cli"] = cli
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


def report(r: dict[str, Any]) -> None:
    rows = [("at", "ops", "RSS MB", "peak RSS MB", "elapsed s")]
    for s in r["samples"]:
        rows.append(
            (s["at"], f"{s['ops']:,}", f"{s['rss_mb']:.1f}", f"{s['peak_mb']:.1f}", f"{s['elapsed_s']:.1f}")
        )
    print(
        f"Scenario M: {r['ops']:,} status changes streamed from a {r['csv_mb']:.0f} MB CSV (pid {os.getpid()})"
    )
    print(table(rows))
    start, end = r["samples"][0], r["samples"][-1]
    tenth = next(s for s in r["samples"] if s["at"] == "10 %")
    print(
        f"peak RSS {end['peak_mb']:.1f} MB (target <= 250); growth 10 % -> 100 %: "
        f"{end['rss_mb'] - tenth['rss_mb']:+.1f} MB; job's share above the idle engine: "
        f"{end['peak_mb'] - start['rss_mb']:.1f} MB"
    )
    print(
        f"throughput {r['ops_per_s']:,.0f} ops/s ({r['elapsed_s']:.1f} s, {r['http_requests']:,} HTTP requests); "
        f"engine CPU {r['engine_cpu_s']:.1f} s = {1e6 * r['engine_cpu_s'] / r['ops']:.0f} us/op; "
        f"outcomes {r['states']}; peak ops tracked by the graph {r['peak_tracked_ops']:,}"
    )
    sim = r["simulator"]
    print(
        f"simulator (other process): seeded in {sim['seed_s']:.1f} s, CPU {sim['cpu_s']:.1f} s "
        f"({1e6 * sim['cpu_s'] / r['ops']:.0f} us/op), RSS {sim['rss_before_mb']:.0f} -> "
        f"{sim['rss_after_mb']:.0f} MB (peak {sim['peak_mb']:.0f} MB; not the target)"
    )
    for line in r["tracemalloc_growth"]:
        print("  " + line)


if __name__ == "__main__":
    main()
