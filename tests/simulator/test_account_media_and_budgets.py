"""Account-scoped media (image library, ``copy_from``, ad videos) and the switch to a campaign budget."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import Graph, make_adset, make_campaign, make_creative

from bulk_engine.simulator import SimulatorThread


@pytest.fixture
def accounts(graph_simulator: SimulatorThread) -> list[str]:
    return [str(a) for a in graph_simulator.info()["ad_account_ids"]]


PNG_1X1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGNgYGQCAAAIAAQ24LCmAAAAAElFTkSuQmCC"  # Base64 of a real 1×1 PNG: the library refuses content that is not an image


def upload(graph: Graph, act: str, content: str = PNG_1X1, name: str = "hero") -> str:
    answer = graph.post(f"{act}/adimages", bytes=content, name=name)
    assert answer.status == 200, answer.body
    return str(answer.body["images"][name]["hash"])


def link_spec(page_id: str, image_hash: str) -> dict[str, Any]:
    return {"page_id": page_id, "link_data": {"link": "https://example.com", "image_hash": image_hash}}


# --- images -----------------------------------------------------------------------------------------------
def test_copy_from_brings_an_image_into_another_account_with_its_hash(
    graph: Graph, accounts: list[str], page_id: str
) -> None:
    source, target = accounts[:2]
    image_hash = upload(graph, source)
    refused = graph.post(f"{target}/adcreatives", name="x", object_story_spec=link_spec(page_id, image_hash))
    assert refused.status == 400 and "image library" in refused.error["message"]
    copied = graph.post(
        f"{target}/adimages", copy_from={"source_account_id": source.removeprefix("act_"), "hash": image_hash}
    )
    assert copied.status == 200, copied.body
    [answer] = copied.body["images"].values()
    assert answer["hash"] == image_hash  # the content's hash: the same in every account
    listed = graph.get(f"{target}/adimages", fields="hash").body["data"]
    assert [i["hash"] for i in listed] == [image_hash]
    make_creative(graph, target, page_id, object_story_spec=link_spec(page_id, image_hash))


@pytest.mark.parametrize(
    "copy_from",
    [
        {"source_account_id": "1000000001", "hash": "not-there"},
        {"source_account_id": "999", "hash": "x"},
        {"hash": "x"},
    ],
)
def test_copy_from_refuses_what_the_source_account_does_not_have(
    graph: Graph, accounts: list[str], copy_from: dict[str, str]
) -> None:
    answer = graph.post(f"{accounts[1]}/adimages", copy_from=copy_from)
    assert answer.status == 400
    assert answer.error["code"] == 100
    assert answer.error["error_data"]["blame_field_specs"] == [["copy_from"]]


def test_a_creative_image_url_is_saved_to_the_library(graph: Graph, act: str, page_id: str) -> None:
    creative = make_creative(graph, act, page_id, image_url="https://cdn.example.com/hero.jpg")
    image_hash = graph.get(creative, fields="image_hash,image_url").body["image_hash"]
    assert image_hash in {i["hash"] for i in graph.get(f"{act}/adimages", fields="hash").body["data"]}


def test_asset_feed_images_must_be_in_the_library(graph: Graph, act: str, page_id: str) -> None:
    feed = {
        "images": [{"hash": "missing"}],
        "bodies": [{"text": "b"}],
        "titles": [{"text": "t"}],
        "link_urls": [{"website_url": "https://example.com"}],
        "ad_formats": ["SINGLE_IMAGE"],
        "call_to_action_types": ["SHOP_NOW"],
    }
    answer = graph.post(
        f"{act}/adcreatives", name="feed", object_story_spec={"page_id": page_id}, asset_feed_spec=feed
    )
    assert answer.status == 400
    assert answer.error["error_data"]["blame_field_specs"] == [["asset_feed_spec", "images", "hash"]]
    feed["images"] = [{"hash": upload(graph, act)}]
    answer = graph.post(
        f"{act}/adcreatives", name="feed", object_story_spec={"page_id": page_id}, asset_feed_spec=feed
    )
    assert answer.status == 200, answer.body


@pytest.mark.graph_simulator(check_creative_media=False)
def test_the_media_rule_can_be_switched_off(graph: Graph, act: str, page_id: str) -> None:
    make_creative(graph, act, page_id, object_story_spec=link_spec(page_id, "made-up"))


# --- videos -----------------------------------------------------------------------------------------------
def test_ad_videos_are_created_read_and_listed_per_account(graph: Graph, accounts: list[str]) -> None:
    act, other = accounts[:2]
    video = graph.post(f"{act}/advideos", file_url="https://example.com/v.mp4", title="Launch")
    assert video.status == 200 and set(video.body) == {"id"}
    read = graph.get(video.body["id"], fields="title,status,source").body
    assert read["title"] == "Launch" and read["status"]["video_status"] == "ready" and read["source"]
    assert [v["id"] for v in graph.get(f"{act}/advideos").body["data"]] == [video.body["id"]]
    assert graph.get(f"{other}/advideos").body["data"] == []
    bad = graph.post(f"{act}/advideos", file_url="ftp://example.com/v.mp4")
    assert bad.status == 400 and bad.error["code"] == 389
    assert graph.post(f"{act}/advideos", title="nothing").status == 400


# --- campaign budget switch -------------------------------------------------------------------------------
def test_a_campaign_budget_replaces_the_ad_set_budgets(
    graph: Graph, act: str, graph_simulator: SimulatorThread
) -> None:
    campaign = make_campaign(graph, act)
    adsets = [make_adset(graph, act, campaign, daily_budget=budget) for budget in (1000, 700)]
    dry = graph.post(campaign, daily_budget=1700, execution_options=["validate_only"])
    assert dry.body == {"success": True}
    assert graph.get(adsets[0], fields="daily_budget").body["daily_budget"] == "1000"  # nothing changed
    assert graph.post(campaign, daily_budget=1700, bid_strategy="LOWEST_COST_WITHOUT_CAP").body == {
        "success": True
    }
    assert graph.get(campaign, fields="daily_budget").body["daily_budget"] == "1700"
    for adset in adsets:
        assert "daily_budget" not in graph.get(adset, fields="daily_budget").body
    # and from now on the ad sets cannot have their own (1885621)
    again = graph.post(adsets[0], daily_budget=500)
    assert (again.error["code"], again.error["error_subcode"]) == (100, 1885621)


@pytest.mark.graph_simulator(campaign_budget_switch="refuse")
def test_the_budget_switch_can_be_refused_with_1885621(graph: Graph, act: str) -> None:
    campaign = make_campaign(graph, act)
    adset = make_adset(graph, act, campaign)
    answer = graph.post(campaign, daily_budget=2000)
    assert (answer.error["code"], answer.error["error_subcode"]) == (100, 1885621)
    assert answer.error["error_data"]["blame_field_specs"] == [["daily_budget"]]
    assert graph.get(adset, fields="daily_budget").body["daily_budget"] == "1000"


def test_an_ad_set_budget_cannot_be_cleared_without_a_campaign_budget(graph: Graph, act: str) -> None:
    adset = make_adset(graph, act, make_campaign(graph, act))
    answer = graph.post(adset, daily_budget=0)
    assert answer.status == 400 and answer.error["error_data"]["blame_field_specs"] == [["daily_budget"]]
