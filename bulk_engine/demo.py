"""``bulk-engine demo``: the shipped job file ``demo_job.yaml`` run end to end against the embedded simulator.

Why a job file and the ``run`` machinery (:class:`~bulk_engine.reporting.RunSession`): the demo shows the
product exactly as a user meets it — the same live view (progress per operation type, usage % per ad account
and BUC type, parked accounts, retries and throttles), the same plain / JSON lines when stdout is not a
terminal, and the same JSON, CSV and HTML reports.

The simulator runs in-process with realistic latency (80 ± 30 ms), a few transient errors (2 % of calls answer
code 1 or 2 with ``is_transient``: the view shows them retried) and the development-tier quota (300 calls
per hour per ad account) with an hour passing in 6 s (:data:`TIME_SCALE`), so the job's ~330 calls
push the account to the governor's ceiling and the last ones are visibly paced against the rolling window
instead of tripping the throttle. Before the job, :func:`_set_up_account` gives the ad account what an older
account has: an evergreen click-to-Messenger campaign (the job copies it) and an Advantage+ shopping campaign
created the v24.0 way (the job migrates it; job files refuse ``smart_promotion_type`` since v25.0 retires it).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .builder import Job
from .config import Credentials, EngineConfig
from .engine import BulkEngine
from .errors import BulkEngineError
from .planning.graph import Operation, OpKind
from .simulator import FaultConfig, SimulatorConfig, SimulatorServer

if TYPE_CHECKING:
    from .operations import JobSpec
    from .reporting import ReportPaths

DEMO_JOB = Path(__file__).with_name("demo_job.yaml")
TIME_SCALE = 600.0  # one virtual hour = 6 real seconds
LATENCY_MS, JITTER_MS = 80.0, 30.0
TRANSIENT_RATE = 0.02  # code 1/2 "is_transient" answers: the view shows the engine retrying them
SEED = 42


class DemoSetupError(BulkEngineError, RuntimeError):
    """The simulated account could not be set up as the demo job expects (a bug, not a user mistake)."""


def _setup_ops(act: str, page: str) -> Job:
    """The account's history: an evergreen click-to-Messenger tree and a legacy Advantage+ shopping campaign.

    The shopping campaign is created the v24.0 way (``smart_promotion_type``), which the builders' rules
    refuse since v25.0 retires it: it goes as raw operations (``Job.add``)."""
    job = Job(act)
    evergreen = job.campaign(
        key="evergreen",
        name="Evergreen click to Messenger",
        objective="OUTCOME_ENGAGEMENT",
        special_ad_categories=[],
    )
    job.adset(
        campaign=evergreen,
        key="evergreen-adset",
        name="Evergreen - US",
        destination_type="MESSENGER",
        billing_event="IMPRESSIONS",
        optimization_goal="CONVERSATIONS",
        promoted_object={"page_id": page},
        daily_budget=1000,
        targeting={"geo_locations": {"countries": ["US"]}},
    )
    asc = job.add(
        Operation(
            op_id="asc",
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
        )
    )
    job.add(
        Operation(
            op_id="asc-adset",
            method="POST",
            path=f"{act}/adsets",
            account_id=act,
            kind=OpKind.CREATE_ADSET,
            params={
                "name": "ASC ad set",
                "campaign_id": asc.id,
                "billing_event": "IMPRESSIONS",
                "optimization_goal": "OFFSITE_CONVERSIONS",
                "daily_budget": 5000,
                "promoted_object": {"pixel_id": "555000111", "custom_event_type": "PURCHASE"},
                "targeting": {"geo_locations": {"countries": ["US"]}},
                "status": "PAUSED",
            },
        )
    )
    return job


async def _set_up_account(config: EngineConfig, act: str, page: str, expected_source: str) -> None:
    async with BulkEngine(config) as engine:
        result = await engine.run(_setup_ops(act, page))
    ids = {o.op_id: o.graph_id for o in result.outcomes}
    if result.counts["succeeded"] != len(ids) or ids.get("evergreen") != expected_source:
        raise DemoSetupError(
            f"demo account set-up went wrong: {result.counts}, evergreen id {ids.get('evergreen')}"
        )


def _copy_source(spec: JobSpec) -> str:
    """The campaign id the job file's copy task copies (the set-up must create exactly that one)."""
    for task in spec.tasks:
        source_ids = getattr(task, "source_ids", None) if task.type == "copy" else None
        if source_ids:
            return str(source_ids[0])
    raise DemoSetupError(f"{DEMO_JOB} has no copy task")


def _migrated_summary(sim: SimulatorServer) -> str | None:
    """``advantage_state_info`` of the Advantage+ campaign(s) the migration made, read from the simulator."""
    from .simulator.advantage import compute_advantage_state_info

    store = sim.core.store
    lines = []
    for node in store.nodes("campaign"):
        if node.data.get("smart_promotion_type") == "GUIDED_CREATION":
            state = compute_advantage_state_info(store, node)
            lines.append(f"Migrated Advantage+ campaign {node.id} ({node.data.get('name')}): {state}")
    return "\n".join(lines) or None


async def run_demo(
    reports: ReportPaths,
    *,
    log_format: str = "text",
    job_file: Path = DEMO_JOB,
) -> int:
    """Start the simulator, set the account up, run the job with the live view, write ``reports``."""
    from .operations import CompileContext, JobFileError, load_job, run_job
    from .reporting import RunSession, plan_job

    try:
        spec = load_job(job_file)
    except JobFileError as err:  # the shipped job is broken: a packaging bug, said plainly
        print(f"bulk-engine demo: {err}", file=sys.stderr)
        return 2
    ctx = CompileContext()
    plan = plan_job(spec, ctx, spec.job_id or "demo")
    config = SimulatorConfig(
        time_scale=TIME_SCALE,
        faults=FaultConfig(latency_ms=LATENCY_MS, latency_jitter_ms=JITTER_MS),
        seed=SEED,
    )
    async with SimulatorServer(config) as sim:
        info = sim.info()
        act, page = str(info["ad_account_ids"][0]), str(info["page_ids"][0])
        engine_config = EngineConfig(
            credentials=Credentials(access_token=info["access_token"]), graph_url=sim.url, seed=SEED
        )
        if log_format != "json":
            print(
                f"bulk-engine demo: simulator at {sim.url} (ad account {act}, 300 calls/hour quota, "
                f"1 hour = {3600 / TIME_SCALE:.0f} s, {LATENCY_MS:.0f} ± {JITTER_MS:.0f} ms latency, "
                f"{TRANSIENT_RATE:.0%} transient errors)\n"
                f"Setting the account up: an evergreen click-to-Messenger campaign and a legacy Advantage+ "
                f"shopping campaign; then running {job_file.name}: {plan.operations} operations known up front, "
                "more planned from reads (copy, migrate, pause).",
                flush=True,
            )
        await _set_up_account(engine_config, act, page, _copy_source(spec))
        sim.core.set_faults(  # after the set-up, whose ids the job file relies on
            FaultConfig(latency_ms=LATENCY_MS, latency_jitter_ms=JITTER_MS, transient_rate=TRANSIENT_RATE)
        )
        session = RunSession(
            config=engine_config,
            job_id=plan.job_id,
            title=f"bulk-engine demo {plan.job_id} → {sim.url}",
            log_format=log_format,
            time_scale=TIME_SCALE,
            expected=dict(plan.kinds),
            reports=reports,
            meta={
                "source": str(job_file),
                "fingerprint": plan.fingerprint,
                "graph_url": sim.url,
                "api_version": engine_config.api_version,
                "journal": None,
            },
        )

        async def work(engine: Any) -> Any:
            return await run_job(engine, spec, ctx, job_id=plan.job_id)

        code = await session.run(work)
        summary = _migrated_summary(sim)
    if summary and log_format != "json":
        print(summary, flush=True)
    return code
