"""Scenario J: the 1,000,000-op status-change stream of Scenario M with a journal — SQLite, then PostgreSQL.

The job is bench/memory.py's (``StatusTask`` over a CSV of seeded campaign ids, ``BulkEngine.stream``, a
simulator in another process that never paces), run once per backend, each in a fresh process of its own so
peak RSS (``ru_maxrss``) is that backend's alone. The PostgreSQL server is a real one started for the bench
(tests/pg_server.py) with ``fsync`` on, as in production. Every journal call is timed: that time blocks the
engine's event loop (the ``Journal`` protocol is synchronous), so it says what a synchronous driver costs.

Printed per backend: ops/s, peak RSS, engine CPU per op, time inside journal calls (total, share of the run,
per call kind), and the journal's size on disk.

``--backends`` also takes ``postgres-async``: the PostgreSQL journal with ``synchronous_commit=off`` (through the
URL: ``?options=-csynchronous_commit%3Doff``), whose durability matches SQLite's default ``synchronous=NORMAL``.

Run: ``.venv/bin/python bench/journal_backends.py [--ops 1000000] [--backends sqlite,postgres,postgres-async]
[--json out]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import aclosing
from pathlib import Path
from typing import Any

import anyio
from common import simulator_process, table

from bulk_engine import BulkEngine, Credentials, EngineConfig
from bulk_engine.operations.base import CompileContext, TaskEnv
from bulk_engine.operations.status import StatusTask
from bulk_engine.persistence import Journal, open_journal

ACT = "act_1000000001"
ROOT = Path(__file__).resolve().parents[1]
TIMED = ("add_plans", "mark_sent", "record_outcomes", "mark_unknown", "get_ops", "save_pacing", "save_run")


class TimedJournal:
    """Delegates to a journal and adds up the wall time of each kind of call (all of it blocks the loop)."""

    def __init__(self, inner: Journal) -> None:
        self._inner = inner
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if name not in TIMED:
            return value

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return value(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started
                self.calls[name] += 1

        return timed


def write_csv(path: Path, first_id: str, count: int) -> None:
    first = int(first_id)
    with path.open("w") as out:
        out.write("id,status\n")
        for start in range(0, count, 10_000):
            out.write("".join(f"{first + k},PAUSED\n" for k in range(start, min(count, start + 10_000))))


async def stream(info: dict[str, Any], csv_path: Path, target: str, job_id: str, ops: int) -> dict[str, Any]:
    task = StatusTask(type="status", status="PAUSED", csv=str(csv_path))
    env = TaskEnv(key="pause", account_id=ACT, base_dir=csv_path.parent, ctx=CompileContext())
    config = EngineConfig(
        credentials=Credentials(access_token=info["access_token"]), graph_url=info["url"], seed=1
    )
    journal = TimedJournal(open_journal(target))
    done = 0
    states: dict[str, int] = {}
    elapsed = cpu = 0.0
    try:
        async with BulkEngine(config, journal=journal) as engine:  # type: ignore[arg-type]
            started = time.perf_counter()
            cpu0 = time.process_time()
            run = engine.stream(task.compile(env), job_id=job_id)
            async with aclosing(run):
                async for outcome in run:
                    done += 1
                    states[outcome.state.value] = states.get(outcome.state.value, 0) + 1
                    if done == ops:
                        # Every outcome is in (and journaled): stop here. The stream itself would only end
                        # once the governor's wake-up timers fire, up to an hour later (seen at HEAD 2b57563).
                        break
                elapsed = time.perf_counter() - started
                cpu = time.process_time() - cpu0
    finally:
        journal.close()
    in_journal = sum(journal.seconds.values())
    return {
        "ops": done,
        "states": states,
        "elapsed_s": elapsed,
        "ops_per_s": done / elapsed,
        "engine_cpu_s": cpu,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "journal_s": in_journal,
        "journal_share": in_journal / elapsed,
        "journal_calls": {k: [journal.calls[k], journal.seconds[k]] for k in sorted(journal.calls)},
    }


def child(args: argparse.Namespace) -> None:
    info = json.loads(args.info)
    result = anyio.run(stream, info, Path(args.csv), args.target, args.job_id, args.ops)
    print(json.dumps(result), flush=True)


def run_backend(name: str, target: str, info: dict[str, Any], csv_path: Path, ops: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", "--target", target, "--csv", str(csv_path)]
    command += ["--info", json.dumps(info), "--job-id", f"bench-{name}-{os.getpid()}", "--ops", str(ops)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{name} run failed:\n{done.stderr[-4000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def postgres_size_mb(server: Any) -> float:
    import psycopg

    with psycopg.connect(server.url("bench"), autocommit=True) as conn:
        row = conn.execute("SELECT pg_database_size('bench')").fetchone()
    return float(row[0]) / 2**20 if row else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--csv", help=argparse.SUPPRESS)
    parser.add_argument("--info", help=argparse.SUPPRESS)
    parser.add_argument("--job-id", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from pg_server import PostgresServer

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    sim_config = {
        "ad_account_ids": [ACT],
        "seed_campaigns": args.ops,
        "access_tier": "standard_access",
        # 4x the job's calls per hour: never paces. (Not 10**9 as Scenario M: with a reading of 0.01 %
        # after 97,000 calls the governor kept the window at its 100,000-call floor and waited an hour.)
        "quota_override": max(4 * args.ops, 400_000),
        "app_users": 10**6,
    }
    results: dict[str, dict[str, Any]] = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        simulator_process(config=sim_config) as info,
        PostgresServer.start(durable=True) as server,
    ):
        server.create_database("bench")
        csv_path = Path(tmp) / "ids.csv"
        first, count = info["seeded_campaigns"][ACT]
        write_csv(csv_path, first, count)
        sim = {k: info[k] for k in ("url", "access_token")}
        for name in backends:
            if name == "sqlite":
                path = Path(tmp) / "journal.db"
                results[name] = run_backend(name, str(path), sim, csv_path, count)
                results[name]["journal_mb"] = (
                    sum(p.stat().st_size for p in Path(tmp).glob("journal.db*")) / 2**20
                )
            elif name in ("postgres", "postgres-async"):
                # postgres-async: synchronous_commit=off, the durability of SQLite's synchronous=NORMAL
                # (a killed client loses nothing; a crash of the database server, the last ~0.6 s of commits)
                url = server.url("bench", schema=name.replace("-", "_"))
                if name == "postgres-async":
                    url += "&options=-csynchronous_commit%3Doff"
                results[name] = run_backend(name, url, sim, csv_path, count)
                results[name]["journal_mb"] = postgres_size_mb(server)
            else:
                raise SystemExit(f"unknown backend {name!r}")
            print(f"{name}: {results[name]['ops']:,} ops in {results[name]['elapsed_s']:.1f} s", flush=True)
    report(args.ops, results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def report(ops: int, results: dict[str, dict[str, Any]]) -> None:
    rows = [
        (
            "journal",
            "ops/s",
            "peak RSS MB",
            "engine CPU us/op",
            "in journal calls",
            "intent ms/call",
            "outcomes ms/call",
            "journal MB",
        )
    ]
    for name, r in results.items():
        calls = r["journal_calls"]

        def per_call(kind: str, calls: dict[str, list[float]] = calls) -> str:
            n, s = calls.get(kind, [0, 0.0])
            return f"{1000 * s / n:.2f}" if n else "-"

        rows.append(
            (
                name,
                f"{r['ops_per_s']:,.0f}",
                f"{r['peak_rss_mb']:.0f}",
                f"{1e6 * r['engine_cpu_s'] / max(1, r['ops']):.0f}",
                f"{r['journal_s']:.1f} s ({100 * r['journal_share']:.0f} %)",
                per_call("mark_sent"),
                per_call("record_outcomes"),
                f"{r['journal_mb']:.0f}",
            )
        )
    print(f"Scenario J: {ops:,} status changes streamed with a journal (each backend in its own process)")
    print(table(rows))


if __name__ == "__main__":
    main()
