"""Copies through /copies, and the chunked fallback when a deep copy exceeds the synchronous limit (1885194)."""

from __future__ import annotations

from typing import Any

import pytest
from ops_support import Sim, adset, campaign, ids_by_op, tree_job

from bulk_engine.operations import CopyTask, copy_objects


def source_tree(name: str = "Source") -> dict[str, Any]:
    """2 ad sets × 3 ads (one ad PAUSED): 9 objects, over the simulator's synchronous limit of 3."""
    return campaign(
        name,
        status="ACTIVE",
        ad_sets=[
            adset(
                f"Set {j}",
                status="ACTIVE",
                targeting={"geo_locations": {"countries": [country]}},
                ads=[
                    {"name": f"Ad {j}.{k}", "creative": "c", "status": "PAUSED" if k == 1 else "ACTIVE"}
                    for k in range(3)
                ],
            )
            for j, country in enumerate(("US", "CA"))
        ],
    )


async def make_source(sim: Sim, tree: dict[str, Any] | None = None) -> dict[str, str | None]:
    report = await sim.run(tree_job([tree or source_tree()]))
    assert report.ok
    return ids_by_op(report)


async def copy(sim: Sim, **task: Any) -> Any:
    return await sim.run({"tasks": [{"type": "copy", "key": "cp", **task}]})


async def test_small_deep_copy_is_synchronous(start_sim: Any) -> None:
    sim = await start_sim()
    ids = await make_source(
        sim, campaign("Small", ad_sets=[adset("S", ads=[{"name": "A", "creative": "c"}])])
    )
    report = await copy(sim, source_ids=[ids["t0/c0"]])
    copied = report.task("cp").details["copies"][ids["t0/c0"]]
    assert copied["mode"] == "sync"
    assert [o["type"] for o in copied["objects"]] == ["campaign", "adset", "ad"]
    tree = sim.tree(copied["new_id"])
    assert tree["name"] == "Small - Copy" and tree["status"] == "PAUSED"
    assert [s[0] for s in tree["adsets"]] == ["S"]


@pytest.mark.parametrize(
    ("status_option", "rename"),
    [
        ("PAUSED", None),
        ("INHERITED_FROM_SOURCE", {"rename_strategy": "DEEP_RENAME", "rename_prefix": "[copy] "}),
        ("ACTIVE", {"rename_strategy": "NO_RENAME"}),
        ("INHERITED_FROM_SOURCE", {"rename_strategy": "ONLY_TOP_LEVEL_RENAME", "rename_suffix": " (2)"}),
    ],
)
async def test_chunked_fallback_builds_the_same_tree_as_a_synchronous_deep_copy(
    start_sim: Any, status_option: str, rename: dict[str, Any] | None
) -> None:
    limited = await start_sim()  # sync_copy_limit 3: the deep copy answers 100/1885194
    roomy = await start_sim(sync_copy_limit=1000)
    options: dict[str, Any] = {"status_option": status_option}
    if rename is not None:
        options["rename_options"] = rename
    results = []
    for sim in (limited, roomy):
        ids = await make_source(sim)
        source = str(ids["t0/c0"])
        report = await copy(sim, source_ids=[source], **options)
        assert report.counts["failed"] == 0
        assert report.counts["skipped"] == (1 if sim is limited else 0)  # the refused synchronous copy
        copied = report.task("cp").details["copies"][source]
        results.append((sim, copied, report, source))
    (small, chunked, report, source), (big, sync, _, _) = results
    assert chunked["mode"] == "chunked" and sync["mode"] == "sync"
    refused = report.outcome(f"cp/copy/{source}")
    assert refused.error is not None and refused.error.error_subcode == 1885194
    assert small.tree(chunked["new_id"]) == big.tree(sync["new_id"])
    assert len(chunked["objects"]) == 9 and all(o["copied_id"] for o in chunked["objects"])
    assert not chunked["failed"]
    # provenance is recorded on every piece, as a synchronous copy records it
    for piece in chunked["objects"]:
        node = small.node(piece["copied_id"])
        key = {"campaign": "source_campaign_id", "adset": "source_adset_id", "ad": "source_ad_id"}[
            piece["type"]
        ]
        assert node.data[key] == piece["source_id"]
    # ad copies share the source ads' creative
    assert len({ad.data["creative"]["id"] for ad in small.nodes("ad")}) == 1


async def test_ad_set_copy_into_another_campaign_falls_back_too(start_sim: Any) -> None:
    sim = await start_sim()
    ids = await make_source(sim)
    target = await sim.run(tree_job([campaign("Target", status="PAUSED")]))
    target_id = str(ids_by_op(target)["t0/c0"])
    task = CopyTask(
        type="copy", level="adset", source_ids=[str(ids["t0/c0/s1"])], target_campaign_id=target_id
    )
    async with sim.engine() as engine:
        report = await copy_objects(engine, task, account_id=sim.act)
    copied = report.details["copies"][str(ids["t0/c0/s1"])]
    assert copied["mode"] == "chunked"  # 1 ad set + 3 ads > 3
    new_adset = sim.node(copied["new_id"])
    assert new_adset.data["campaign_id"] == target_id
    assert sorted(a.data["name"] for a in sim.children(new_adset.id, "ad")) == ["Ad 1.0", "Ad 1.1", "Ad 1.2"]
    assert new_adset.data["name"] == "Set 1 - Copy"


async def test_without_fallback_the_refusal_is_reported(start_sim: Any) -> None:
    sim = await start_sim()
    ids = await make_source(sim)
    report = await copy(sim, source_ids=[ids["t0/c0"]], fallback="none")
    copied = report.task("cp").details["copies"][ids["t0/c0"]]
    assert copied["mode"] == "failed" and "1885194" in copied["reason"]
    assert len(sim.nodes("campaign")) == 1


async def test_copy_task_rules() -> None:
    from bulk_engine.operations import JobFileError, parse_job

    with pytest.raises(JobFileError) as caught:
        parse_job(
            {
                "account_id": "act_1",
                "tasks": [{"type": "copy", "level": "ad", "source_ids": ["x"], "target_campaign_id": "1"}],
            }
        )
    assert {i.rule for i in caught.value.issues} == {"copy.id", "copy.target"}


async def test_cross_account_clone_recreates_the_tree_with_new_ids(start_sim: Any) -> None:
    sim = await start_sim()
    tree = source_tree()
    creatives = {
        "c": {
            "name": "Shared",
            "object_story_spec": {
                "page_id": "2000000001",
                "link_data": {"link": "https://example.com", "image_hash": "abc123"},
            },
        }
    }
    created = await sim.run(tree_job([tree], creatives))
    assert created.ok
    source = str(ids_by_op(created)["t0/c0"])
    target = sim.accounts[1]
    report = await copy(
        sim, source_ids=[source], target_account_id=target, status_option="INHERITED_FROM_SOURCE"
    )
    clone = report.task("cp").details["copies"][source]
    assert clone["mode"] == "clone" and not clone["failed"]
    new_campaign = sim.node(clone["new_id"])
    assert new_campaign.account_id == target and new_campaign.data["name"] == "Source - Copy"
    cloned = sim.tree(clone["new_id"])
    original = sim.tree(source)
    assert cloned["adsets"] == original["adsets"]  # same names, statuses, budgets, targeting, ads
    assert {o["type"] for o in clone["objects"]} == {"adcreative", "campaign", "adset", "ad"}
    new_creatives = [n for n in sim.nodes("adcreative") if n.account_id == target]
    assert len(new_creatives) == 1  # the shared creative stays shared
    new_hash = new_creatives[0].data["object_story_spec"]["link_data"]["image_hash"]
    assert new_hash != "abc123"  # the image was copied into the target account
    assert any(i.account_id == target and i.data.get("hash") == new_hash for i in sim.nodes("adimage"))
    assert all(sim.node(o["copied_id"]).account_id == target for o in clone["objects"])
