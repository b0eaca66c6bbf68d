"""Scenario S: scale-out across ad accounts (issue 8 item 3).

Ten ad accounts on ONE simulator process (100 ms latency per HTTP request, the development tier's quota of
300 calls per rolling hour per account, time-scaled so pacing dominates: ``--scale 3600`` makes the quota
300 calls per real second per account). Every account gets ``--ops`` status changes of its own seeded
campaigns, streamed (a generator, read in windows like a CSV). Side by side, each against a fresh simulator:

- **A**: 1 engine process, 1 account (the per-account unit of work);
- **B**: 1 engine process, all 10 accounts (the job interleaves the accounts);
- **C**: 10 engine processes, one account each (standing in for Airflow mapped tasks), started together.

Throughput = ops ÷ the job's span (first op sent → last outcome, over all processes); the wall time from
spawning the processes is printed too (it adds interpreter start-up). Ratios: C ÷ A is the issue's "10
processes vs one process of one account" (target ≥ 8×); B ÷ A and C ÷ B show whether one process over the
ten accounts is enough. Every engine process and the simulator report their CPU: the simulator is
single-threaded Python, so it is the shared bottleneck once the client side is spread out.

``--flat-out`` adds B and C again with zero latency and a quota that never paces: there the only limits are
CPU (two cores shared by the simulator and the engines).

``--only A,D`` runs some of the scenarios (A, B, C, D; B' and C' with ``--flat-out``; P is scenario P of
``prefilled.py``, both variants, ``--p-ops`` status changes); ``--repeat N`` runs each N times and prints
medians (the range of the span in brackets). Refused calls are counted in the simulator's call log (error
80004), per 1,000 calls the simulator received; "throttles" is the engines' own count (throttled operations).

Run: ``.venv/bin/python bench/scale_out.py [--ops 6000] [--scale 3600] [--flat-out] [--only A,B,C,D,P]
[--repeat N] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import anyio
from common import process_cpu_s, simulator_process, table

from bulk_engine import BulkEngine, Credentials, EngineConfig, Operation, OpKind, ScaledClock
from bulk_engine.execution.clock import Clock, SystemClock

ACCOUNTS = [f"act_20000000{i:02d}" for i in range(1, 11)]
TOKEN_ENV = "BENCH_SCALE_OUT_TOKEN"  # the worker's token travels in the environment, never in argv


# --- a worker: one engine process over some accounts ----------------------------------------------------------
Share = tuple[str, int, int]  # (ad account, first campaign id, how many): one process's part of an account


def _ops(shares: list[Share]) -> Any:
    """Status changes of each share's campaigns, interleaved account by account (round robin)."""
    longest = max(count for _, _, count in shares)
    for k in range(longest):
        for act, first, count in shares:
            if k < count:
                yield Operation(
                    op_id=f"{act}/{first + k}",
                    method="POST",
                    path=str(first + k),
                    account_id=act,
                    kind=OpKind.UPDATE,
                    params={"status": "PAUSED"},
                )


async def _work(url: str, scale: float, shares: list[Share]) -> dict[str, Any]:
    clock: Clock = ScaledClock(scale) if scale != 1 else SystemClock()
    config = EngineConfig(credentials=Credentials(access_token=os.environ[TOKEN_ENV]), graph_url=url, seed=1)
    states: dict[str, int] = {}
    async with BulkEngine(config, clock=clock) as engine:
        started = time.time()
        cpu0 = time.process_time()
        run = engine.stream(_ops(shares))
        async for outcome in run:
            states[outcome.state.value] = states.get(outcome.state.value, 0) + 1
        ended = time.time()
        stats = run.result
    return {
        "accounts": len({act for act, _, _ in shares}),
        "states": states,
        "started": started,
        "ended": ended,
        "job_cpu_s": time.process_time() - cpu0,
        "throttle_events": stats.throttle_events,
        "http_requests": stats.http_requests,
    }


def worker(argv: list[str]) -> None:
    url, scale, shares_json = argv
    shares = [(str(act), int(first), int(count)) for act, first, count in json.loads(shares_json)]
    result = anyio.run(_work, url, float(scale), shares)
    result["process_cpu_s"] = time.process_time()
    result["engine"] = str(Path(sys.modules["bulk_engine"].__file__ or "").parent)  # which tree ran
    print(json.dumps(result))


# --- the driver -----------------------------------------------------------------------------------------------
def run_processes(info: dict[str, Any], scale: float, groups: list[list[Share]]) -> dict[str, Any]:
    """One engine process per group of shares, all started at once; their results and the span."""
    env = {**os.environ, TOKEN_ENV: info["access_token"], "PYTHONUNBUFFERED": "1"}
    sim_cpu0 = process_cpu_s(info["pid"])
    spawned = time.time()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--worker",
                info["url"],
                str(scale),
                json.dumps(group),
            ],
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        for group in groups
    ]
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"a worker failed with exit code {proc.returncode}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    finished = time.time()
    sim_cpu = process_cpu_s(info["pid"]) - sim_cpu0
    with urllib.request.urlopen(f"{info['url']}/__sim__/calls", timeout=120) as resp:
        calls = json.loads(resp.read())
    ops = sum(sum(r["states"].values()) for r in results)
    span = max(r["ended"] for r in results) - min(r["started"] for r in results)
    return {
        "processes": len(groups),
        "accounts": len({act for group in groups for act, _, _ in group}),
        "ops": ops,
        "succeeded": sum(r["states"].get("succeeded", 0) for r in results),
        "span_s": span,
        "wall_s": finished - spawned,
        "ops_per_s": ops / span,
        "engine_cpu_s": sum(r["process_cpu_s"] for r in results),
        "simulator_cpu_s": sim_cpu,
        "throttle_events": sum(r["throttle_events"] for r in results),
        "calls": len(calls),
        "refused": sum(1 for c in calls if c.get("error_code") in (80004, 4, 17)),
        "http_requests": sum(r["http_requests"] for r in results),
        "engine": sorted({r["engine"] for r in results}),
        "slowest_worker_s": max(r["ended"] - r["started"] for r in results),
        "fastest_worker_s": min(r["ended"] - r["started"] for r in results),
    }


Layout = list[list[tuple[str, int, int]]]
"""Per engine process, its (ad account, part, parts): the part-th of ``parts`` equal slices of its campaigns."""


def scenario(
    label: str, layout: Layout, ops: int, sim_config: dict[str, Any], scale: float
) -> dict[str, Any]:
    accounts = sorted({act for process in layout for act, _, _ in process})
    config = {**sim_config, "ad_account_ids": accounts, "seed_campaigns": ops}
    with simulator_process(config=config) as info:
        spans = info["seeded_campaigns"]
        groups: list[list[Share]] = []
        for process in layout:
            group: list[Share] = []
            for act, part, parts in process:
                first, count = int(spans[act][0]), int(spans[act][1])
                size = -(-count // parts)
                group.append((act, first + part * size, min(size, count - part * size)))
            groups.append(group)
        result = run_processes(info, scale, groups)
    result["label"] = label
    return result


SCENARIOS = ("A", "B", "C", "D", "B'", "C'", "P")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=6000, help="status changes per account (default 6000)")
    parser.add_argument("--scale", type=float, default=3600.0, help="virtual seconds per real second")
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--share", type=int, default=4, help="D: processes sharing one account (0: skip D)")
    parser.add_argument("--flat-out", action="store_true", help="also B and C with zero latency, no pacing")
    parser.add_argument(
        "--only", help="comma list of scenarios: A,B,C,D,B',C',P (default: A-D, B'/C' with --flat-out)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="run each scenario N times, print medians")
    parser.add_argument("--p-ops", type=int, default=900, help="P: status changes of the engine run")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.only:
        only = [name.strip().upper() for name in args.only.split(",") if name.strip()]
        unknown = [name for name in only if name not in SCENARIOS]
        if unknown:
            parser.error(f"unknown scenarios {unknown}; choose from {','.join(SCENARIOS)}")
    else:
        only = ["A", "B", "C"] + (["D"] if args.share else []) + (["B'", "C'"] if args.flat_out else [])
    paced = {
        "access_tier": "development_access",  # 300 calls per rolling hour per account (no active ads)
        "time_scale": args.scale,
        "faults": {"latency_ms": args.latency_ms},
    }
    flat = {"access_tier": "standard_access", "quota_override": 10**9, "app_users": 10**6}
    one: Layout = [[(ACCOUNTS[0], 0, 1)]]
    ten: Layout = [[(act, 0, 1) for act in ACCOUNTS]]
    apart: Layout = [[(act, 0, 1)] for act in ACCOUNTS]
    shared: Layout = [[(ACCOUNTS[0], part, args.share)] for part in range(max(1, args.share))]
    plans: dict[str, tuple[str, Layout, dict[str, Any], float]] = {
        "A": ("A: 1 process, 1 account", one, paced, args.scale),
        "B": ("B: 1 process, 10 accounts", ten, paced, args.scale),
        "C": ("C: 10 processes, 1 account each", apart, paced, args.scale),
        "D": (f"D: {args.share} processes share 1 account", shared, paced, args.scale),
        "B'": ("B': flat out, 1 process, 10 accounts", ten, flat, 1.0),
        "C'": ("C': flat out, 10 processes", apart, flat, 1.0),
    }
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in only if name != "P"}
    for _ in range(args.repeat):
        for name in runs:
            label, layout, sim_config, scale = plans[name]
            result = scenario(label, layout, args.ops, sim_config, scale)
            result["scenario"] = name
            runs[name].append(result)
            print(json.dumps(result), flush=True)
    if runs:
        report(runs, args)
    prefilled_runs = None
    if "P" in only:
        import prefilled  # scenario P lives in its own file: it needs its own simulator server (prefilled.py)

        p_args = argparse.Namespace(
            ops=args.p_ops,
            prefill=270,
            repeat=args.repeat,
            scale=args.scale,
            latency_ms=args.latency_ms,
            margin_s=60.0,
        )
        prefilled_runs = prefilled.run_all(["burst", "spread"], p_args)
        print()
        prefilled.report(prefilled_runs, p_args)
    if args.json:
        args.json.write_text(json.dumps({"S": runs, "P": prefilled_runs}, indent=2))


def _median(rows: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def median_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The medians of the repeats of one scenario (every numeric figure on its own)."""
    out = dict(rows[-1])
    for key, value in rows[0].items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = _median(rows, key)
    out["repeats"] = len(rows)
    out["span_range"] = (min(r["span_s"] for r in rows), max(r["span_s"] for r in rows))
    out["refused_range"] = (min(r["refused"] for r in rows), max(r["refused"] for r in rows))
    return out


def report(runs: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> None:
    quota_rate = 300 * args.scale / 3600  # calls per real second per account under the development tier
    repeats = max(len(rows) for rows in runs.values())
    print(
        f"Scenario S: {args.ops:,} status changes per account, one simulator process, {args.latency_ms:.0f} ms "
        f"latency, 300 calls/h per account time-scaled {args.scale:g}x (= {quota_rate:,.0f} calls/s per account)"
        + (f"; medians of {repeats} repeats (range)" if repeats > 1 else "")
    )
    results = {name: median_row(rows) for name, rows in runs.items()}
    rows: list[tuple[str, ...]] = [
        (
            "run",
            "ops",
            "span s",
            "ops/s",
            "wall s",
            "engine CPU s",
            "sim CPU s (% of span)",
            "throttles",
            "refused (per 1k calls)",
        )
    ]
    for r in results.values():
        span = f"{r['span_s']:.1f}"
        refused = f"{r['refused']:.0f} ({1000 * r['refused'] / max(1, r['calls']):.1f})"
        if r["repeats"] > 1:
            span += f" ({r['span_range'][0]:.1f}–{r['span_range'][1]:.1f})"
            refused += f" ({r['refused_range'][0]}–{r['refused_range'][1]})"
        rows.append(
            (
                r["label"],
                f"{r['ops']:,.0f}",
                span,
                f"{r['ops_per_s']:,.0f}",
                f"{r['wall_s']:.1f}",
                f"{r['engine_cpu_s']:.1f}",
                f"{r['simulator_cpu_s']:.1f} ({100 * r['simulator_cpu_s'] / r['span_s']:.0f} %)",
                f"{r['throttle_events']:.0f}",
                refused,
            )
        )
    print(table(rows))
    bound = args.ops / quota_rate
    paced = [name for name in ("A", "B", "C", "D") if name in results]
    if paced:
        shares = ", ".join(f"{name} {bound / results[name]['span_s']:.0%}" for name in paced)
        print(f"quota bound per account {bound:.1f} s; ran at: {shares}")
    a, b, c = results.get("A"), results.get("B"), results.get("C")
    if a and c:
        print(
            f"throughput C / A = {c['ops_per_s'] / a['ops_per_s']:.2f}x (target >= 8x; slowest C worker "
            f"{c['slowest_worker_s']:.1f} s)"
        )
    if a and b:
        print(f"throughput B / A = {b['ops_per_s'] / a['ops_per_s']:.2f}x")
    if b and c:
        print(f"throughput C / B = {c['ops_per_s'] / b['ops_per_s']:.2f}x")
    if a and b and c:
        print(
            f"with start-up (spawn -> last exit): C / A = {(c['ops'] / c['wall_s']) / (a['ops'] / a['wall_s']):.2f}x, "
            f"B / A = {(b['ops'] / b['wall_s']) / (a['ops'] / a['wall_s']):.2f}x"
        )
    d = results.get("D")
    if d is not None:
        per_1k = 1000 * d["refused"] / max(1, d["calls"])
        print(
            f"D ({args.share} processes, one account's {args.ops:,} ops): {bound / d['span_s']:.0%} of the quota "
            f"bound, {d['refused']:.0f} refused calls = {per_1k:.1f} per 1,000 calls (target <= 1: "
            f"{'met' if per_1k <= 1 else 'MISSED'}), {d['throttle_events']:.0f} throttle events"
        )
    if "B'" in results and "C'" in results:
        ratio = results["C'"]["ops_per_s"] / results["B'"]["ops_per_s"]
        print(f"flat out: C' / B' = {ratio:.2f}x")
    failed = [r["label"] for rows in runs.values() for r in rows if r["succeeded"] != r["ops"]]
    if failed:
        print("NOT ALL SUCCEEDED:", failed)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2:])
    else:
        main()
