"""Where the engine's client CPU goes: scenario T against a zero-latency simulator in another process.

Runs the engine once to warm up (imports, first-use caches, connections), then once more under
``cProfile`` against a fresh simulator, and prints the self time grouped by area (planning, wire
encoding, answer decoding, transport, …) followed by the top functions. Profiling inflates small
Python functions more than C code, so read the *shares*, not the absolute seconds; the unprofiled
figure is ``scenario_t.py``'s "client CPU per Graph call".

Run: ``.venv/bin/python bench/profile_engine.py [--trees 1000] [--top 30] [--runs 3] [--pyinstrument]``
(``--pyinstrument`` prints a call tree instead, if pyinstrument is installed).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from collections import defaultdict
from typing import Any

import anyio
from common import simulator_process, tree_ops

from bulk_engine import BulkEngine, Credentials, EngineConfig

# (area, substrings of the profiled file path), first match wins
AREAS: list[tuple[str, tuple[str, ...]]] = [
    ("planning: batch packing (planning/batcher.py)", ("planning/batcher.py", "planning/packing.py")),
    ("planning: dependency graph (planning/graph.py)", ("planning/graph.py", "planning/operation.py")),
    ("wire: encode batches (protocol/batch.py)", ("protocol/batch.py",)),
    ("refs: JSONPath resolution (protocol/refs.py, jsonpath_ng)", ("protocol/refs.py", "jsonpath_ng")),
    ("usage headers (protocol/usage.py)", ("protocol/usage.py", "protocol/usage_model.py")),
    ("error classification (protocol/errors.py)", ("protocol/errors.py",)),
    (
        "runner + governor + engine (execution/, engine.py)",
        ("execution/", "bulk_engine/engine.py", "bulk_engine/admission.py"),
    ),
    ("form encoding of the request (urllib.parse via aiohttp)", ("urllib/parse.py",)),
    ("JSON (json module)", ("json/",)),
    ("HTTP client (aiohttp, yarl, multidict)", ("aiohttp", "yarl", "multidict")),
    ("event loop (asyncio, anyio, selectors)", ("asyncio", "anyio", "selectors")),
]


def _area(filename: str) -> str:
    for name, needles in AREAS:
        if any(needle in filename for needle in needles):
            return name
    if filename == "~":
        return "C builtins (str, dict, list methods ...)"
    return "other"


def run_once(trees: int, profiler: Any = None) -> tuple[float, int]:
    with simulator_process("--tier", "standard_access") as info:
        act, page = info["ad_account_ids"][0], info["page_ids"][0]
        ops = [op for i in range(trees) for op in tree_ops(i, act, page)]
        config = EngineConfig(
            credentials=Credentials(access_token=info["access_token"]), graph_url=info["url"]
        )

        async def go() -> None:
            async with BulkEngine(config) as engine:
                result = await engine.run(ops)
            assert result.counts["succeeded"] == len(ops), result.counts

        cpu0 = time.process_time()
        if profiler is not None:
            profiler.start() if hasattr(profiler, "start") else profiler.enable()
        anyio.run(go)
        if profiler is not None:
            profiler.stop() if hasattr(profiler, "stop") else profiler.disable()
        return time.process_time() - cpu0, len(ops)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trees", type=int, default=1000)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3, help="profiled runs; the least disturbed is shown")
    parser.add_argument("--pyinstrument", action="store_true")
    args = parser.parse_args()
    run_once(args.trees)  # warm-up
    if args.pyinstrument:
        import pyinstrument

        sampler = pyinstrument.Profiler(async_mode="disabled", interval=0.001)
        cpu, calls = run_once(args.trees, sampler)
        print(sampler.output_text(unicode=False, color=False))
        print(f"CPU under the sampling profiler: {1e6 * cpu / calls:.0f} us per Graph call")
        return
    # cProfile's timer is the wall clock: time the process spends descheduled (a busy shared machine)
    # lands in whatever function was running. Keep the least disturbed of --runs profiled runs.
    best: tuple[float, float, int, pstats.Stats] | None = None
    for _ in range(args.runs):
        profile = cProfile.Profile()
        cpu, calls = run_once(args.trees, profile)
        candidate = pstats.Stats(profile)
        wall = candidate.total_tt  # type: ignore[attr-defined]
        if best is None or wall < best[0]:
            best = (wall, cpu, calls, candidate)
    assert best is not None
    _, cpu, calls, stats = best
    by_area: dict[str, float] = defaultdict(float)
    total = 0.0
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    idle = 0.0
    for (filename, _line, name), (_cc, _nc, tottime, _ct, callers) in raw.items():
        if filename == "~" and "poll" in name and "select" in name:
            idle += tottime  # waiting for the simulator's answers (cProfile's timer is the wall clock)
            continue
        total += tottime
        if filename != "~" or not callers:
            by_area[_area(filename)] += tottime
            continue
        # A C builtin (dict.get, str.join, ...): charge its time to the callers' areas.
        for (caller_file, _l, _n), caller_stats in callers.items():
            by_area[_area(caller_file)] += caller_stats[2]
        by_area["C builtins (str, dict, list methods ...)"] += tottime - sum(c[2] for c in callers.values())
    print(
        f"scenario T, {args.trees} trees = {calls} Graph calls; CPU under cProfile {1e6 * cpu / calls:.0f} us/call "
        f"(profiled time {total:.2f} s, plus {idle:.2f} s waiting in epoll, left out)\n"
    )
    print("self time by area (share of the profiled total):")
    for name, seconds in sorted(by_area.items(), key=lambda kv: -kv[1]):
        print(f"  {100 * seconds / total:5.1f} %  {1e6 * seconds / calls:6.1f} us/call  {name}")
    print()
    stats.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
