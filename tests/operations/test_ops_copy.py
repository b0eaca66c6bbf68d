"""Copies through /copies, and the chunked fallback when a deep copy exceeds the synchronous limit (1885194)."""

from __future__ import annotations

from typing import Any

import pytest
from ops_support import Sim, adset, campaign, creative, ids_by_op, tree_job

from bulk_engine.operations import CompileContext, CopyTask, copy_objects
from bulk_engine.persistence.keys import strip_key


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
        assert report.counts["skipped"] == 0  # the refused synchronous copy was completed by the chunked one
        copied = report.task("cp").details["copies"][source]
        results.append((sim, copied, report, source))
    (small, chunked, report, source), (big, sync, _, _) = results
    assert chunked["mode"] == "chunked" and sync["mode"] == "sync"
    replaced = report.outcome(f"cp/copy/{source}")
    assert replaced.state.value == "succeeded" and replaced.error is None
    assert "completed by chunked copy" in (replaced.reason or "") and "1885194" in (replaced.reason or "")
    assert replaced.result["completed_by"] == "chunked copy" and replaced.graph_id == chunked["new_id"]
    assert sorted(o["copied_id"] for o in replaced.result["ad_object_ids"]) == sorted(
        o["copied_id"] for o in chunked["objects"]
    )
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
    assert sorted(strip_key(a.data["name"]) for a in sim.children(new_adset.id, "ad")) == [
        "Ad 1.0",
        "Ad 1.1",
        "Ad 1.2",
    ]
    assert strip_key(new_adset.data["name"]) == "Set 1 - Copy"


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


async def upload_image(sim: Sim, act: str) -> str:
    """A real image in ``act``'s library (creatives may only use their own account's images)."""
    from bulk_engine.planning.graph import Operation, OpKind

    async with sim.engine() as engine:
        result = await engine.run(
            [
                Operation(
                    op_id="img",
                    method="POST",
                    path=f"{act}/adimages",
                    params={
                        "bytes": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGNgYGQCAAAIAAQ24LCmAAAAAElFTkSuQmCC",
                        "name": "hero",
                    },  # a 1×1 PNG
                    account_id=act,
                    kind=OpKind.CREATE_IMAGE,
                )
            ]
        )
    [outcome] = result.outcomes
    return str(outcome.result["images"]["hero"]["hash"])


async def upload_video(sim: Sim, act: str) -> str:
    from bulk_engine.planning.graph import Operation, OpKind

    async with sim.engine() as engine:
        result = await engine.run(
            [
                Operation(
                    op_id="vid",
                    method="POST",
                    path=f"{act}/advideos",
                    params={"file_url": "https://example.com/launch.mp4"},
                    account_id=act,
                    kind=OpKind.CREATE_OTHER,
                )
            ]
        )
    [outcome] = result.outcomes
    return str(outcome.result["id"])


def writes(sim: Sim) -> list[Any]:
    return [c for c in sim.server.core.calls if c.method != "GET"]


async def test_cross_account_clone_recreates_the_tree_with_new_ids(start_sim: Any) -> None:
    sim = await start_sim()
    image_hash = await upload_image(sim, sim.act)
    tree = source_tree()
    creatives = {
        "c": {
            "name": "Shared",
            "object_story_spec": {
                "page_id": "2000000001",
                "link_data": {"link": "https://example.com", "image_hash": image_hash},
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
    assert new_campaign.account_id == target and strip_key(new_campaign.data["name"]) == "Source - Copy"
    cloned = sim.tree(clone["new_id"])
    original = sim.tree(source)
    assert cloned["adsets"] == original["adsets"]  # same names, statuses, budgets, targeting, ads
    assert {o["type"] for o in clone["objects"]} == {"adcreative", "campaign", "adset", "ad"}
    new_creatives = [n for n in sim.nodes("adcreative") if n.account_id == target]
    assert len(new_creatives) == 1  # the shared creative stays shared
    # the image was copied into the target's library (same content hash) and the creative uses that copy
    assert new_creatives[0].data["object_story_spec"]["link_data"]["image_hash"] == image_hash
    assert any(i.account_id == target and i.data.get("hash") == image_hash for i in sim.nodes("adimage"))
    assert clone["assets"]["images"] == [image_hash]
    assert all(sim.node(o["copied_id"]).account_id == target for o in clone["objects"])
    copy_from = [c for c in writes(sim) if c.path.endswith("/adimages") and c.account_id == target]
    assert len(copy_from) == 1


def video_creative(video_id: str) -> dict[str, Any]:
    return {
        "name": "Video",
        "object_story_spec": {
            "page_id": "2000000001",
            "video_data": {
                "video_id": video_id,
                "image_url": "https://example.com/thumb.jpg",
                "call_to_action": {"type": "LEARN_MORE", "value": {"link": "https://example.com"}},
            },
        },
    }


async def test_clone_copies_unmapped_videos_by_url_and_remaps_mapped_ones(start_sim: Any) -> None:
    sim = await start_sim()
    target = sim.accounts[1]
    video = await upload_video(sim, sim.act)
    tree = campaign(
        "Video campaign",
        ad_sets=[
            adset(
                "S",
                ads=[{"name": "V", "creative": "v"}, {"name": "L", "creative": "c"}],
            )
        ],
    )
    created = await sim.run(tree_job([tree], {"v": video_creative(video), "c": creative()}))
    assert created.ok, [o.reason for o in created.outcomes if o.reason]
    source = str(ids_by_op(created)["t0/c0"])
    # without a mapping: the video is read by its source URL and uploaded to the target (file_url), then used
    report = await copy(sim, source_ids=[source], target_account_id=target)
    clone = report.task("cp").details["copies"][source]
    assert not clone["failed"] and report.counts["failed"] == report.counts["skipped"] == 0
    [copied] = [n for n in sim.nodes("advideo") if n.account_id == target]
    assert copied.data["file_url"] == sim.node(video).data["source"]
    assert clone["assets"]["videos"] == {video: copied.id} and clone["assets"]["unmapped_videos"] == []
    assert sorted(strip_key(ad.data["name"]) for ad in sim.nodes("ad") if ad.account_id == target) == [
        "L",
        "V",
    ]
    # with the video uploaded to the target and mapped, everything is cloned onto the target's video
    target_video = await upload_video(sim, target)
    report = await copy(
        sim, key="cp2", source_ids=[source], target_account_id=target, video_map={video: target_video}
    )
    clone = report.task("cp2").details["copies"][source]
    assert not clone["failed"] and report.counts["skipped"] == 0
    cloned_video_creatives = [
        n
        for n in sim.nodes("adcreative")
        if n.account_id == target and "video_data" in n.data["object_story_spec"]
    ]
    assert [n.data["object_story_spec"]["video_data"]["video_id"] for n in cloned_video_creatives] == [
        copied.id,
        target_video,
    ]
    assert len([n for n in sim.nodes("advideo") if n.account_id == target]) == 2  # video_map: no upload


async def test_copy_dry_run_reads_and_plans_without_writing(start_sim: Any) -> None:
    sim = await start_sim()
    ids = await make_source(sim)
    small = await make_source(
        sim, campaign("Small", ad_sets=[adset("S", ads=[{"name": "A", "creative": "c"}])])
    )
    before = len(sim.store)
    written = len(writes(sim))
    report = await sim.run(
        {"tasks": [{"type": "copy", "key": "cp", "source_ids": [ids["t0/c0"], small["t0/c0"], "999"]}]},
        CompileContext(validate_only=True),
    )
    plans = report.task("cp").details["copies"]
    assert plans[str(ids["t0/c0"])]["plan"] == "chunked" and plans[str(ids["t0/c0"])]["objects"] == 9
    assert plans[str(small["t0/c0"])] == {
        "plan": "sync",
        "objects": 3,
        "reason": "dry run: one /copies call would copy 3 object(s)",
    }
    assert plans["999"]["plan"] == "unreadable"
    assert {o.op_id: o.state.value for o in report.outcomes if "/copy/" in o.op_id} == {
        f"cp/copy/{ids['t0/c0']}": "skipped",
        f"cp/copy/{small['t0/c0']}": "skipped",
        "cp/copy/999": "skipped",
    }
    assert len(writes(sim)) == written and len(sim.store) == before  # reads only


async def test_clone_dry_run_plans_assets_without_writing(start_sim: Any) -> None:
    sim = await start_sim()
    image_hash = await upload_image(sim, sim.act)
    video = await upload_video(sim, sim.act)
    hero = creative(
        "hero",
        object_story_spec={
            "page_id": "2000000001",
            "link_data": {"link": "https://example.com", "image_hash": image_hash},
        },
    )
    tree = campaign(
        "C", ad_sets=[adset("S", ads=[{"name": "A", "creative": "h"}, {"name": "V", "creative": "v"}])]
    )
    source = str(ids_by_op(await sim.run(tree_job([tree], {"h": hero, "v": video_creative(video)})))["t0/c0"])
    written = len(writes(sim))
    report = await sim.run(
        {
            "tasks": [
                {"type": "copy", "key": "cp", "source_ids": [source], "target_account_id": sim.accounts[1]}
            ]
        },
        CompileContext(validate_only=True),
    )
    plan = report.task("cp").details["copies"][source]
    assert plan["dry_run"] and plan["assets"]["images"] == [image_hash]
    assert plan["assets"]["unmapped_videos"] == []  # the video would be uploaded from its source URL
    assert "from its source URL" in plan["assets"]["videos"][video]
    assert all(o["planned"] for o in plan["objects"])
    assert plan["writes"] == 7  # image copy, 2 creatives, campaign, ad set, 2 ads
    assert len(writes(sim)) == written


async def test_clone_of_a_creative_made_from_image_url_copies_its_saved_image(start_sim: Any) -> None:
    """Graph saves an ``image_url`` into the account's library; the clone copies that image by hash and does
    not send the URL again (S003: "Do not use image URLs returned by Facebook")."""
    sim = await start_sim()
    hero = creative("hero", image_url="https://cdn.example.com/hero.jpg")
    tree = campaign("C", ad_sets=[adset("S", ads=[{"name": "A", "creative": "h"}])])
    source = str(ids_by_op(await sim.run(tree_job([tree], {"h": hero})))["t0/c0"])
    saved = next(n for n in sim.nodes("adcreative") if n.account_id == sim.act).data["image_hash"]
    report = await copy(sim, source_ids=[source], target_account_id=sim.accounts[1])
    clone = report.task("cp").details["copies"][source]
    assert not clone["failed"] and clone["assets"]["images"] == [saved]
    [cloned] = [n for n in sim.nodes("adcreative") if n.account_id == sim.accounts[1]]
    assert cloned.data["image_hash"] == saved and "image_url" not in cloned.data
