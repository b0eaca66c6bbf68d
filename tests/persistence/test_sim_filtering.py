"""The simulator's edge ``filtering`` on ``name`` and ``adlabels`` (what reconciliation looks objects up by)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aiohttp
from persist_support import Sim

StartSim = Callable[..., Any]


async def _get(sim: Sim, path: str, **params: Any) -> tuple[int, Any]:
    query = {k: json.dumps(v) if isinstance(v, list | dict) else str(v) for k, v in params.items()}
    query["access_token"] = sim.token
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{sim.url}/v24.0/{path}", params=query) as resp,
    ):
        return resp.status, await resp.json()


async def _post(sim: Sim, path: str, **params: Any) -> str:
    form = {k: json.dumps(v) if isinstance(v, list | dict) else str(v) for k, v in params.items()}
    form["access_token"] = sim.token
    async with aiohttp.ClientSession() as session, session.post(f"{sim.url}/v24.0/{path}", data=form) as resp:
        body = await resp.json()
        assert resp.status == 200, body
        return str(body["id"])


async def _campaign(sim: Sim, name: str, labels: list[str] | None = None) -> str:
    params: dict[str, Any] = {
        "name": name,
        "objective": "OUTCOME_TRAFFIC",
        "special_ad_categories": [],
        "status": "PAUSED",
    }
    if labels is not None:
        params["adlabels"] = [{"name": label} for label in labels]
    return await _post(sim, f"{sim.accounts[0]}/campaigns", **params)


def _names(body: Any) -> list[str]:
    return sorted(item["name"] for item in body["data"])


async def test_name_filters(start_sim: StartSim) -> None:
    sim: Sim = await start_sim()
    for name in ("Spring [be:aaaa.1]", "Summer [be:aaaa.2]", "spring sale", "Winter"):
        await _campaign(sim, name)
    edge = f"{sim.accounts[0]}/campaigns"

    async def names(operator: str, value: Any) -> list[str]:
        status, body = await _get(
            sim, edge, fields="name", filtering=[{"field": "name", "operator": operator, "value": value}]
        )
        assert status == 200, body
        return _names(body)

    assert await names("CONTAIN", "[be:aaaa.1]") == ["Spring [be:aaaa.1]"]
    assert await names("CONTAIN", "[be:aaaa.") == ["Spring [be:aaaa.1]", "Summer [be:aaaa.2]"]
    assert await names("CONTAIN", "SPRING") == ["Spring [be:aaaa.1]", "spring sale"]  # case-insensitive
    assert await names("NOT_CONTAIN", "[be:") == ["Winter", "spring sale"]
    assert await names("EQUAL", "Winter") == ["Winter"]
    assert await names("NOT_EQUAL", "Winter") == ["Spring [be:aaaa.1]", "Summer [be:aaaa.2]", "spring sale"]
    assert await names("IN", ["Winter", "spring sale", "nope"]) == ["Winter", "spring sale"]
    assert await names("STARTS_WITH", "Sum") == ["Summer [be:aaaa.2]"]
    status, body = await _get(
        sim, edge, filtering=[{"field": "name", "operator": "GREATER_THAN", "value": "a"}]
    )
    assert status == 400 and body["error"]["code"] == 100


async def test_adlabel_filters_match_names_and_ids(start_sim: StartSim) -> None:
    sim: Sim = await start_sim()
    await _campaign(sim, "A", ["job", "op-1"])
    await _campaign(sim, "B", ["job", "op-2"])
    await _campaign(sim, "C", [])
    await _campaign(sim, "D")
    edge = f"{sim.accounts[0]}/campaigns"

    async def names(operator: str, value: list[str]) -> list[str]:
        status, body = await _get(
            sim,
            edge,
            fields="name,adlabels",
            filtering=[{"field": "adlabels", "operator": operator, "value": value}],
        )
        assert status == 200, body
        return _names(body)

    assert await names("ANY", ["op-2", "zzz"]) == ["B"]
    assert await names("ANY", ["job"]) == ["A", "B"]
    assert await names("ALL", ["job", "op-1"]) == ["A"]
    assert await names("NONE", ["job"]) == ["C", "D"]


async def test_filters_combine_with_status_and_paging(start_sim: StartSim) -> None:
    sim: Sim = await start_sim()
    for i in range(5):
        await _campaign(sim, f"k{i} [be:tag.x]")
    await _campaign(sim, "other")
    status, body = await _get(
        sim,
        f"{sim.accounts[0]}/campaigns",
        fields="name",
        limit=2,
        effective_status=["PAUSED"],
        filtering=[{"field": "name", "operator": "CONTAIN", "value": "[be:tag."}],
    )
    assert status == 200
    assert len(body["data"]) == 2 and "next" in body["paging"]
