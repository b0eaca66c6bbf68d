"""Scenario T: 1,000 campaign → ad set → creative → ad trees (4,000 Graph calls), three ways, side by side.

Against one simulator process with 100 ms latency per HTTP request and a standard-tier quota:
1. this engine (dependency-aware batches, concurrent, governed);
2. the official facebook-business SDK the way its docs recommend: batches of 50, sent level by level
   (it cannot express dependencies between batches), one batch at a time;
3. one call at a time (plain HTTP, no batching) — measured on a sample of trees and extrapolated,
   because the full run would take ~7 minutes by construction (4,000 × 100 ms).
Then the engine's client CPU per Graph call against a zero-latency simulator in another process.

Run: ``.venv/bin/python bench/scenario_t.py [--trees 1000] [--sample 25]``
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import time
import urllib.parse
import urllib.request
from typing import Any

import anyio
from common import adset_params, campaign_params, creative_params, simulator_process, table, tree_ops

from bulk_engine import BulkEngine, Credentials, EngineConfig


def engine_run(info: dict[str, Any], trees: int) -> dict[str, float]:
    act, page = info["ad_account_ids"][0], info["page_ids"][0]
    ops = [op for i in range(trees) for op in tree_ops(i, act, page)]
    config = EngineConfig(credentials=Credentials(access_token=info["access_token"]), graph_url=info["url"])

    async def go() -> dict[str, float]:
        cpu0, t0 = time.process_time(), time.perf_counter()
        async with BulkEngine(config) as engine:
            result = await engine.run(ops)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        assert result.counts["succeeded"] == len(ops), result.counts
        return {
            "wall_s": wall,
            "cpu_s": cpu,
            "http_requests": result.http_requests,
            "graph_calls": result.graph_calls,
            "throttle_events": result.throttle_events,
        }

    return anyio.run(go)


def sdk_run(info: dict[str, Any], trees: int) -> dict[str, float]:
    from facebook_business.adobjects.adaccount import AdAccount
    from facebook_business.api import FacebookAdsApi
    from facebook_business.session import FacebookSession

    session = FacebookSession(access_token=info["access_token"])
    session.GRAPH = info["url"]  # the simulator, never graph.facebook.com
    api = FacebookAdsApi(session, api_version="v24.0")
    act, page = info["ad_account_ids"][0], info["page_ids"][0]
    account = AdAccount(act, api=api)
    requests = 0

    def level(create: Any, params_of: Any) -> list[str]:
        nonlocal requests
        ids: list[str] = [""] * trees
        for start in range(0, trees, 50):
            batch = api.new_batch()
            for i in range(start, min(trees, start + 50)):

                def ok(resp: Any, i: int = i) -> None:
                    ids[i] = resp.json()["id"]

                def fail(resp: Any) -> None:
                    raise RuntimeError(resp.error())

                create(params=params_of(i), batch=batch, success=ok, failure=fail)
            while batch is not None:  # the SDK hands back a batch of the requests to retry
                requests += 1
                batch = batch.execute()
        return ids

    t0 = time.perf_counter()
    campaigns = level(account.create_campaign, campaign_params)
    adsets = level(account.create_ad_set, lambda i: {**adset_params(i), "campaign_id": campaigns[i]})
    creatives = level(account.create_ad_creative, lambda i: creative_params(i, page))
    # "For ad creation you should only have 10 or less ads per batch" (S003): the docs-following way
    # sends ads in batches of 10.
    ads_requests = 0
    for start in range(0, trees, 10):
        batch = api.new_batch()
        for i in range(start, min(trees, start + 10)):
            account.create_ad(
                params={
                    "name": f"Ad {i}",
                    "adset_id": adsets[i],
                    "creative": {"creative_id": creatives[i]},
                    "status": "PAUSED",
                },
                batch=batch,
                success=lambda r: None,
                failure=lambda r: (_ for _ in ()).throw(RuntimeError(r.error())),
            )
        while batch is not None:
            ads_requests += 1
            batch = batch.execute()
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "http_requests": requests + ads_requests, "graph_calls": 4 * trees}


def one_at_a_time(info: dict[str, Any], trees: int) -> dict[str, float]:
    act, page, token = info["ad_account_ids"][0], info["page_ids"][0], info["access_token"]

    def post(path: str, params: dict[str, Any]) -> str:
        data = {k: json.dumps(v) if isinstance(v, (dict, list)) else str(v) for k, v in params.items()}
        data["access_token"] = token
        req = urllib.request.Request(
            f"{info['url']}/v24.0/{path}", data=urllib.parse.urlencode(data).encode()
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return str(json.loads(resp.read())["id"])

    t0 = time.perf_counter()
    for i in range(trees):
        c = post(f"{act}/campaigns", campaign_params(i))
        a = post(f"{act}/adsets", {**adset_params(i), "campaign_id": c})
        cr = post(f"{act}/adcreatives", creative_params(i, page))
        post(
            f"{act}/ads",
            {"name": f"Ad {i}", "adset_id": a, "creative": {"creative_id": cr}, "status": "PAUSED"},
        )
    return {"wall_s": time.perf_counter() - t0, "http_requests": 4 * trees, "graph_calls": 4 * trees}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trees", type=int, default=1000)
    parser.add_argument("--sample", type=int, default=25, help="trees for the one-at-a-time sample")
    args = parser.parse_args()
    trees = args.trees
    sim_args = ["--latency-ms", "100", "--tier", "standard_access"]
    with simulator_process(*sim_args) as info:
        engine = engine_run(info, trees)
    with simulator_process(*sim_args) as info:
        sdk = sdk_run(info, trees)
    with simulator_process(*sim_args) as info:
        single = one_at_a_time(info, args.sample)
    single_full = single["wall_s"] * trees / args.sample
    with simulator_process("--tier", "standard_access") as info:
        zero = engine_run(info, trees)
    lower_bound = max(math.ceil(4 * trees / 50), math.ceil(trees / 10))
    rows = [
        ("way", "wall s", "HTTP requests", "vs engine"),
        ("engine", f"{engine['wall_s']:.2f}", str(int(engine["http_requests"])), "1.0x"),
        (
            "SDK batches, level by level",
            f"{sdk['wall_s']:.2f}",
            str(int(sdk["http_requests"])),
            f"{sdk['wall_s'] / engine['wall_s']:.1f}x slower",
        ),
        (
            f"one call at a time (extrapolated from {args.sample} trees)",
            f"{single_full:.1f}",
            str(4 * trees),
            f"{single_full / engine['wall_s']:.1f}x slower",
        ),
    ]
    print(f"Scenario T: {trees} trees = {4 * trees} Graph calls, 100 ms latency per HTTP request\n")
    print(table(rows))
    print(
        f"\nengine HTTP requests / packing lower bound ({lower_bound}): "
        f"{engine['http_requests'] / lower_bound:.2f}"
    )
    print(f"engine throttle events: {int(engine['throttle_events'])}")
    us = 1e6 * zero["cpu_s"] / zero["graph_calls"]
    print(
        f"engine client CPU per Graph call (zero-latency simulator in another process): {us:.1f} us "
        f"({zero['cpu_s']:.2f} s CPU for {int(zero['graph_calls'])} calls, wall {zero['wall_s']:.2f} s)"
    )
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
