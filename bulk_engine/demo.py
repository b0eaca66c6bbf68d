"""``bulk-engine demo``: a bulk job end to end against the embedded simulator, with a live view.

It starts the simulator in-process with realistic latency and a development-tier quota (300 calls per
hour per ad account, an hour passing in a few seconds), then runs three phases through the engine:
1. create 60 click-to-Messenger campaign → ad set → creative → ad trees and one Advantage+ shopping
   campaign (the v24.0 way, before v25.0 retires ``smart_promotion_type``);
2. copy one campaign, and copy-and-migrate the shopping campaign to Advantage+
   (``/copies?migrate_to_advantage_plus=true``);
3. pause the 60 ad sets — by now the account is near its quota, so the governor paces the sends
   against the rolling window instead of tripping the throttle.
Finally it prints a summary and writes the JSON report.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .config import Credentials, EngineConfig
from .engine import BulkEngine
from .execution.clock import ScaledClock
from .planning.graph import Operation, OpKind
from .protocol.refs import Ref
from .results import JobResult, Outcome
from .simulator import FaultConfig, SimulatorConfig, SimulatorServer

TIME_SCALE = 600.0  # one virtual hour = 6 real seconds
TREES = 60


def _trees(act: str, page: str) -> list[Operation]:
    ops: list[Operation] = []
    for i in range(TREES):
        c, a, cr, ad = f"ctm-{i}-campaign", f"ctm-{i}-adset", f"ctm-{i}-creative", f"ctm-{i}-ad"
        ops += [
            Operation(
                op_id=c,
                method="POST",
                path=f"{act}/campaigns",
                account_id=act,
                kind=OpKind.CREATE_CAMPAIGN,
                params={
                    "name": f"Click to Messenger {i}",
                    "objective": "OUTCOME_ENGAGEMENT",
                    "special_ad_categories": ["NONE"],
                    "buying_type": "AUCTION",
                    "status": "PAUSED",
                },
            ),
            Operation(
                op_id=a,
                method="POST",
                path=f"{act}/adsets",
                account_id=act,
                kind=OpKind.CREATE_ADSET,
                params={
                    "name": f"Messenger US {i}",
                    "campaign_id": Ref(c),
                    "destination_type": "MESSENGER",
                    "billing_event": "IMPRESSIONS",
                    "optimization_goal": "CONVERSATIONS",
                    "promoted_object": {"page_id": page},
                    "daily_budget": 1500,
                    "targeting": {"geo_locations": {"countries": ["US"]}},
                    "status": "ACTIVE",
                },
            ),
            Operation(
                op_id=cr,
                method="POST",
                path=f"{act}/adcreatives",
                account_id=act,
                kind=OpKind.CREATE_CREATIVE,
                params={
                    "name": f"CTM creative {i}",
                    "object_story_spec": {
                        "page_id": page,
                        "link_data": {
                            "link": "https://example.com/spring",
                            "message": "Chat with us",
                            "page_welcome_message": "Hi {{user_first_name}}! How can we help?",
                            "call_to_action": {
                                "type": "MESSAGE_PAGE",
                                "value": {"app_destination": "MESSENGER"},
                            },
                        },
                    },
                },
            ),
            Operation(
                op_id=ad,
                method="POST",
                path=f"{act}/ads",
                account_id=act,
                kind=OpKind.CREATE_AD,
                params={
                    "name": f"CTM ad {i}",
                    "adset_id": Ref(a),
                    "creative": {"creative_id": Ref(cr)},
                    "status": "PAUSED",
                },
            ),
        ]
    ops += [
        Operation(
            op_id="asc-campaign",
            method="POST",
            path=f"{act}/campaigns",
            account_id=act,
            kind=OpKind.CREATE_CAMPAIGN,
            params={
                "name": "Advantage+ shopping (legacy)",
                "objective": "OUTCOME_SALES",
                "smart_promotion_type": "AUTOMATED_SHOPPING_ADS",
                "special_ad_categories": [],
                "status": "PAUSED",
            },
        ),
        Operation(
            op_id="asc-adset",
            method="POST",
            path=f"{act}/adsets",
            account_id=act,
            kind=OpKind.CREATE_ADSET,
            params={
                "name": "ASC ad set",
                "campaign_id": Ref("asc-campaign"),
                "billing_event": "IMPRESSIONS",
                "optimization_goal": "OFFSITE_CONVERSIONS",
                "daily_budget": 5000,
                "promoted_object": {"pixel_id": "555000111", "custom_event_type": "PURCHASE"},
                "targeting": {"geo_locations": {"countries": ["US"]}},
                "status": "PAUSED",
            },
        ),
    ]
    return ops


def _copies(act: str, created: dict[str, str]) -> list[Operation]:
    return [
        Operation(
            op_id="copy-ctm-0",
            method="POST",
            path=(created["ctm-0-campaign"], "copies"),
            account_id=act,
            kind=OpKind.COPY,
            params={
                "deep_copy": False,
                "status_option": "PAUSED",
                "rename_options": {"rename_suffix": " (copy)"},
            },
        ),
        Operation(
            op_id="migrate-asc",
            method="POST",
            path=(created["asc-campaign"], "copies"),
            account_id=act,
            kind=OpKind.MIGRATE,
            params={"migrate_to_advantage_plus": True, "deep_copy": True},
        ),
    ]


def _pauses(act: str, created: dict[str, str]) -> list[Operation]:
    return [
        Operation(
            op_id=f"pause-{i}",
            method="POST",
            path=created[f"ctm-{i}-adset"],
            account_id=act,
            kind=OpKind.UPDATE,
            params={"status": "PAUSED", "name": f"Messenger US {i} (paused)"},
        )
        for i in range(TREES)
    ]


async def _phase(engine: BulkEngine, progress: Progress, label: str, ops: Sequence[Operation]) -> JobResult:
    task = progress.add_task(label, total=len(ops))
    outcomes: list[Outcome] = []
    started = time.perf_counter()
    async for outcome in engine.stream(ops):
        outcomes.append(outcome)
        progress.advance(task)
    stats = engine.last_stats
    counts = {"succeeded": 0, "failed": 0, "skipped": 0}
    for o in outcomes:
        counts[o.state.value] += 1
    return JobResult(
        job_id=label,
        outcomes=tuple(outcomes),
        http_requests=stats.http_requests,
        graph_calls=stats.graph_calls,
        retries=stats.retries,
        throttle_events=stats.throttle_events,
        elapsed_s=time.perf_counter() - started,
        counts=counts,
    )


async def run_demo(report_path: Path, console: Console | None = None) -> int:
    console = console or Console()
    config = SimulatorConfig(
        time_scale=TIME_SCALE, faults=FaultConfig(latency_ms=80, latency_jitter_ms=30), seed=42
    )
    async with SimulatorServer(config) as sim:
        info = sim.info()
        act, page = info["ad_account_ids"][0], info["page_ids"][0]
        console.print(
            f"[bold]Simulator[/] at {sim.url} — ad account {act}, 300 calls/hour quota, "
            f"1 hour = {3600 / TIME_SCALE:.0f} s, 80 ± 30 ms latency"
        )
        engine_config = EngineConfig(
            credentials=Credentials(access_token=info["access_token"]), graph_url=sim.url, seed=42
        )
        phases: list[JobResult] = []
        with Progress(
            TextColumn("{task.description:<14}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            async with BulkEngine(engine_config, clock=ScaledClock(TIME_SCALE)) as engine:
                phases.append(await _phase(engine, progress, "create", _trees(act, page)))
                created = {o.op_id: o.graph_id or "" for o in phases[0].outcomes if o.graph_id}
                phases.append(await _phase(engine, progress, "copy+migrate", _copies(act, created)))
                phases.append(await _phase(engine, progress, "pause", _pauses(act, created)))
        migrated = next((o for o in phases[1].outcomes if o.op_id == "migrate-asc"), None)
        state: Any = None
        if migrated is not None and migrated.graph_id:
            node = sim.core.store.get(migrated.graph_id)
            if node is not None:
                from .simulator.copies import compute_advantage_state_info

                state = compute_advantage_state_info(sim.core.store, node)
    console.print(
        "Phases: create = 60 click-to-Messenger trees + 1 Advantage+ shopping campaign; "
        "copy+migrate = copy one campaign, copy-and-migrate the shopping campaign; "
        "pause = pause the 60 ad sets (paced by the governor near the quota)"
    )
    table = Table(title="Demo summary")
    for column in ("phase", "ok", "failed", "skipped", "HTTP", "calls", "throttled", "s"):
        table.add_column(column)
    for result in phases:
        table.add_row(
            result.job_id,
            *(str(result.counts[k]) for k in ("succeeded", "failed", "skipped")),
            str(result.http_requests),
            str(result.graph_calls),
            str(result.throttle_events),
            f"{result.elapsed_s:.1f}",
        )
    console.print(table)
    if state:
        console.print(f"Migrated Advantage+ campaign {migrated.graph_id if migrated else ''}: {state}")
    target = anyio.Path(report_path)
    await target.parent.mkdir(parents=True, exist_ok=True)
    await target.write_text(json.dumps({"phases": [r.to_dict() for r in phases]}, indent=2, default=str))
    console.print(f"Report written to {report_path}")
    ok = all(r.counts["failed"] == 0 and r.counts["skipped"] == 0 for r in phases)
    return 0 if ok else 1
