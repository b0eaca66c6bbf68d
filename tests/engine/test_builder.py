"""The typed front door (issue "A typed front door"): ``Job`` builders return handles, compile through the
job-file path, and results are looked up by handle."""

from __future__ import annotations

from typing import Any

import pytest
from engine_support import TARGETING

from bulk_engine import BulkEngine, Operation, OpKind, Ref
from bulk_engine.builder import BuildError, Job
from bulk_engine.operations import CompileContext, parse_job
from bulk_engine.operations.specs import AdCreativeSpec, AdSetSpec, AdSpec, CampaignSpec
from bulk_engine.planning.batcher import plan_all

ACT = "act_1"
PAGE = "100"
CAMPAIGN = {"objective": "OUTCOME_TRAFFIC", "special_ad_categories": [], "status": "PAUSED"}
ADSET = {
    "billing_event": "IMPRESSIONS",
    "optimization_goal": "LINK_CLICKS",
    "daily_budget": 1000,
    "targeting": TARGETING,
}


def _story(i: int, page: str = PAGE) -> dict[str, Any]:
    return {"page_id": page, "link_data": {"link": "https://example.com", "message": f"Hello {i}"}}


def _built(trees: int, account: str = ACT) -> Job:
    job = Job(account, prefix="t0")
    for i in range(trees):
        creative = job.creative(name=f"Creative {i}", object_story_spec=_story(i))  # op id t0/cr:<i>
        campaign = job.campaign(name=f"Campaign {i}", **CAMPAIGN)
        adset = job.adset(campaign=campaign, name=f"Ad set {i}", **ADSET)
        job.ad(adset=adset, creative=creative, name=f"Ad {i}")
    return job


def _job_file(trees: int, account: str = ACT) -> dict[str, Any]:
    return {
        "account_id": account,
        "tasks": [
            {
                "type": "create",
                "key": "t0",
                "creatives": {
                    str(i): {"name": f"Creative {i}", "object_story_spec": _story(i)} for i in range(trees)
                },
                "campaigns": [
                    {
                        "name": f"Campaign {i}",
                        **CAMPAIGN,
                        "ad_sets": [
                            {
                                "name": f"Ad set {i}",
                                **ADSET,
                                "ads": [{"name": f"Ad {i}", "creative": str(i)}],
                            }
                        ],
                    }
                    for i in range(trees)
                ],
            }
        ],
    }


def _shape(op: Operation) -> tuple[Any, ...]:
    return (op.op_id, op.method, op.path, dict(op.params), op.account_id, op.kind)


def test_a_thousand_trees_built_with_handles_are_the_job_files_operations_and_batches() -> None:
    built = list(_built(1000))
    from_file = list(parse_job(_job_file(1000)).compile(CompileContext()))
    assert len(built) == 4000
    assert sorted(map(_shape, built), key=str) == sorted(map(_shape, from_file), key=str)
    # the same batches: identical operations in the order each path emits them pack identically
    order = {op.op_id: n for n, op in enumerate(from_file)}
    reordered = sorted(built, key=lambda op: order[op.op_id])
    assert [b.op_ids for b in plan_all(reordered)] == [b.op_ids for b in plan_all(from_file)]


def test_kind_account_path_and_references_are_inferred() -> None:
    job = Job(ACT)
    c = job.campaign(name="C", **CAMPAIGN)
    s = job.adset(campaign=c, name="S", **ADSET)
    ad = job.ad(adset=s, creative=AdCreativeSpec(name="inline", object_story_spec=_story(0)), name="A")
    ops = {op.op_id: op for op in job}
    assert (c.op_id, s.op_id, ad.op_id) == ("c0", "c0/s0", "c0/s0/a0")
    assert ops["c0"].path == f"{ACT}/campaigns" and ops["c0"].kind is OpKind.CREATE_CAMPAIGN
    assert ops["c0/s0"].params["campaign_id"] == c.id and ops["c0/s0"].account_id == ACT
    assert ops["c0/s0/a0/cr"].kind is OpKind.CREATE_CREATIVE  # the inline creative, created with its ad
    assert ops["c0/s0/a0"].params["adset_id"] == s.id
    assert ops["c0/s0/a0"].params["creative"] == {"creative_id": Ref("c0/s0/a0/cr")}


def test_keys_name_op_ids_and_children_build_on_them() -> None:
    job = Job(ACT)
    c = job.campaign(key="spring", name="C", **CAMPAIGN)
    s = job.adset(campaign=c, name="S", **ADSET)
    cr = job.creative(key="hero", name="Hero", object_story_spec=_story(0))
    ad = job.ad(adset=s, creative=cr, key="hero-ad", name="A")
    ops = {op.op_id: op for op in job}
    assert set(ops) == {"spring", "spring/s0", "hero", "hero-ad"}
    assert ops["hero-ad"].params == {
        "name": "A",
        "status": "PAUSED",
        "adset_id": s.id,
        "creative": {"creative_id": cr.id},
    }
    with pytest.raises(ValueError, match="used twice"):
        job.campaign(key="spring", name="again", **CAMPAIGN)
    assert ad.id.op_id == "hero-ad"


def test_a_whole_campaign_spec_compiles_like_a_job_file() -> None:
    """Specs are usable from Python without ``type=``: repeat, matrix and nested ads included."""
    job = Job(ACT, prefix="t0")
    hero = job.creative(name="Hero", object_story_spec=_story(0))  # op id t0/cr:0, named "0" in specs
    spec = CampaignSpec(
        name="Spring {n}",
        repeat=2,
        **CAMPAIGN,
        ad_sets=[AdSetSpec(name="{campaign} US", **ADSET, ads=[AdSpec(name="A", creative="0")])],
    )
    c = job.campaign(spec)
    data = _job_file(0)
    data["tasks"][0]["creatives"] = {"0": {"name": "Hero", "object_story_spec": _story(0)}}
    data["tasks"][0]["campaigns"] = [spec.model_dump(exclude_defaults=True)]
    from_file = list(parse_job(data).compile(CompileContext()))
    assert sorted(map(_shape, job), key=str) == sorted(map(_shape, from_file), key=str)
    assert c.op_id == "t0/c0" and {op.op_id for op in job} >= {"t0/c0.1", "t0/c0.2/s0/a0", hero.op_id}


def test_a_typo_is_refused_at_the_call_that_made_it() -> None:
    job = Job(ACT)
    with pytest.raises(BuildError) as err:
        job.campaign(name="C", objective="OUTCOME_TRAFIC", special_ad_categories=[], daily_budgett=5)
    text = str(err.value)
    assert 'new campaign: objective = "OUTCOME_TRAFIC": must be one of' in text and "daily_budgett" in text
    assert {i.rule for i in err.value.issues} == {"schema.literal_error", "schema.extra_forbidden"}


def test_documented_rules_are_checked_before_anything_is_sent_and_name_the_handle() -> None:
    job = Job(ACT)
    c = job.campaign(name="C", **CAMPAIGN, daily_budget=5000)  # campaign budget …
    job.adset(campaign=c, key="us", name="S", **ADSET)  # … and ad set budget: Graph's 1885621
    with pytest.raises(BuildError) as err:
        job.operations()
    (issue,) = [i for i in err.value.issues if i.code == 100]
    assert issue.file == "adset 'us'" and issue.subcode == 1885621
    assert str(issue).startswith("adset 'us': ")


async def test_a_built_job_runs_and_results_are_found_by_handle(start_sim: Any) -> None:
    sim = await start_sim()
    act = sim.accounts[0]
    job = Job(act)
    c = job.campaign(name="Spring", **CAMPAIGN)
    s = job.adset(campaign=c, name="US", **ADSET)
    cr = job.creative(name="Hero", object_story_spec=_story(0, sim.page_id))
    ad = job.ad(adset=s, creative=cr, name="Hero ad")
    job.add(
        Operation(
            op_id="rename",
            method="POST",
            path=ad.id,
            params={"name": "Renamed"},
            account_id=act,
            kind=OpKind.UPDATE,
        )
    )
    async with BulkEngine(sim.engine_config()) as engine:
        result = await engine.run(job)
    assert result.ok, result.counts
    store = sim.server.core.store
    stored_ad = store.get(result[ad].id)
    assert stored_ad is not None and stored_ad.data["name"] == "Renamed"
    assert (
        stored_ad.data["adset_id"] == result[s].id
        and store.get(result[s].id).data["campaign_id"] == result[c].id
    )
    assert stored_ad.data["creative"] == {"id": result[cr].id}
    assert result["rename"].state.value == "succeeded" and result[c] is result[c.op_id]
    with pytest.raises(KeyError):
        result["nope"]
