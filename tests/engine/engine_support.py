"""Engine tests run the real engine over HTTP against an in-loop simulator on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from bulk_engine import Credentials, EngineConfig, Job, Operation, OpKind, Ref
from bulk_engine.simulator import SimulatorConfig, SimulatorServer

TARGETING = {"geo_locations": {"countries": ["US"]}}


@dataclass
class Sim:
    server: SimulatorServer
    token: str
    accounts: list[str]
    page_id: str

    @property
    def url(self) -> str:
        return self.server.url

    def engine_config(self, **overrides: Any) -> EngineConfig:
        params: dict[str, Any] = {
            "credentials": Credentials(access_token=self.token),
            "graph_url": self.url,
            "seed": 7,
        }
        params.update(overrides)
        return EngineConfig(**params)


SimFactory = Callable[..., Any]


@pytest.fixture
async def start_sim() -> AsyncIterator[Callable[..., Any]]:
    """``sim = await start_sim(**SimulatorConfig fields)``; stopped after the test."""
    servers: list[SimulatorServer] = []

    async def start(**config: Any) -> Sim:
        server = await SimulatorServer(SimulatorConfig(**config)).start()
        servers.append(server)
        info = server.info()
        return Sim(server, info["access_token"], info["ad_account_ids"], info["page_ids"][0])

    yield start
    for server in servers:
        await server.stop()


def campaign_op(op_id: str, act: str, **params: Any) -> Operation:
    base = {"name": op_id, "objective": "OUTCOME_TRAFFIC", "special_ad_categories": [], "status": "PAUSED"}
    return Operation(
        op_id=op_id,
        method="POST",
        path=f"{act}/campaigns",
        account_id=act,
        kind=OpKind.CREATE_CAMPAIGN,
        params={**base, **params},
    )


def add_tree(
    job: Job,
    ids: tuple[str, str, str, str],
    names: tuple[str, str, str, str],
    page_id: str,
    message: str = "Hi",
) -> None:
    """A campaign → ad set → creative → ad tree into ``job``, with these op ids and names (in that order)."""
    c, s, cr, ad = ids
    campaign = job.campaign(key=c, name=names[0], objective="OUTCOME_TRAFFIC", special_ad_categories=[])
    adset = job.adset(
        campaign=campaign,
        key=s,
        name=names[1],
        billing_event="IMPRESSIONS",
        optimization_goal="LINK_CLICKS",
        daily_budget=1000,
        targeting=TARGETING,
    )
    story = {"page_id": page_id, "link_data": {"link": "https://example.com", "message": message}}
    creative = job.creative(key=cr, name=names[2], object_story_spec=story)
    job.ad(adset=adset, creative=creative, key=ad, name=names[3])


def tree_ops(prefix: str, act: str, page_id: str) -> list[Operation]:
    """campaign → ad set → creative → ad, linked by the builder (op ids and names ``<prefix>-c``, ``-as``,
    ``-cr``, ``-ad``)."""
    job = Job(act)
    ids = (f"{prefix}-c", f"{prefix}-as", f"{prefix}-cr", f"{prefix}-ad")
    add_tree(job, ids, ids, page_id)
    return job.operations()


def status_op(op_id: str, act: str, object_id: str | Ref, status: str = "PAUSED") -> Operation:
    return Operation(
        op_id=op_id,
        method="POST",
        path=object_id,
        account_id=act,
        kind=OpKind.UPDATE,
        params={"status": status},
    )


HOUR = 3600.0
QUOTA = 300  # development_access, no active ads: 300 calls per rolling hour


def optimal_finish(others_at: list[float], total: int, start: float, quota: int = QUOTA) -> float:
    """The quota bound: from ``start``, a perfect client sends as many calls as fit under the quota of the
    rolling hour (the server refuses a call once the window holds ``quota``; others' calls at ``others_at``
    count too), and when none fits, waits exactly until the oldest call leaves; the time its last call goes."""
    window = sorted(x for x in others_at if x > start - HOUR)
    t, done, head = start, 0, 0
    while True:
        while head < len(window) and window[head] <= t - HOUR:
            head += 1
        fit = min(quota - (len(window) - head), total - done)
        if fit > 0:
            window.extend([t] * fit)
            done += fit
        if done >= total:
            return t - start
        t = window[head] + HOUR + 1e-9  # the next moment a call leaves the window
