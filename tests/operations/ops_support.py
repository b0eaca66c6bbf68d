"""Helpers for the operations tests (a uniquely named module: test folders share one import namespace)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bulk_engine import BulkEngine, Credentials, EngineConfig
from bulk_engine.operations import CompileContext, JobReport, JobSpec, parse_job, run_job
from bulk_engine.persistence.keys import strip_key
from bulk_engine.simulator import SimulatorServer
from bulk_engine.simulator.store import Node

GEO = {"geo_locations": {"countries": ["US"]}}
PAGE = "2000000001"


@dataclass
class Sim:
    server: SimulatorServer
    token: str
    accounts: list[str]
    pages: list[str]

    @property
    def act(self) -> str:
        return self.accounts[0]

    def engine(self, **overrides: Any) -> BulkEngine:
        params: dict[str, Any] = {
            "credentials": Credentials(access_token=self.token),
            "graph_url": self.server.url,
            "seed": 7,
        }
        params.update(overrides)
        return BulkEngine(EngineConfig(**params))

    async def run(
        self, job: dict[str, Any] | JobSpec, ctx: CompileContext | None = None, **kw: Any
    ) -> JobReport:
        spec = (
            job
            if isinstance(job, JobSpec)
            else parse_job({"account_id": self.act, **job}, base_dir=kw.pop("base_dir", None))
        )
        async with self.engine() as engine:
            return await run_job(engine, spec, ctx, **kw)

    # --- store access (the simulator is in-process) ----------------------------------------------------
    @property
    def store(self) -> Any:
        return self.server.core.store

    def node(self, object_id: str) -> Node:
        node = self.store.get(str(object_id))
        assert node is not None, object_id
        return node

    def nodes(self, type_: str) -> list[Node]:
        return list(self.store.nodes(type_))

    def children(self, object_id: str, type_: str) -> list[Node]:
        return list(self.store.children(str(object_id), type_))

    def tree(self, campaign_id: str) -> dict[str, Any]:
        """A campaign's tree as comparable data: names, statuses, budgets, creatives; children sorted."""
        campaign = self.node(campaign_id)
        adsets = []
        for adset in self.children(campaign_id, "adset"):
            ads = sorted(
                (
                    strip_key(ad.data["name"]),
                    ad.status,
                    strip_key(self.node(ad.data["creative"]["id"]).data.get("name") or ""),
                )
                for ad in self.children(adset.id, "ad")
            )
            adsets.append(
                (
                    strip_key(adset.data["name"]),
                    adset.status,
                    adset.data.get("daily_budget"),
                    str(adset.data.get("targeting")),
                    ads,
                )
            )
        return {
            "name": strip_key(campaign.data["name"]),
            "status": campaign.status,
            "objective": campaign.data.get("objective"),
            "smart_promotion_type": campaign.data.get("smart_promotion_type"),
            "adsets": sorted(adsets, key=str),
        }


def creative(name: str = "Creative", page: str = PAGE, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "object_story_spec": {
            "page_id": page,
            "link_data": {"link": f"https://example.com/{name}", "message": name},
        },
        **extra,
    }


def campaign(name: str = "Campaign", **extra: Any) -> dict[str, Any]:
    return {"name": name, "objective": "OUTCOME_TRAFFIC", "special_ad_categories": [], **extra}


def adset(name: str = "Ad set", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "billing_event": "IMPRESSIONS",
        "optimization_goal": "LINK_CLICKS",
        "daily_budget": 1000,
        "targeting": GEO,
        **extra,
    }


def tree_job(
    campaigns: list[dict[str, Any]], creatives: dict[str, Any] | None = None, **task: Any
) -> dict[str, Any]:
    return {
        "tasks": [
            {"type": "create", "creatives": creatives or {"c": creative()}, "campaigns": campaigns, **task}
        ]
    }


def simple_tree(name: str, ads: int = 2, adsets: int = 1, status: str = "ACTIVE") -> dict[str, Any]:
    return campaign(
        name,
        status=status,
        ad_sets=[
            adset(
                f"{name} set {j}",
                status=status,
                ads=[{"name": f"{name} ad {j}.{k}", "creative": "c", "status": status} for k in range(ads)],
            )
            for j in range(adsets)
        ],
    )


def ids_by_op(report: JobReport) -> dict[str, str | None]:
    return {o.op_id: o.graph_id for o in report.outcomes}


def deep(data: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(data)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def snapshot(sim: Any) -> dict[str, dict[str, Any]]:
    """Every ad object's data (campaigns, ad sets, ads, creatives) as it is now."""
    return {
        n.id: copy.deepcopy(n.data) for t in ("campaign", "adset", "ad", "adcreative") for n in sim.nodes(t)
    }


def changes(before: dict[str, dict[str, Any]], sim: Any) -> dict[str, dict[str, tuple[Any, Any]]]:
    """What changed since ``before``, field by field (``updated_time`` aside)."""
    out: dict[str, dict[str, tuple[Any, Any]]] = {}
    for object_id, now in snapshot(sim).items():
        old = before.get(object_id, {})
        changed = {
            k: (old.get(k), now.get(k))
            for k in old.keys() | now.keys()
            if k != "updated_time" and old.get(k) != now.get(k)
        }
        if changed:
            out[object_id] = changed
    return out
