"""Advantage+ state and migration over HTTP (S003 §Advantage+ Campaign Experience for Sales, App, and Leads;
§Migrate Advantage+ Shopping Campaigns and Advantage+ App Campaigns into Advantage+ Campaigns).

Refusal codes are the simulator's (the seeds give none): see ``bulk_engine/simulator/copies.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import Graph, make_ad, make_adset, make_campaign, make_creative

from bulk_engine.simulator import SimulatorThread
from bulk_engine.simulator.config import SimulatorConfig

GEO = {"geo_locations": {"countries": ["US"]}}
PIXEL = {"pixel_id": "1234567890", "custom_event_type": "PURCHASE"}
ALL_ON = {
    "advantage_budget_state": "ENABLED",
    "advantage_audience_state": "ENABLED",
    "advantage_placement_state": "ENABLED",
}


def read(graph: Graph, object_id: str, fields: str) -> dict[str, Any]:
    answer = graph.get(object_id, fields=fields)
    assert answer.status == 200, answer.body
    return dict(answer.body)


def state_info(graph: Graph, campaign: str) -> dict[str, str]:
    return dict(read(graph, campaign, "advantage_state_info")["advantage_state_info"])


def store_size(sim: SimulatorThread) -> int:
    return sim.run(lambda core: len(core.store))


def make_asc(
    graph: Graph, act: str, page_id: str, *, ads: int = 1, kind: str = "AUTOMATED_SHOPPING_ADS"
) -> dict[str, Any]:
    """An ASC (or AAC) the v24.0 way: smart_promotion_type on the campaign, budget on its one ad set."""
    objective = "OUTCOME_SALES" if kind == "AUTOMATED_SHOPPING_ADS" else "OUTCOME_APP_PROMOTION"
    campaign = make_campaign(graph, act, name="ASC", objective=objective, smart_promotion_type=kind)
    adset = make_adset(
        graph,
        act,
        campaign,
        name="ASC set",
        billing_event="IMPRESSIONS",
        optimization_goal="OFFSITE_CONVERSIONS",
        promoted_object=PIXEL,
        daily_budget=5000,
        targeting=GEO,
    )
    creative = make_creative(graph, act, page_id)
    ad_ids = [make_ad(graph, act, adset, creative, name=f"ASC ad {i}") for i in range(ads)]
    return {"campaign": campaign, "adset": adset, "creative": creative, "ads": ad_ids}


# --- advantage_state_info ------------------------------------------------------------------------------------
SALES_BUDGET = {
    "objective": "OUTCOME_SALES",
    "daily_budget": 10000,
    "bid_strategy": "LOWEST_COST_WITHOUT_CAP",
}
PLACEMENTS = {**GEO, "publisher_platforms": ["facebook"], "facebook_positions": ["feed"]}


@pytest.mark.parametrize(
    ("campaign", "adsets", "expected"),
    [
        (SALES_BUDGET, [GEO], {"advantage_state": "ADVANTAGE_PLUS_SALES", **ALL_ON}),
        (
            {**SALES_BUDGET, "objective": "OUTCOME_LEADS"},
            [GEO],
            {"advantage_state": "ADVANTAGE_PLUS_LEADS", **ALL_ON},
        ),
        (
            {**SALES_BUDGET, "objective": "OUTCOME_APP_PROMOTION"},
            [GEO],
            {"advantage_state": "ADVANTAGE_PLUS_APP", **ALL_ON},
        ),
        (
            {**SALES_BUDGET, "objective": "APP_INSTALLS"},
            [GEO],
            {"advantage_state": "ADVANTAGE_PLUS_APP", **ALL_ON},
        ),
        ({**SALES_BUDGET, "objective": "OUTCOME_TRAFFIC"}, [GEO], {"advantage_state": "DISABLED", **ALL_ON}),
        (
            {"objective": "OUTCOME_SALES"},
            [GEO],
            {"advantage_state": "DISABLED", **ALL_ON, "advantage_budget_state": "DISABLED"},
        ),
        (
            {**SALES_BUDGET, "bid_strategy": "COST_CAP"},
            [GEO],
            {"advantage_state": "ADVANTAGE_PLUS_SALES", **ALL_ON},
        ),
        (
            SALES_BUDGET,
            [{**GEO, "age_min": 30}],
            {"advantage_state": "DISABLED", **ALL_ON, "advantage_audience_state": "DISABLED"},
        ),
        (
            SALES_BUDGET,
            [{**GEO, "age_min": 30, "targeting_automation": {"advantage_audience": 1}}],
            {"advantage_state": "ADVANTAGE_PLUS_SALES", **ALL_ON},
        ),
        (
            SALES_BUDGET,
            [
                {
                    **GEO,
                    "age_min": 30,
                    "genders": [1],
                    "targeting_automation": {"individual_setting": {"age": 1, "gender": 1}},
                }
            ],
            {"advantage_state": "ADVANTAGE_PLUS_SALES", **ALL_ON},
        ),
        (
            SALES_BUDGET,
            [
                {
                    **GEO,
                    "flexible_spec": [{"interests": [{"id": "6003139266461"}]}],
                    "targeting_optimization": "expansion_all",
                }
            ],
            {"advantage_state": "ADVANTAGE_PLUS_SALES", **ALL_ON},
        ),
        (
            SALES_BUDGET,
            [{**GEO, "age_min": 30}, GEO],  # "at least one ad set"
            {"advantage_state": "ADVANTAGE_PLUS_SALES", **ALL_ON},
        ),
        (
            SALES_BUDGET,
            [PLACEMENTS],
            {"advantage_state": "DISABLED", **ALL_ON, "advantage_placement_state": "DISABLED"},
        ),
        (
            SALES_BUDGET,
            [GEO, {**GEO, "device_platforms": ["mobile"]}],  # "All ad sets … must fit this criteria"
            {"advantage_state": "DISABLED", **ALL_ON, "advantage_placement_state": "DISABLED"},
        ),
        (
            SALES_BUDGET,
            [],  # no ad set: the audience lever needs one
            {"advantage_state": "DISABLED", **ALL_ON, "advantage_audience_state": "DISABLED"},
        ),
    ],
)
def test_advantage_state_from_the_three_levers(
    graph: Graph, act: str, campaign: dict[str, Any], adsets: list[dict[str, Any]], expected: dict[str, str]
) -> None:
    """S003 §Step 2 / §Step 3 / §DISABLED state; §9.3 #6: APP_INSTALLS and OUTCOME_APP_PROMOTION → APP."""
    campaign_id = make_campaign(graph, act, **campaign)
    for targeting in adsets:
        budget: dict[str, Any] = {"daily_budget": ""} if "daily_budget" in campaign else {}  # "" = none
        if campaign.get("bid_strategy") == "COST_CAP":
            budget["bid_amount"] = 500  # COST_CAP needs a cap (validation.py)
        make_adset(graph, act, campaign_id, targeting=targeting, **budget)
    assert state_info(graph, campaign_id) == expected
    smart = read(graph, campaign_id, "smart_promotion_type").get("smart_promotion_type")
    assert smart == ("GUIDED_CREATION" if expected["advantage_state"] != "DISABLED" else None)


def test_levers_follow_later_edits(graph: Graph, act: str) -> None:
    """The state is read-only and derived: editing an ad set's targeting flips it; a deleted ad set drops out."""
    campaign = make_campaign(graph, act, **SALES_BUDGET)
    adset = make_adset(graph, act, campaign, targeting=GEO, daily_budget="")
    assert state_info(graph, campaign)["advantage_state"] == "ADVANTAGE_PLUS_SALES"
    assert graph.post(adset, targeting=PLACEMENTS).body == {"success": True}
    assert state_info(graph, campaign)["advantage_placement_state"] == "DISABLED"
    make_adset(graph, act, campaign, targeting=GEO, daily_budget="")
    assert state_info(graph, campaign)["advantage_state"] == "DISABLED"
    assert graph.delete(adset).body == {"success": True}
    assert state_info(graph, campaign)["advantage_state"] == "ADVANTAGE_PLUS_SALES"


# --- copy and migrate ----------------------------------------------------------------------------------------
def test_copy_and_migrate_keeps_the_source(graph: Graph, act: str, page_id: str) -> None:
    """``POST <CAMPAIGN>/copies?migrate_to_advantage_plus=true`` → the seed's response shape."""
    asc = make_asc(graph, act, page_id)
    answer = graph.post(f"{asc['campaign']}/copies", migrate_to_advantage_plus="true")
    assert answer.status == 200, answer.body
    new = answer.body["copied_campaign_id"]
    assert answer.body == {
        "copied_campaign_id": new,
        "ad_object_ids": [{"ad_object_type": "campaign", "source_id": asc["campaign"], "copied_id": new}],
    }
    copied = read(graph, new, "smart_promotion_type,advantage_state_info,source_campaign_id,daily_budget")
    assert copied["smart_promotion_type"] == "GUIDED_CREATION"
    assert copied["source_campaign_id"] == asc["campaign"]
    assert copied["daily_budget"] == "5000"  # the ASC ad set budget becomes the Advantage+ campaign budget
    assert set(copied["advantage_state_info"]) == {"advantage_state", *ALL_ON}
    source = read(graph, asc["campaign"], "smart_promotion_type")
    assert source["smart_promotion_type"] == "AUTOMATED_SHOPPING_ADS"
    assert read(graph, asc["adset"], "daily_budget")["daily_budget"] == "5000"


def test_deep_copy_and_migrate_comes_out_advantage_plus_sales(graph: Graph, act: str, page_id: str) -> None:
    asc = make_asc(graph, act, page_id)
    body = graph.post(f"{asc['campaign']}/copies", migrate_to_advantage_plus=True, deep_copy=True).body
    new, adset = body["copied_campaign_id"], body["ad_object_ids"][1]["copied_id"]
    assert [e["ad_object_type"] for e in body["ad_object_ids"]] == ["campaign", "adset", "ad"]
    assert state_info(graph, new) == {"advantage_state": "ADVANTAGE_PLUS_SALES", **ALL_ON}
    assert "daily_budget" not in read(graph, adset, "daily_budget")


# --- migrate in place ----------------------------------------------------------------------------------------
def test_migrate_in_place_keeps_ids(graph: Graph, act: str, page_id: str) -> None:
    """``POST <CAMPAIGN>?migrate_to_advantage_plus=true`` → ``{success: true}``; GUIDED_CREATION + state info."""
    asc = make_asc(graph, act, page_id)
    assert graph.post(asc["campaign"], migrate_to_advantage_plus="true").body == {"success": True}
    assert read(
        graph, asc["campaign"], "smart_promotion_type,advantage_state_info,daily_budget,bid_strategy"
    ) == {
        "id": asc["campaign"],
        "smart_promotion_type": "GUIDED_CREATION",
        "advantage_state_info": {"advantage_state": "ADVANTAGE_PLUS_SALES", **ALL_ON},
        "daily_budget": "5000",
        "bid_strategy": "LOWEST_COST_WITHOUT_CAP",
    }
    assert "daily_budget" not in read(graph, asc["adset"], "daily_budget")
    assert [a["id"] for a in graph.get(f"{asc['campaign']}/ads").body["data"]] == asc["ads"]
    # a retry after a timeout is a no-op success
    assert graph.post(asc["campaign"], migrate_to_advantage_plus="true").body == {"success": True}


def test_migrate_in_place_with_other_changes_and_validate_only(graph: Graph, act: str, page_id: str) -> None:
    asc = make_asc(graph, act, page_id)
    checked = graph.post(
        asc["campaign"], migrate_to_advantage_plus="true", execution_options=["validate_only"]
    )
    assert checked.body == {"success": True}
    assert (
        read(graph, asc["campaign"], "smart_promotion_type")["smart_promotion_type"]
        == "AUTOMATED_SHOPPING_ADS"
    )
    answer = graph.post(asc["campaign"], migrate_to_advantage_plus="true", name="Now Advantage+")
    assert answer.body == {"success": True}
    assert read(graph, asc["campaign"], "name,smart_promotion_type") == {
        "id": asc["campaign"],
        "name": "Now Advantage+",
        "smart_promotion_type": "GUIDED_CREATION",
    }


def test_advantage_plus_app_campaign_migrates_in_place(graph: Graph, act: str, page_id: str) -> None:
    aac = make_asc(graph, act, page_id, kind="SMART_APP_PROMOTION")
    assert graph.post(aac["campaign"], migrate_to_advantage_plus=True).body == {"success": True}
    assert state_info(graph, aac["campaign"])["advantage_state"] == "ADVANTAGE_PLUS_APP"


# --- refusals --------------------------------------------------------------------------------------------------
class TestRefusals:
    """S003 §Migrate … → Limitations; code 100 with the subcodes documented in copies.py."""

    @pytest.fixture
    def graph_simulator_config(self) -> SimulatorConfig:
        return SimulatorConfig(max_ads_for_migration=2)

    @staticmethod
    def assert_refused(answer: Any, subcode: int, blame: str) -> None:
        assert answer.status == 400, answer.body
        assert (answer.error["code"], answer.error["error_subcode"]) == (100, subcode)
        assert answer.error["error_data"]["blame_field_specs"] == [[blame]]
        assert answer.error["error_user_title"] and answer.error["error_user_msg"]

    def test_advantage_plus_app_campaigns_cannot_be_copied(
        self, graph: Graph, act: str, page_id: str, graph_simulator: SimulatorThread
    ) -> None:
        """ "Advantage+ app campaigns can only be migrated, not copied, into the Advantage+ format.\""""
        aac = make_asc(graph, act, page_id, kind="SMART_APP_PROMOTION")
        before = store_size(graph_simulator)
        answer = graph.post(f"{aac['campaign']}/copies", migrate_to_advantage_plus="true")
        self.assert_refused(answer, 4990001, "migrate_to_advantage_plus")
        assert store_size(graph_simulator) == before

    @pytest.mark.parametrize("mode", ["copy", "in_place"])
    def test_existing_customer_budget_percentage_blocks_migration(
        self, graph: Graph, act: str, page_id: str, mode: str
    ) -> None:
        campaign = make_campaign(
            graph, act, objective="OUTCOME_SALES", smart_promotion_type="AUTOMATED_SHOPPING_ADS"
        )
        make_adset(
            graph,
            act,
            campaign,
            billing_event="IMPRESSIONS",
            optimization_goal="OFFSITE_CONVERSIONS",
            promoted_object=PIXEL,
            existing_customer_budget_percentage=20,
        )
        path = f"{campaign}/copies" if mode == "copy" else campaign
        answer = graph.post(path, migrate_to_advantage_plus="true")
        self.assert_refused(answer, 4990002, "existing_customer_budget_percentage")
        assert (
            read(graph, campaign, "smart_promotion_type")["smart_promotion_type"] == "AUTOMATED_SHOPPING_ADS"
        )

    @pytest.mark.parametrize("mode", ["copy", "in_place"])
    def test_too_many_ads_block_migration(self, graph: Graph, act: str, page_id: str, mode: str) -> None:
        """ "more than 150 ads cannot be migrated" (cap configured to 2 here); deleted ads do not count."""
        asc = make_asc(graph, act, page_id, ads=3)
        path = f"{asc['campaign']}/copies" if mode == "copy" else asc["campaign"]
        self.assert_refused(
            graph.post(path, migrate_to_advantage_plus="true"), 4990003, "migrate_to_advantage_plus"
        )
        assert graph.delete(asc["ads"][0]).body == {"success": True}
        assert graph.post(path, migrate_to_advantage_plus="true").status == 200

    @pytest.mark.parametrize("mode", ["copy", "in_place"])
    def test_only_asc_and_aac_campaigns_migrate(self, graph: Graph, act: str, mode: str) -> None:
        campaign = make_campaign(graph, act, **SALES_BUDGET)
        path = f"{campaign}/copies" if mode == "copy" else campaign
        self.assert_refused(
            graph.post(path, migrate_to_advantage_plus="true"), 4990004, "migrate_to_advantage_plus"
        )

    def test_migrated_campaigns_are_not_copied_and_migrated_again(
        self, graph: Graph, act: str, page_id: str
    ) -> None:
        asc = make_asc(graph, act, page_id)
        assert graph.post(asc["campaign"], migrate_to_advantage_plus="true").body == {"success": True}
        answer = graph.post(f"{asc['campaign']}/copies", migrate_to_advantage_plus="true")
        self.assert_refused(answer, 4990004, "migrate_to_advantage_plus")

    @pytest.mark.parametrize(("state", "subcode"), [("ARCHIVED", 1885088), ("DELETED", 1487566)])
    def test_archived_or_deleted_campaigns_migrate_only_by_copy(
        self, graph: Graph, act: str, page_id: str, state: str, subcode: int
    ) -> None:
        asc = make_asc(graph, act, page_id)
        assert graph.post(asc["campaign"], status=state).body == {"success": True}
        answer = graph.post(asc["campaign"], migrate_to_advantage_plus="true")
        assert (answer.error["code"], answer.error["error_subcode"]) == (100, subcode)
        copied = graph.post(f"{asc['campaign']}/copies", migrate_to_advantage_plus="true")
        assert copied.status == 200, copied.body

    @pytest.mark.parametrize("kind", ["adset", "ad"])
    def test_migration_is_for_campaigns(self, graph: Graph, act: str, page_id: str, kind: str) -> None:
        asc = make_asc(graph, act, page_id)
        target = asc["adset"] if kind == "adset" else asc["ads"][0]
        for path in (target, f"{target}/copies"):
            answer = graph.post(path, migrate_to_advantage_plus="true")
            assert answer.status == 400 and answer.error["code"] == 100, answer.body
