"""``/copies`` over HTTP (SPEC-DIGEST §6.1; choices documented in ``bulk_engine/simulator/copies.py``)."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import Graph, make_ad, make_adset, make_campaign, make_creative

from bulk_engine.simulator import SimulatorThread
from bulk_engine.simulator.config import SimulatorConfig


def read(graph: Graph, object_id: str, fields: str) -> dict[str, Any]:
    answer = graph.get(object_id, fields=fields)
    assert answer.status == 200, answer.body
    return dict(answer.body)


def copy(graph: Graph, object_id: str, **params: Any) -> dict[str, Any]:
    answer = graph.post(f"{object_id}/copies", **params)
    assert answer.status == 200, answer.body
    return dict(answer.body)


def store_size(sim: SimulatorThread) -> int:
    return sim.run(lambda core: len(core.store))


def entry(kind: str, source: str, copied: str) -> dict[str, str]:
    return {"ad_object_type": kind, "source_id": source, "copied_id": copied}


@pytest.fixture
def tree(graph: Graph, act: str, page_id: str) -> dict[str, str]:
    """Campaign "Spring" → ad set "Spring set" → ad "Spring ad" (all ACTIVE)."""
    campaign = make_campaign(graph, act, name="Spring", status="ACTIVE")
    adset = make_adset(graph, act, campaign, name="Spring set", status="ACTIVE")
    creative = make_creative(graph, act, page_id)
    ad = make_ad(graph, act, adset, creative, name="Spring ad", status="ACTIVE")
    return {"campaign": campaign, "adset": adset, "creative": creative, "ad": ad}


# --- campaign copies -----------------------------------------------------------------------------------
def test_shallow_campaign_copy_defaults(graph: Graph, tree: dict[str, str]) -> None:
    """Default: the campaign only, PAUSED, renamed " - Copy", provenance in ``source_campaign_id``."""
    body = copy(graph, tree["campaign"])
    new = body["copied_campaign_id"]
    assert body == {"copied_campaign_id": new, "ad_object_ids": [entry("campaign", tree["campaign"], new)]}
    assert new != tree["campaign"]
    assert read(graph, new, "name,status,objective,source_campaign_id,source_campaign{name}") == {
        "id": new,
        "name": "Spring - Copy",
        "status": "PAUSED",
        "objective": "OUTCOME_TRAFFIC",
        "source_campaign_id": tree["campaign"],
        "source_campaign": {"name": "Spring", "id": tree["campaign"]},
    }
    assert graph.get(f"{new}/adsets").body["data"] == []
    assert read(graph, tree["campaign"], "name,status") == {
        "id": tree["campaign"],
        "name": "Spring",
        "status": "ACTIVE",
    }


def test_deep_campaign_copy_copies_the_tree_and_shares_creatives(graph: Graph, tree: dict[str, str]) -> None:
    body = copy(graph, tree["campaign"], deep_copy=True)
    campaign = body["copied_campaign_id"]
    adset, ad = (e["copied_id"] for e in body["ad_object_ids"][1:])
    assert body["ad_object_ids"] == [
        entry("campaign", tree["campaign"], campaign),
        entry("adset", tree["adset"], adset),
        entry("ad", tree["ad"], ad),
    ]
    assert read(graph, adset, "name,campaign_id,source_adset_id,status,daily_budget") == {
        "id": adset,
        "name": "Spring set",  # ONLY_TOP_LEVEL_RENAME by default
        "campaign_id": campaign,
        "source_adset_id": tree["adset"],
        "status": "PAUSED",
        "daily_budget": "1000",
    }
    assert read(graph, ad, "adset_id,campaign_id,source_ad_id,creative") == {
        "id": ad,
        "adset_id": adset,
        "campaign_id": campaign,
        "source_ad_id": tree["ad"],
        "creative": {"id": tree["creative"]},  # creatives are shared, not copied
    }
    assert [a["id"] for a in graph.get(f"{campaign}/ads").body["data"]] == [ad]


def test_deep_copy_skips_archived_and_deleted_children(graph: Graph, act: str, tree: dict[str, str]) -> None:
    archived = make_ad(graph, act, tree["adset"], tree["creative"], name="old")
    assert graph.post(archived, status="ARCHIVED").body == {"success": True}
    deleted = make_adset(graph, act, tree["campaign"], name="gone")
    assert graph.delete(deleted).body == {"success": True}
    body = copy(graph, tree["campaign"], deep_copy=True)
    assert [e["source_id"] for e in body["ad_object_ids"]] == [tree["campaign"], tree["adset"], tree["ad"]]


class TestSyncCopyLimit:
    """More than ``sync_copy_limit`` (3) objects → 100/1885194, nothing created."""

    @pytest.fixture
    def graph_simulator_config(self, request: pytest.FixtureRequest) -> SimulatorConfig:
        return SimulatorConfig(sync_copy_limit=getattr(request, "param", 3))

    @pytest.mark.parametrize(("kind", "extra_ads"), [("campaign", 1), ("adset", 2)])
    def test_too_large_deep_copy_is_refused_without_side_effects(
        self,
        graph: Graph,
        act: str,
        tree: dict[str, str],
        graph_simulator: SimulatorThread,
        kind: str,
        extra_ads: int,
    ) -> None:
        for i in range(extra_ads):  # campaign + ad set + 2 ads = 4; ad set + 3 ads = 4
            make_ad(graph, act, tree["adset"], tree["creative"], name=f"more {i}")
        before = store_size(graph_simulator)
        answer = graph.post(f"{tree[kind]}/copies", deep_copy=True)
        assert answer.status == 400
        assert (answer.error["code"], answer.error["error_subcode"]) == (100, 1885194)
        assert "asynchronous batch request" in answer.error["message"]
        assert answer.error["error_data"]["blame_field_specs"] == [["deep_copy"]]
        assert store_size(graph_simulator) == before
        assert copy(graph, tree[kind])[f"copied_{kind}_id"]  # a shallow copy always fits

    def test_exactly_the_limit_fits(self, graph: Graph, tree: dict[str, str]) -> None:
        assert len(copy(graph, tree["campaign"], deep_copy=True)["ad_object_ids"]) == 3

    @pytest.mark.parametrize("graph_simulator_config", [10], indirect=True)
    def test_limit_is_configurable(self, graph: Graph, act: str, tree: dict[str, str]) -> None:
        for i in range(3):
            make_ad(graph, act, tree["adset"], tree["creative"], name=f"ad {i}")
        body = copy(graph, tree["campaign"], deep_copy=True)
        assert len(body["ad_object_ids"]) == 6


# --- status_option ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source_status", "option", "expected"),
    [
        ("ACTIVE", None, "PAUSED"),
        ("ACTIVE", "PAUSED", "PAUSED"),
        ("PAUSED", "ACTIVE", "ACTIVE"),
        ("ACTIVE", "INHERITED_FROM_SOURCE", "ACTIVE"),
        ("PAUSED", "INHERITED_FROM_SOURCE", "PAUSED"),
        ("ARCHIVED", "INHERITED_FROM_SOURCE", "PAUSED"),
        ("DELETED", "INHERITED_FROM_SOURCE", "PAUSED"),
        ("ARCHIVED", "ACTIVE", "ACTIVE"),
        ("DELETED", None, "PAUSED"),
    ],
)
@pytest.mark.parametrize("kind", ["campaign", "adset", "ad"])
def test_status_option(
    graph: Graph, tree: dict[str, str], kind: str, source_status: str, option: str | None, expected: str
) -> None:
    """``status_option`` (default PAUSED); archived/deleted objects can be duplicated (1885088 etc. say so)."""
    source = tree[kind]
    if kind != "campaign" and source_status in ("ARCHIVED", "DELETED"):
        source = copy(graph, source, status_option="ACTIVE")[f"copied_{kind}_id"]
    if source_status != "ACTIVE":
        assert graph.post(source, status=source_status).body == {"success": True}
    params = {"status_option": option} if option else {}
    body = copy(graph, source, **params)
    assert read(graph, body[f"copied_{kind}_id"], "status")["status"] == expected


def test_status_option_applies_to_every_copied_object(graph: Graph, tree: dict[str, str]) -> None:
    assert graph.post(tree["ad"], status="PAUSED").body == {"success": True}
    body = copy(graph, tree["campaign"], deep_copy=True, status_option="INHERITED_FROM_SOURCE")
    statuses = [read(graph, e["copied_id"], "status")["status"] for e in body["ad_object_ids"]]
    assert statuses == ["ACTIVE", "ACTIVE", "PAUSED"]
    body = copy(graph, tree["campaign"], deep_copy=True, status_option="ACTIVE")
    statuses = [read(graph, e["copied_id"], "status")["status"] for e in body["ad_object_ids"]]
    assert statuses == ["ACTIVE", "ACTIVE", "ACTIVE"]


# --- rename_options --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({}, ["Spring - Copy", "Spring set", "Spring ad"]),
        (
            {"rename_options": {"rename_strategy": "DEEP_RENAME"}},
            ["Spring - Copy", "Spring set - Copy", "Spring ad - Copy"],
        ),
        ({"rename_options": {"rename_strategy": "NO_RENAME"}}, ["Spring", "Spring set", "Spring ad"]),
        (
            {"rename_options": {"rename_strategy": "ONLY_TOP_LEVEL_RENAME", "rename_prefix": "[B] "}},
            ["[B] Spring", "Spring set", "Spring ad"],
        ),
        (
            {
                "rename_options": {
                    "rename_strategy": "DEEP_RENAME",
                    "rename_prefix": "X ",
                    "rename_suffix": " v2",
                }
            },
            ["X Spring v2", "X Spring set v2", "X Spring ad v2"],
        ),
        (
            {"rename_strategy": "DEEP_RENAME", "rename_suffix": " (2)"},
            ["Spring (2)", "Spring set (2)", "Spring ad (2)"],
        ),
    ],
)
def test_rename_options(graph: Graph, tree: dict[str, str], params: dict[str, Any], names: list[str]) -> None:
    body = copy(graph, tree["campaign"], deep_copy=True, **params)
    assert [read(graph, e["copied_id"], "name")["name"] for e in body["ad_object_ids"]] == names


@pytest.mark.parametrize(
    ("params", "blame"),
    [
        ({"status_option": "ARCHIVED"}, "status_option"),
        ({"rename_options": {"rename_strategy": "SHOUT"}}, "rename_options"),
        ({"rename_options": "[1]"}, "rename_options"),
        ({"deep_copy": "perhaps"}, "deep_copy"),
        ({"start_time": "next tuesday"}, "start_time"),
        ({"start_time": "2030-01-02T00:00:00+0000", "end_time": "2030-01-01T00:00:00+0000"}, "end_time"),
    ],
)
def test_copy_parameter_refusals(
    graph: Graph, tree: dict[str, str], params: dict[str, Any], blame: str, graph_simulator: SimulatorThread
) -> None:
    before = store_size(graph_simulator)
    answer = graph.post(f"{tree['adset']}/copies", **params)
    assert answer.status == 400
    assert answer.error["code"] == 100
    assert answer.error["error_data"]["blame_field_specs"] == [[blame]]
    assert store_size(graph_simulator) == before


# --- ad set and ad copies ----------------------------------------------------------------------------------
def test_adset_copy_into_another_campaign_with_new_schedule(
    graph: Graph, act: str, tree: dict[str, str]
) -> None:
    target = make_campaign(graph, act, name="Summer")
    start, end = "2030-06-01T00:00:00+0000", "2030-07-01T00:00:00+0000"
    body = copy(graph, tree["adset"], campaign_id=target, deep_copy=True, start_time=start, end_time=end)
    adset = body["copied_adset_id"]
    ad = body["ad_object_ids"][1]["copied_id"]
    assert body["ad_object_ids"] == [entry("adset", tree["adset"], adset), entry("ad", tree["ad"], ad)]
    assert read(graph, adset, "campaign_id,start_time,end_time,name") == {
        "id": adset,
        "campaign_id": target,
        "start_time": start,
        "end_time": end,
        "name": "Spring set - Copy",
    }
    assert read(graph, ad, "campaign_id,adset_id") == {"id": ad, "campaign_id": target, "adset_id": adset}
    assert [a["id"] for a in graph.get(f"{target}/adsets").body["data"]] == [adset]


def test_adset_copy_stays_under_its_campaign_by_default(graph: Graph, tree: dict[str, str]) -> None:
    body = copy(graph, tree["adset"])
    assert body["ad_object_ids"] == [entry("adset", tree["adset"], body["copied_adset_id"])]
    assert read(graph, body["copied_adset_id"], "campaign_id")["campaign_id"] == tree["campaign"]


def test_ad_copy_into_another_adset(graph: Graph, act: str, tree: dict[str, str]) -> None:
    other = make_adset(graph, act, tree["campaign"], name="Other set")
    body = copy(graph, tree["ad"], adset_id=other)
    ad = body["copied_ad_id"]
    assert body == {"copied_ad_id": ad, "ad_object_ids": [entry("ad", tree["ad"], ad)]}
    assert read(graph, ad, "adset_id,name,creative,status") == {
        "id": ad,
        "adset_id": other,
        "name": "Spring ad - Copy",
        "creative": {"id": tree["creative"]},
        "status": "PAUSED",
    }


def test_copy_targets_must_be_live_objects_of_the_account(
    graph: Graph, act: str, tree: dict[str, str], graph_simulator: SimulatorThread
) -> None:
    other_account = str(graph_simulator.info()["ad_account_ids"][1])
    foreign = make_campaign(graph, other_account)
    deleted = make_campaign(graph, act)
    assert graph.delete(deleted).body == {"success": True}
    archived_set = make_adset(graph, act, tree["campaign"])
    assert graph.post(archived_set, status="ARCHIVED").body == {"success": True}
    cases = [
        (tree["adset"], {"campaign_id": foreign}, "campaign_id"),
        (tree["adset"], {"campaign_id": deleted}, "campaign_id"),
        (tree["adset"], {"campaign_id": tree["ad"]}, "campaign_id"),
        (tree["ad"], {"adset_id": archived_set}, "adset_id"),
        (tree["ad"], {"adset_id": "999999"}, "adset_id"),
    ]
    for source, params, blame in cases:
        answer = graph.post(f"{source}/copies", **params)
        assert answer.status == 400, (params, answer.body)
        assert answer.error["error_data"]["blame_field_specs"] == [[blame]]


def test_adset_with_budget_cannot_join_a_campaign_budget(
    graph: Graph, act: str, tree: dict[str, str]
) -> None:
    """1885621 "You can only set an ad set budget or a campaign budget." also holds for copies."""
    cbo = make_campaign(graph, act, daily_budget=5000)
    answer = graph.post(f"{tree['adset']}/copies", campaign_id=cbo)
    assert (answer.error["code"], answer.error["error_subcode"]) == (100, 1885621)


# --- GET /<id>/copies ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["campaign", "adset", "ad"])
def test_get_copies_lists_the_copies(graph: Graph, tree: dict[str, str], kind: str) -> None:
    first = copy(graph, tree[kind])[f"copied_{kind}_id"]
    second = copy(graph, tree[kind])[f"copied_{kind}_id"]
    copy(graph, first)  # a copy of a copy is not a copy of the source
    listed = graph.get(f"{tree[kind]}/copies", fields="name")
    assert listed.status == 200
    assert [c["id"] for c in listed.body["data"]] == [second, first]
    assert graph.delete(second).body == {"success": True}
    assert [c["id"] for c in graph.get(f"{tree[kind]}/copies").body["data"]] == [first]
    page = graph.get(f"{tree[kind]}/copies", limit=1, summary="total_count")
    assert page.body["summary"] == {"total_count": 1}


def test_copy_as_a_batch_operation(graph: Graph, tree: dict[str, str]) -> None:
    """Copies run in batches like any POST (the engine's route for copies of many objects)."""
    answer = graph.batch(
        [
            {"method": "POST", "relative_url": f"{tree['campaign']}/copies", "body": "deep_copy=true"},
            {"method": "POST", "relative_url": f"{tree['ad']}/copies", "body": "status_option=ACTIVE"},
        ]
    )
    assert answer.status == 200
    assert [op["code"] for op in answer.body] == [200, 200]


class TestCopiesAreCreates:
    @pytest.fixture
    def graph_simulator_config(self) -> SimulatorConfig:
        return SimulatorConfig(ad_review_s=60)

    def test_copied_active_ads_go_through_review(self, graph: Graph, tree: dict[str, str]) -> None:
        """An ACTIVE copied ad is PENDING_REVIEW like any new ad (S003 §Ad Account Ads: status)."""
        copied = copy(graph, tree["ad"], status_option="ACTIVE")["copied_ad_id"]
        assert read(graph, copied, "effective_status")["effective_status"] == "PENDING_REVIEW"
        paused = copy(graph, tree["ad"])["copied_ad_id"]
        assert read(graph, paused, "effective_status")["effective_status"] == "PAUSED"
