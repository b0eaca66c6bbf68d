"""Issue 17: campaigns migrated per minute — a whole account's ASC campaigns, development-tier quota.

One ad account holds ``--campaigns`` Advantage+ shopping campaigns (one ad set, ``--ads`` ACTIVE ads each,
created the v24.0 way; ``--ad-status PAUSED`` leaves the account no active ad, so its quota is the bare
300 calls per hour) on an in-process simulator with the ``development_access`` quota (S003 §Rate Limits:
300 + 40 × active ads calls per rolling hour per ad account), time-scaled by ``--scale`` (a virtual hour in
``3600 / scale`` real seconds; the engine runs a clock of the same scale). The account is filled with the
quota lifted, then the window starts empty with the real formula and one ``migrate`` task runs the whole
flow: preflight, copy and migrate (``--ads 1``: one synchronous ``/copies`` call per campaign; 3 or more: the
chunked fallback), verification with the full id map, switch-over (sources paused).

Printed: campaigns per virtual minute (what the quota allows, the figure that matters against Meta) and per
wall minute (this machine), Graph calls and HTTP requests per campaign, throttle events, and the number
migrated and verified. Medians over ``--repeat`` fresh simulators.

    .venv/bin/python bench/migrate.py --campaigns 200 --ads 1 --scale 60 --repeat 3
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import anyio

from bulk_engine import BulkEngine, Credentials, EngineConfig, Operation, OpKind, Ref, ScaledClock
from bulk_engine.operations import parse_job, run_job
from bulk_engine.simulator import SimulatorConfig, SimulatorServer
from bulk_engine.simulator.ratelimit import RateLimiter

PIXEL = {"pixel_id": "1234567890", "custom_event_type": "PURCHASE"}


def asc_tree(i: int, act: str, page: str, ads: int, ad_status: str) -> list[Operation]:
    def op(op_id: str, edge: str, kind: OpKind, params: dict[str, Any]) -> Operation:
        return Operation(
            op_id=op_id, method="POST", path=f"{act}/{edge}", params=params, account_id=act, kind=kind
        )

    return [
        op(f"c{i}", "campaigns", OpKind.CREATE_CAMPAIGN, {
            "name": f"asc {i}", "objective": "OUTCOME_SALES", "special_ad_categories": [], "status": "ACTIVE",
            "smart_promotion_type": "AUTOMATED_SHOPPING_ADS",
        }),
        op(f"s{i}", "adsets", OpKind.CREATE_ADSET, {
            "name": f"asc {i} set", "campaign_id": Ref(f"c{i}"), "billing_event": "IMPRESSIONS",
            "optimization_goal": "OFFSITE_CONVERSIONS", "promoted_object": PIXEL, "daily_budget": 5000,
            "targeting": {"geo_locations": {"countries": ["US"]}}, "status": "ACTIVE",
        }),
        op(f"cr{i}", "adcreatives", OpKind.CREATE_CREATIVE, {
            "name": f"asc {i}", "object_story_spec": {"page_id": page, "link_data": {"link": "https://example.com"}},
        }),
        *(
            op(f"a{i}.{k}", "ads", OpKind.CREATE_AD, {
                "name": f"asc {i} ad {k}", "adset_id": Ref(f"s{i}"), "creative": {"creative_id": Ref(f"cr{i}")},
                "status": ad_status,
            })
            for k in range(ads)
        ),
    ]  # fmt: skip


async def one_run(campaigns: int, ads: int, scale: float, ad_status: str) -> dict[str, float]:
    config = SimulatorConfig(time_scale=scale, access_tier="development_access", quota_override=10**9)
    async with SimulatorServer(config) as server:
        info = server.info()
        act, page, token = info["ad_account_ids"][0], info["page_ids"][0], info["access_token"]
        engine_config = EngineConfig(
            credentials=Credentials(access_token=token), graph_url=server.url, seed=7
        )
        async with BulkEngine(engine_config) as engine:
            seeded = await engine.run(
                [op for i in range(campaigns) for op in asc_tree(i, act, page, ads, ad_status)]
            )
        assert seeded.ok, seeded.counts
        core = server.core
        limiter = RateLimiter(core.config.model_copy(update={"quota_override": None}), core.clock)
        limiter.set_active_ads(act, core.rate_limiter.active_ads(act))  # the window is fresh, the ads are not
        core.rate_limiter = limiter
        spec = parse_job(
            {"account_id": act, "job_id": "bench-migrate", "tasks": [{"type": "migrate", "key": "m"}]}
        )
        calls, virtual, wall = len(core.calls), core.clock.now(), time.monotonic()
        async with BulkEngine(engine_config, clock=ScaledClock(scale)) as engine:
            report = await run_job(engine, spec)
        wall = time.monotonic() - wall
        virtual = core.clock.now() - virtual
        records = report.tasks[0].details["campaigns"]
        totals = report.to_result()
        return {
            "migrated": sum(r["state"] == "migrated" for r in records),
            "verified": sum(bool(r["verified"]) for r in records),
            "paused": sum(bool(r["source_paused"]) for r in records),
            "per_virtual_min": campaigns / (virtual / 60),
            "per_wall_min": campaigns / (wall / 60),
            "virtual_min": virtual / 60,
            "wall_s": wall,
            "graph_calls_per_campaign": (len(core.calls) - calls) / campaigns,
            "http_per_campaign": totals.http_requests / campaigns,
            "throttle_events": totals.throttle_events,
            "failed": report.counts["failed"] + report.counts["skipped"],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaigns", type=int, default=200)
    parser.add_argument("--ads", type=int, default=1, help="ads per campaign (3+: the chunked copy fallback)")
    parser.add_argument("--scale", type=float, default=60.0, help="virtual seconds per wall second")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--ad-status",
        choices=("ACTIVE", "PAUSED"),
        default="ACTIVE",
        help="PAUSED: no active ads, so the quota is the bare 300 calls per hour",
    )
    args = parser.parse_args()
    runs = [
        anyio.run(one_run, args.campaigns, args.ads, args.scale, args.ad_status) for _ in range(args.repeat)
    ]
    print(f"{args.campaigns} ASC campaigns × {args.ads} {args.ad_status} ad(s), development_access quota, scale {args.scale:g}, "
          f"medians of {args.repeat}:")  # fmt: skip
    for key in runs[0]:
        values = [r[key] for r in runs]
        print(f"  {key:26} {statistics.median(values):10.2f}   (range {min(values):.2f}–{max(values):.2f})")


if __name__ == "__main__":
    main()
