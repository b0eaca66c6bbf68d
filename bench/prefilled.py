"""Scenario P: one engine run on an ad account another client has already filled to 90 % (issue 13).

Setup, as scenario S (``scale_out.py``): one simulator process, the development tier's quota (300 calls per
rolling hour, no active ads), time-scaled 3600x (a virtual hour per real second), 100 ms latency per HTTP
request (= 6 virtual minutes per round trip). Before the engine starts, "another client" has put
``--prefill`` (270) calls into the account's ads-management window, in one of two shapes:

- **burst**: all 270 calls at one instant, just before the engine's first call;
- **spread**: 270 calls spread evenly over the hour before the engine's first call (one every 13.3 virtual
  seconds, the oldest about to leave the window, the newest just counted).

The prefill is **seeded** into the simulator's rate window through its own counting path
(``RateLimiter.charge`` with the calls' virtual times; the app's window counts them too): the server then
holds exactly what it would hold had another client sent those calls over HTTP — which for the spread
shape cannot be done at the moment the engine starts (no one sends in the past). It is seeded by a command
on the simulator's stdin, sent by this process once its engine is set up (``async with BulkEngine``), and
the engine's run starts right after the answer, so the prefill does not age during an interpreter's
start-up (0.3–0.5 s real = 18–30 virtual minutes at 3600x) or the engine's set-up. Then that one engine
(default config, ``ScaledClock`` of the same scale) runs ``--ops`` (900) status changes of seeded
campaigns.

Reported, from the simulator's own logs (virtual time, identical for any engine version):

- **span**: the engine's first HTTP request arriving → its last call counted (= answered);
- **quota bound**: the span of the optimal schedule — a client that knows the server's window, sends
  from the same first arrival (its first calls are counted one latency later, as the engine's are) and
  puts each call into the window the instant the window holds fewer than 300 calls (the simulator counts
  in 1 s buckets; a call counted at ``c`` leaves at ``floor(c) + 1 + 3600``). Greedy is optimal for a
  rolling-window count. For the burst, with ``t_p`` the prefill's instant and ``L`` one latency: 30 calls
  at ``t0 + L``, then 270 when the prefill leaves at ``t_p + 3601``, 30 when the first 30 leave, … (300 per
  window); for 900 calls the last goes ≈ 3 h after the start. For the spread: 30 calls at ``t0 + L``, then
  one call each time a prefill call leaves (270 per hour), 30 more at each hour mark — again ≈ 3 h for 900.
  The same greedy at the engine's own ceiling (``GovernorConfig.ceiling_pct`` of the engine under test:
  floor(97 % × 300) = 291 calls, before the rewrite floor(90 % × 300) = 270) is printed as the *ceiling
  bound*: the best any client can do that never fills the window beyond that ceiling;
- **refused**: calls the simulator answered 80004 (the engine's throttle events are printed too);
- **longest gap**: the longest time between two consecutive HTTP requests of the engine (arrivals), the
  engine's wait after the last answer it had before that gap ended, and the server's own estimate in that
  answer (``reset_time_duration`` of ``X-Ad-Account-Usage``: time until the account's usage is back to 0,
  or until access is regained while blocked), plus when room for one call under the engine's ceiling came
  back by the server's count. The engine's own ``Waiting`` events (``seconds``) are recorded too (the
  governor before the rewrite has none: "—").

Targets (issue 13): span ≤ 1.1 × quota bound, 0 refused calls, no single wait longer than the server's
estimate plus a small margin (``--margin-s``, default 60 virtual seconds: 1 s buckets, the engine's 5 s
aging margin, and 1 ms of event-loop jitter = 3.6 virtual seconds at 3600x).

Run: ``.venv/bin/python bench/prefilled.py [--variants burst,spread] [--ops 900] [--repeat 3] [--json out]``
(an older engine: ``PYTHONPATH=<tree>``; ``BENCH_SIMULATOR_PYTHONPATH`` as for the other benches)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import signal
import statistics
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ACT = "act_2000000001"
BUC = "ads_management"


# --- the simulator process: a SimulatorServer with a command channel on stdin ----------------------------------
async def _serve(config_json: str) -> None:
    from bulk_engine.simulator import SimulatorConfig, SimulatorServer
    from bulk_engine.simulator.errors import GraphAPIError

    config = SimulatorConfig.model_validate(json.loads(config_json))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with SimulatorServer(config) as server:
        core = server.core
        limiter = core.rate_limiter
        charges: list[tuple[float, int, bool]] = []  # (virtual time, calls, refused) of ACT's ads management
        readings: list[tuple[float, float, float, float]] = []  # (time, pct, reset_s, regain_s) rendered
        charge, headers = limiter.charge, limiter.headers

        def logged_charge(account_id: str | None, buc_type: str, calls: int, now: float) -> None:
            try:
                charge(account_id, buc_type, calls, now)
            except GraphAPIError:
                if account_id == ACT and buc_type == BUC:
                    charges.append((now, calls, True))
                raise
            if account_id == ACT and buc_type == BUC:
                charges.append((now, calls, False))

        def logged_headers(account_ids: Any, now: float, buc_type: str | None = None) -> dict[str, str]:
            out = headers(account_ids, now, buc_type)
            if account_ids == ACT or (not isinstance(account_ids, str) and ACT in list(account_ids or ())):
                usage = limiter.usage(ACT, BUC, now)
                row = (now, usage.pct, math.ceil(usage.reset_s), usage.regain_s)
                if readings and readings[-1][0] == now:
                    readings[-1] = row
                else:
                    readings.append(row)
            return out

        limiter.charge = logged_charge  # type: ignore[method-assign]
        limiter.headers = logged_headers  # type: ignore[method-assign]
        prefill_times: list[float] = []

        def command(cmd: dict[str, Any]) -> dict[str, Any]:
            if cmd["cmd"] == "prefill":
                now = core.clock.now()
                n, window_s = int(cmd["calls"]), config.window_s
                if cmd["variant"] == "burst":
                    times = [now] * n
                else:  # evenly over the preceding window: the newest at now, the oldest 1/n of a window in
                    times = [now - window_s + (k + 1) * window_s / n for k in range(n)]
                for t in times:
                    charge(ACT, BUC, 1, t)  # the simulator's own counting path, at the calls' times
                prefill_times.extend(times)
                usage = limiter.usage(ACT, BUC, now)
                return {"now": now, "pct": usage.pct, "quota": usage.quota, "reset_s": usage.reset_s}
            if cmd["cmd"] == "log":
                requests = [
                    {"time": r["time"], "latency_ms": r["latency_ms"], "ops": r["ops"], "status": r["status"]}
                    for r in core.http_requests
                ]
                refused_log = sum(1 for c in core.calls if c.error_code == 80004)
                return {
                    "prefill": prefill_times,
                    "charges": charges,
                    "readings": readings,
                    "requests": requests,
                    "refused_in_call_log": refused_log,
                    "quota": limiter.quota(ACT, BUC),
                    "window_s": config.window_s,
                    "time_scale": config.time_scale,
                }
            return {"error": f"unknown command {cmd!r}"}

        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

        async def commands() -> None:
            while line := await reader.readline():
                sys.stdout.write(json.dumps(command(json.loads(line))) + "\n")
                sys.stdout.flush()
            stop.set()  # the driver went away

        sys.stdout.write(json.dumps(server.info()) + "\n")
        sys.stdout.flush()
        task = asyncio.ensure_future(commands())
        await stop.wait()
        task.cancel()


class Simulator:
    """The simulator process and its command channel."""

    def __init__(self, proc: subprocess.Popen[str], info: dict[str, Any]) -> None:
        self.proc, self.info = proc, info

    def ask(self, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())


@contextmanager
def simulator(config: dict[str, Any]) -> Iterator[Simulator]:
    from common import _simulator_env

    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", json.dumps(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=_simulator_env(),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the simulator did not start")
        yield Simulator(proc, json.loads(line))
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


# --- the engine ---------------------------------------------------------------------------------------------
async def _engine_run(
    url: str, token: str, first: int, ops: int, scale: float, prefill: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """The engine run; ``prefill`` is called once the engine is set up, just before its first call."""
    from bulk_engine import BulkEngine, Credentials, EngineConfig, Operation, OpKind, ScaledClock

    waits: list[dict[str, Any]] = []
    throttled = 0

    def observer(event: Any) -> None:
        nonlocal throttled
        name = type(event).__name__
        if name == "Waiting":  # the governor before issue 13 has no such event
            waits.append({"seconds": event.seconds, "reason": event.reason, "usage_pct": event.usage_pct})
        elif name == "Throttled":
            throttled += 1

    operations = [
        Operation(
            op_id=f"p{k}",
            method="POST",
            path=str(first + k),
            account_id=ACT,
            kind=OpKind.UPDATE,
            params={"status": "PAUSED"},
        )
        for k in range(ops)
    ]
    config = EngineConfig(credentials=Credentials(access_token=token), graph_url=url, seed=1)
    async with BulkEngine(config, clock=ScaledClock(scale), observer=observer) as engine:
        filled = prefill()  # blocks the loop for a pipe round trip: nothing of the engine runs yet
        result = await engine.run(operations)
    return {
        "filled": filled,
        "counts": dict(result.counts),
        "throttle_events": result.throttle_events,
        "throttled_batches": throttled,
        "waits": waits,
        "ceiling_pct": config.governor.ceiling_pct,
        "engine": str(Path(sys.modules["bulk_engine"].__file__ or "").parent),  # which tree ran
    }


# --- the figures --------------------------------------------------------------------------------------------
def optimum(prefill: list[float], ops: int, start: float, cap: int, window_s: float) -> float:
    """When the last of ``ops`` calls is counted by the best schedule: from ``start`` on, each call goes the
    instant the window holds fewer than ``cap`` calls (the simulator's 1 s buckets: a call counted at ``c``
    leaves at ``floor(c) + 1 + window_s``)."""
    leaving: deque[list[float]] = deque()
    for leave in sorted(math.floor(c) + 1 + window_s for c in prefill):
        if leaving and leaving[-1][0] == leave:
            leaving[-1][1] += 1
        else:
            leaving.append([leave, 1])
    in_window = sum(int(n) for _, n in leaving)
    t, sent = start, 0
    while True:
        while leaving and leaving[0][0] <= t:
            in_window -= int(leaving.popleft()[1])
        room = cap - in_window
        if room > 0:
            k = min(room, ops - sent)
            sent += k
            in_window += k
            leave = math.floor(t) + 1 + window_s
            if leaving and leaving[-1][0] == leave:
                leaving[-1][1] += k
            else:
                leaving.append([leave, k])
            if sent == ops:
                return t
        t = leaving[0][0]


def _count_at(counted: list[float], x: float, window_s: float) -> int:
    return sum(1 for c in counted if c <= x < math.floor(c) + 1 + window_s)


def figures(log: dict[str, Any], ops: int, ceiling_pct: float, latency_s: float) -> dict[str, Any]:
    scale, window_s, quota = log["time_scale"], log["window_s"], log["quota"]
    requests = sorted(log["requests"], key=lambda r: r["time"])
    sends = [r["time"] for r in requests]
    engine_charges = [(t, n, refused) for t, n, refused in log["charges"]]
    t0 = sends[0]
    end = max(t for t, _, _ in engine_charges)
    start = t0 + latency_s * scale  # the first call is counted one latency after it is sent
    bound = optimum(log["prefill"], ops, start, quota, window_s) - t0
    cap = math.floor(ceiling_pct / 100.0 * quota)
    ceiling_bound = optimum(log["prefill"], ops, start, cap, window_s) - t0
    refused = sum(n for _, n, r in engine_charges if r)
    calls = sum(n for _, n, _ in engine_charges)
    # The longest gap between consecutive sends, and what the engine knew when it ended.
    gap, gap_at = 0.0, 0
    for i in range(1, len(sends)):
        if sends[i] - sends[i - 1] > gap:
            gap, gap_at = sends[i] - sends[i - 1], i
    out: dict[str, Any] = {
        "ops": ops,
        "calls": calls,
        "requests": len(requests),
        "span_h": (end - t0) / 3600.0,
        "bound_h": bound / 3600.0,
        "x_bound": (end - t0) / bound,
        "ceiling_pct": ceiling_pct,
        "ceiling_bound_h": ceiling_bound / 3600.0,
        "refused": refused,
        "refused_in_call_log": log["refused_in_call_log"],
        "per_1000": 1000.0 * refused / max(1, calls),
        "prefill_pct_at_start": 100.0 * _count_at(log["prefill"], t0, window_s) / quota,
        "longest_gap_min": gap / 60.0,
    }
    if gap_at:
        ended = sends[gap_at]
        # The answers' usage headers are rendered when each answer is made: the last before the gap ended is
        # what the engine knew when it sent again.
        reading = max((r for r in log["readings"] if r[0] <= ended), default=None, key=lambda r: r[0])
        last_answer = reading[0] if reading else sends[gap_at - 1]
        counted = [c for c in log["prefill"]] + [
            t for t, n, _ in engine_charges for _ in range(n) if t <= last_answer
        ]
        room_at = None
        probe = last_answer
        while probe <= ended:  # when one more call fits under the engine's ceiling, by the server's count
            if _count_at(counted, probe, window_s) < cap:
                room_at = probe
                break
            probe += 10.0
        out.update(
            {
                "gap_from_h": (sends[gap_at - 1] - t0) / 3600.0,
                "wait_after_answer_min": (ended - last_answer) / 60.0,
                "server_reset_min": reading[2] / 60.0 if reading else math.nan,
                "server_regain_min": reading[3] / 60.0 if reading else math.nan,
                "server_pct": reading[1] if reading else math.nan,
                "room_back_after_min": (room_at - last_answer) / 60.0 if room_at is not None else math.nan,
            }
        )
    return out


def run_once(variant: str, ops: int, prefill: int, scale: float, latency_ms: float) -> dict[str, Any]:
    config = {
        "access_tier": "development_access",
        "time_scale": scale,
        "faults": {"latency_ms": latency_ms},
        "ad_account_ids": [ACT],
        "seed_campaigns": ops,
    }
    with simulator(config) as sim:
        first = int(sim.info["seeded_campaigns"][ACT][0])
        started = time.perf_counter()
        engine = asyncio.run(
            _engine_run(
                sim.info["url"],
                sim.info["access_token"],
                first,
                ops,
                scale,
                lambda: sim.ask(cmd="prefill", variant=variant, calls=prefill),
            )
        )
        wall = time.perf_counter() - started
        log = sim.ask(cmd="log")
    out = figures(log, ops, engine["ceiling_pct"], latency_ms / 1000.0)
    waits = [w["seconds"] for w in engine["waits"]]
    out.update(
        {
            "variant": variant,
            "prefill_pct": engine["filled"]["pct"],
            "succeeded": engine["counts"].get("succeeded", 0),
            "engine_throttle_events": engine["throttle_events"],
            "waiting_events": len(waits),
            "max_waiting_min": max(waits) / 60.0 if waits else None,
            "wall_s": wall,
            "engine": engine["engine"],
        }
    )
    return out


# --- printing -----------------------------------------------------------------------------------------------
def _median(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [
        r[key]
        for r in rows
        if r.get(key) is not None and not (isinstance(r[key], float) and math.isnan(r[key]))
    ]
    return statistics.median(values) if values else None


def _fmt(value: float | None, spec: str, dash: str = "—") -> str:
    return dash if value is None else format(value, spec)


def _range(rows: list[dict[str, Any]], key: str, spec: str) -> str:
    values = [r[key] for r in rows if r.get(key) is not None]
    if len(values) < 2:
        return ""
    return f" ({format(min(values), spec)}–{format(max(values), spec)})"


def report(by_variant: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> None:
    from common import table

    repeats = max(len(rows) for rows in by_variant.values())
    print(
        f"Scenario P: {args.ops:,} status changes on an account pre-filled with {args.prefill} of 300 calls/h, "
        f"{args.latency_ms:.0f} ms latency, time scale {args.scale:g}x"
        + (f"; medians of {repeats} repeats (range)" if repeats > 1 else "")
    )
    header = (
        "variant",
        "span h",
        "quota bound h",
        "x bound",
        "ceiling bound h",
        "refused (per 1k)",
        "throttles",
        "longest gap min",
        "wait after answer min",
        "server reset min",
        "room back min",
        "max Waiting min",
    )
    rows: list[tuple[str, ...]] = [header]
    for variant, runs in by_variant.items():
        rows.append(
            (
                variant,
                _fmt(_median(runs, "span_h"), ".2f") + _range(runs, "span_h", ".2f"),
                _fmt(_median(runs, "bound_h"), ".2f"),
                _fmt(_median(runs, "x_bound"), ".2f") + _range(runs, "x_bound", ".2f"),
                f"{_fmt(_median(runs, 'ceiling_bound_h'), '.2f')} ({runs[0]['ceiling_pct']:.0f} %)",
                f"{_fmt(_median(runs, 'refused'), '.0f')} ({_fmt(_median(runs, 'per_1000'), '.1f')})"
                + _range(runs, "refused", ".0f"),
                _fmt(_median(runs, "engine_throttle_events"), ".0f"),
                _fmt(_median(runs, "longest_gap_min"), ".1f") + _range(runs, "longest_gap_min", ".1f"),
                _fmt(_median(runs, "wait_after_answer_min"), ".1f"),
                _fmt(_median(runs, "server_reset_min"), ".1f"),
                _fmt(_median(runs, "room_back_after_min"), ".1f"),
                _fmt(_median(runs, "max_waiting_min"), ".1f"),
            )
        )
    print(table(rows))
    margin = args.margin_s / 60.0
    for variant, runs in by_variant.items():
        x = _median(runs, "x_bound") or math.inf
        refused = _median(runs, "refused") or 0
        worst = max(r["wait_after_answer_min"] - r["server_reset_min"] for r in runs)
        print(
            f"{variant}: span {x:.2f}x the quota bound (target <= 1.1: {'met' if x <= 1.1 else 'MISSED'}), "
            f"refused {refused:.0f} (target 0: {'met' if refused == 0 else 'MISSED'}), longest wait after an "
            f"answer minus the server's estimate at most {worst:+.1f} min (target <= {margin:.0f} min: "
            f"{'met' if worst <= margin else 'MISSED'})"
        )
        unfinished = [r for r in runs if r["succeeded"] != r["ops"]]
        if unfinished:
            print(f"  NOT ALL SUCCEEDED in {len(unfinished)} run(s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="burst,spread", help="comma list of burst, spread")
    parser.add_argument("--ops", type=int, default=900, help="status changes of the engine run (default 900)")
    parser.add_argument("--prefill", type=int, default=270, help="calls another client put in the window")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--scale", type=float, default=3600.0)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument(
        "--margin-s", type=float, default=60.0, help="allowed excess over the server's estimate"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in variants:
        if v not in ("burst", "spread"):
            parser.error(f"unknown variant {v!r}")
    by_variant = run_all(variants, args)
    report(by_variant, args)
    if args.json:
        args.json.write_text(json.dumps(by_variant, indent=2))


def run_all(variants: list[str], args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    by_variant: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for _ in range(args.repeat):
        for variant in variants:
            row = run_once(variant, args.ops, args.prefill, args.scale, args.latency_ms)
            by_variant[variant].append(row)
            print(json.dumps(row), flush=True)
    return by_variant


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--serve":
        asyncio.run(_serve(sys.argv[2]))
    else:
        main()
