"""Demo objects for the example DAGs, so each runs with ``airflow dags test`` against the simulator alone.

The copy and migration examples need campaigns to exist first. :func:`seed_demo` creates them through the
engine — but only when the connection points at a ``bulk-engine simulator`` on a loopback address
(it must answer ``GET /__sim__/info``); against any other Graph URL it refuses, so an example DAG run
against the real API without ids never creates anything.

Seeding is idempotent per task instance, like the job operators: a cleared and re-run DAG run gets the
same demo objects back, so the tasks downstream see the same ids — the same job — and their journals
answer it instead of refusing a different job under the same job id.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any, Literal
from urllib.parse import urlsplit

from airflow.sdk import get_current_context

from bulk_engine import BulkEngine, EngineConfig, IdempotencyConfig, JobResult, Operation, OpKind, Ref

from ._graph import run_sync
from .hooks.meta_graph import MetaGraphHook
from .operators.base import job_id_of

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
Kind = Literal["traffic", "asc", "asc_blocked"]

__all__ = ["demo_operations", "seed_demo", "simulator_info", "task_instance_job_id"]


def simulator_info(config: EngineConfig) -> dict[str, Any] | None:
    """The simulator's start-line info when ``config`` points at one on loopback, else ``None``."""
    if urlsplit(config.graph_url).hostname not in LOOPBACK:
        return None
    try:
        with urllib.request.urlopen(f"{config.graph_url.rstrip('/')}/__sim__/info", timeout=5) as answer:
            info = json.load(answer)
    except (OSError, ValueError):
        return None
    info.pop("access_token", None)  # never handed on
    return dict(info)


def demo_operations(
    kinds: list[Kind], account_id: str, page_id: str, prefix: str = "demo"
) -> list[Operation]:
    """One campaign → ad set → creative → ad tree per entry of ``kinds``, as engine operations.

    ``traffic``: an ordinary traffic campaign; ``asc``: an Advantage+ shopping campaign (eligible for the
    migration; created the v24.0 way with ``smart_promotion_type``, which job files refuse since that
    creation is gone from v25.0); ``asc_blocked``: one whose ad set uses
    ``existing_customer_budget_percentage`` (blocked).
    """
    ops: list[Operation] = []

    def add(op_id: str, edge: str, kind: OpKind, params: dict[str, Any]) -> None:
        path = f"{account_id}/{edge}"
        ops.append(
            Operation(op_id=op_id, method="POST", path=path, params=params, account_id=account_id, kind=kind)
        )

    for n, kind in enumerate(kinds):
        key, shopping = f"{prefix}/{n}", kind != "traffic"
        campaign: dict[str, Any] = {
            "name": f"{prefix}-{n} {kind}",
            "objective": "OUTCOME_SALES" if shopping else "OUTCOME_TRAFFIC",
            "special_ad_categories": [],
            "status": "ACTIVE",
        }
        adset: dict[str, Any] = {
            "name": f"{prefix}-{n} {kind} set",
            "campaign_id": Ref(f"{key}/c"),
            "billing_event": "IMPRESSIONS",
            "optimization_goal": "OFFSITE_CONVERSIONS" if shopping else "LINK_CLICKS",
            "daily_budget": 5000,
            "targeting": {"geo_locations": {"countries": ["US"]}},
            "status": "ACTIVE",
        }
        if shopping:
            campaign["smart_promotion_type"] = "AUTOMATED_SHOPPING_ADS"
            adset["promoted_object"] = {"pixel_id": "1234567890", "custom_event_type": "PURCHASE"}
        if kind == "asc_blocked":
            adset["existing_customer_budget_percentage"] = 20
        link = {"link": "https://example.com", "message": campaign["name"]}
        add(f"{key}/c", "campaigns", OpKind.CREATE_CAMPAIGN, campaign)
        add(f"{key}/s", "adsets", OpKind.CREATE_ADSET, adset)
        add(
            f"{key}/cr",
            "adcreatives",
            OpKind.CREATE_CREATIVE,
            {"name": campaign["name"], "object_story_spec": {"page_id": page_id, "link_data": link}},
        )
        add(
            f"{key}/a",
            "ads",
            OpKind.CREATE_AD,
            {
                "name": f"{prefix}-{n} {kind} ad",
                "adset_id": Ref(f"{key}/s"),
                "creative": {"creative_id": Ref(f"{key}/cr")},
                "status": "ACTIVE",
            },
        )
    return ops


def seed_demo(
    conn_id: str, kinds: list[Kind], prefix: str = "demo", *, job_id: str | None = None
) -> list[str]:
    """Create the demo trees in the connection's ad account; returns the campaign ids, in ``kinds`` order.

    ``job_id`` (default: that of the Airflow task instance calling it, see :func:`task_instance_job_id`)
    names the engine job: run again under the same id — a cleared DAG run — it finds the trees the first
    run created by their idempotency keys and returns their ids instead of creating new ones (the keys are
    ad labels, so the demo names stay as written). Raises ``ValueError`` unless the connection points at a
    local simulator.
    """
    hook = MetaGraphHook(conn_id)
    config = hook.get_engine_config()
    info = simulator_info(config)
    if info is None:
        raise ValueError(
            f"connection {conn_id!r} does not point at a local bulk-engine simulator: "
            "pass the ids of existing objects instead of seeding demo objects"
        )
    account = hook.default_ad_account_id or str(info["ad_account_ids"][0])
    ops = demo_operations(kinds, account, str(info["page_ids"][0]), prefix)
    keyed = config.model_copy(update={"idempotency": IdempotencyConfig(keys="adlabels")})
    seed_id = job_id or task_instance_job_id()

    async def go() -> JobResult:
        async with BulkEngine(keyed) as engine:
            return await engine.run(ops, job_id=seed_id)

    result = run_sync(go)
    if result.counts.get("succeeded") != len(ops):
        raise RuntimeError(f"demo seed failed: {result.counts}")
    by_op = {o.op_id: o.graph_id for o in result.outcomes}
    return [str(by_op[f"{prefix}/{i}/c"]) for i in range(len(kinds))]


def task_instance_job_id() -> str | None:
    """The engine job id of the Airflow task instance running this code (``None`` outside a task): the
    job operators' :func:`~airflow_provider.operators.base.job_id_of`, stable across retries and clears."""
    try:
        ti = get_current_context()["ti"]
    except RuntimeError:  # not inside a running task (a script, a test)
        return None
    return job_id_of(ti)
