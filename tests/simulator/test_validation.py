"""The simulator's documented validation rules, over real HTTP (see ``bulk_engine/simulator/validation/``).

Table-driven: each case builds what it needs, then sends a request that breaks exactly one rule (it must
get exactly the documented code, subcode and blamed field) and a near miss that must succeed. Below the
table: execution options, object_story_id reuse, inline creatives, and the messaging ad trees of the seeds
000 / 001 / 002 created end to end from the seeds' own example payloads.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from helpers import TARGETING, Answer, Graph, call, make_ad, make_adset, make_campaign, make_creative

from bulk_engine.simulator import GraphCore, SimulatorConfig, SimulatorThread, validation

PAGE = "2000000001"  # Instagram 3000000001 + WhatsApp
PAGE_2 = "2000000002"  # Instagram 3000000002 + WhatsApp
PAGE_NO_IG = "2000000003"  # WhatsApp only
PAGE_NO_WA = "2000000004"  # nothing connected
IG = "3000000001"
IG_2 = "3000000002"
FUTURE = "2030-01-01T00:00:00+0000"
PAST = "2020-01-01T00:00:00+0000"
ALL_THREE = "MESSAGING_INSTAGRAM_DIRECT_MESSENGER_WHATSAPP"
DOF_CTAS = [
    {
        "type": "MESSAGE_PAGE",
        "value": {"app_destination": "MESSENGER", "link": "https://fb.com/messenger_doc/"},
    },
    {
        "type": "WHATSAPP_MESSAGE",
        "value": {"app_destination": "WHATSAPP", "link": "https://api.whatsapp.com/send"},
    },
    {
        "type": "INSTAGRAM_MESSAGE",
        "value": {"app_destination": "INSTAGRAM_DIRECT", "link": "https://www.instagram.com"},
    },
]


@pytest.fixture
def graph_simulator_config() -> SimulatorConfig:
    return SimulatorConfig(
        page_ids=(PAGE, PAGE_2, PAGE_NO_IG, PAGE_NO_WA),
        instagram_actor_ids=(IG, IG_2),
        ad_review_s=3600,
    )


def _disconnect_pages(core: GraphCore) -> None:
    """Seeded Pages all have WhatsApp; PAGE_NO_WA loses it and PAGE_NO_IG has no Instagram account."""
    for page_id, key in (
        (PAGE_NO_WA, "whatsapp_number"),
        (PAGE_NO_WA, "instagram_business_account"),
        (PAGE_NO_IG, "instagram_business_account"),
    ):
        page = core.store.get(page_id)
        assert page is not None
        page.data[key] = None


EXAMPLE_HASHES = ("abc", "abc123", "Your_image_hash")  # the seeds' example payloads name these
EXAMPLE_VIDEO = "123"


def _seed_example_media(core: GraphCore) -> None:
    """Put the seed examples' made-up image hashes and video id into every account's libraries, so the
    examples pass the account-media rule (tested on its own with real uploads)."""
    for act in core.config.ad_account_ids:
        for image_hash in EXAMPLE_HASHES:
            core.store.add(
                "adimage",
                {"hash": image_hash, "name": image_hash, "status": "ACTIVE"},
                now=0.0,
                account_id=act,
                node_id=validation.image_node_id(act, image_hash),
            )
    core.store.add(
        "advideo",
        {"title": "example"},
        now=0.0,
        account_id=core.config.ad_account_ids[0],
        node_id=EXAMPLE_VIDEO,
    )


# --- the test environment -------------------------------------------------------------------------
@dataclass
class Req:
    path: str
    params: dict[str, Any]
    version: str = "v24.0"
    method: str = "POST"


class Env:
    """A simulator with one Page per connection shape, and builders for valid objects."""

    def __init__(self, sim: SimulatorThread) -> None:
        info = sim.info()
        self.sim = sim
        self.g = Graph(sim.url, info["access_token"])
        self.act, self.act_2 = info["ad_account_ids"][:2]
        sim.run(_disconnect_pages)
        sim.run(_seed_example_media)

    def send(self, req: Req) -> Answer:
        graph = Graph(self.g.base_url, self.g.token, req.version)
        return (
            graph.post(req.path, **req.params) if req.method == "POST" else graph.get(req.path, **req.params)
        )

    # valid parameter sets
    def campaign_params(self, **kw: Any) -> dict[str, Any]:
        return {
            "name": "C",
            "objective": "OUTCOME_TRAFFIC",
            "special_ad_categories": [],
            "status": "PAUSED",
            **kw,
        }

    def adset_params(self, campaign: str, **kw: Any) -> dict[str, Any]:
        params = {
            "name": "S",
            "campaign_id": campaign,
            "billing_event": "IMPRESSIONS",
            "optimization_goal": "LINK_CLICKS",
            "daily_budget": 1000,
            "targeting": TARGETING,
            "status": "PAUSED",
            **kw,
        }
        return {k: v for k, v in params.items() if v is not None}

    def creative_params(self, page: str = PAGE, **kw: Any) -> dict[str, Any]:
        spec = {"page_id": page, "link_data": {"link": "https://example.com", "message": "Hi"}}
        return {"name": "Cr", "object_story_spec": spec, **kw}

    def ad_params(self, adset: str, creative: str, **kw: Any) -> dict[str, Any]:
        return {
            "name": "A",
            "adset_id": adset,
            "creative": {"creative_id": creative},
            "status": "PAUSED",
            **kw,
        }

    # builders
    def campaign(self, act: str | None = None, version: str = "v24.0", **kw: Any) -> str:
        answer = Graph(self.g.base_url, self.g.token, version).post(
            f"{act or self.act}/campaigns", **self.campaign_params(**kw)
        )
        assert answer.status == 200, answer.body
        return str(answer.body["id"])

    def adset(self, campaign: str, act: str | None = None, **kw: Any) -> str:
        answer = self.g.post(f"{act or self.act}/adsets", **self.adset_params(campaign, **kw))
        assert answer.status == 200, answer.body
        return str(answer.body["id"])

    def creative(self, act: str | None = None, page: str = PAGE, **kw: Any) -> str:
        answer = self.g.post(f"{act or self.act}/adcreatives", **self.creative_params(page, **kw))
        assert answer.status == 200, answer.body
        return str(answer.body["id"])

    def ad(self, adset: str, creative: str, **kw: Any) -> str:
        return make_ad(self.g, self.act, adset, creative, **kw)

    def tree(self) -> tuple[str, str]:
        campaign = self.campaign()
        return self.adset(campaign), self.creative()

    def asc_campaign(self) -> str:
        return self.campaign(objective="OUTCOME_SALES", smart_promotion_type="AUTOMATED_SHOPPING_ADS")

    def messaging_adset(self, destination: str, page: str = PAGE, **kw: Any) -> dict[str, Any]:
        campaign = kw.pop("campaign", None) or self.campaign(
            objective=kw.pop("objective", "OUTCOME_ENGAGEMENT")
        )
        goal = kw.pop("optimization_goal", "CONVERSATIONS")
        return self.adset_params(
            campaign,
            destination_type=destination,
            optimization_goal=goal,
            promoted_object={"page_id": page},
            **kw,
        )

    def count(self, type_: str) -> int:
        return self.sim.run(lambda core: sum(1 for _ in core.store.nodes(type_)))


@pytest.fixture
def env(graph_simulator: SimulatorThread) -> Env:
    return Env(graph_simulator)


# --- the rule table -------------------------------------------------------------------------------
Build = Callable[[Env], tuple[Req, Req]]


@dataclass
class Case:
    rule: str
    subcode: int | None
    blame: list[list[str]]
    build: Build
    label: str = ""
    code: int = 100

    @property
    def id(self) -> str:
        return f"{self.rule}[{self.label}]" if self.label else self.rule


def _campaigns(
    env: Env, bad: dict[str, Any], good: dict[str, Any], version: str = "v24.0"
) -> tuple[Req, Req]:
    path = f"{env.act}/campaigns"
    return Req(path, bad, version), Req(path, good, version)


def _without(params: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k != key}


def c_exec_enum(env: Env) -> tuple[Req, Req]:
    base = env.campaign_params()
    return _campaigns(
        env, {**base, "execution_options": ["bogus"]}, {**base, "execution_options": ["validate_only"]}
    )


def c_exec_recommendations(env: Env) -> tuple[Req, Req]:
    base = env.campaign_params()
    return _campaigns(
        env,
        {**base, "execution_options": ["include_recommendations"]},
        {**base, "execution_options": ["validate_only", "include_recommendations"]},
    )


def c_exec_sync_review(env: Env) -> tuple[Req, Req]:
    adset, creative = env.tree()
    base = env.ad_params(adset, creative)
    path = f"{env.act}/ads"
    return (
        Req(path, {**base, "execution_options": ["synchronous_ad_review"]}),
        Req(path, {**base, "execution_options": ["validate_only", "synchronous_ad_review"]}),
    )


def c_create_status(env: Env) -> tuple[Req, Req]:
    base = env.campaign_params()
    return _campaigns(env, {**base, "status": "ARCHIVED"}, {**base, "status": "ACTIVE"})


def c_adset_create_status(env: Env) -> tuple[Req, Req]:
    base = env.adset_params(env.campaign())
    return Req(f"{env.act}/adsets", {**base, "status": "DELETED"}), Req(f"{env.act}/adsets", base)


def c_campaign_missing(key: str) -> Build:
    def build(env: Env) -> tuple[Req, Req]:
        base = env.campaign_params()
        return _campaigns(env, _without(base, key), base)

    return build


def c_campaign_value(key: str, bad: Any, good: Any, **extra: Any) -> Build:
    def build(env: Env) -> tuple[Req, Req]:
        base = env.campaign_params(**extra)
        return _campaigns(env, {**base, key: bad}, {**base, key: good})

    return build


def c_asc_v25(env: Env) -> tuple[Req, Req]:
    base = env.campaign_params(objective="OUTCOME_SALES", smart_promotion_type="AUTOMATED_SHOPPING_ADS")
    path = f"{env.act}/campaigns"
    return Req(path, base, "v25.0"), Req(path, base, "v24.0")


def c_aac_v25(env: Env) -> tuple[Req, Req]:
    base = env.campaign_params(objective="OUTCOME_APP_PROMOTION", smart_promotion_type="SMART_APP_PROMOTION")
    path = f"{env.act}/campaigns"
    return Req(path, base, "v25.0"), Req(path, base, "v24.0")


def c_guided_creation(env: Env) -> tuple[Req, Req]:
    base = env.campaign_params(objective="OUTCOME_SALES")
    return _campaigns(env, {**base, "smart_promotion_type": "GUIDED_CREATION"}, base)


def c_advantage_state(env: Env) -> tuple[Req, Req]:
    base = env.campaign_params(objective="OUTCOME_SALES")
    return _campaigns(env, {**base, "advantage_state": "ADVANTAGE_PLUS_SALES"}, base)


def c_asc(key: str, bad: Any, good: Any) -> Build:
    def build(env: Env) -> tuple[Req, Req]:
        base = env.campaign_params(objective="OUTCOME_SALES", smart_promotion_type="AUTOMATED_SHOPPING_ADS")
        return _campaigns(env, {**base, key: bad}, {**base, key: good})

    return build


def _adsets(env: Env, bad: dict[str, Any], good: dict[str, Any], version: str = "v24.0") -> tuple[Req, Req]:
    path = f"{env.act}/adsets"
    return Req(path, bad, version), Req(path, good, version)


def c_adset_value(key: str, bad: Any, good: Any, **extra: Any) -> Build:
    def build(env: Env) -> tuple[Req, Req]:
        base = env.adset_params(env.campaign(), **extra)
        return _adsets(env, {**base, key: bad}, {**base, key: good})

    return build


def c_adset_missing(key: str) -> Build:
    def build(env: Env) -> tuple[Req, Req]:
        base = env.adset_params(env.campaign())
        return _adsets(env, _without(base, key), base)

    return build


def c_adset_budget_update(env: Env) -> tuple[Req, Req]:
    adset = env.adset(env.campaign())
    return Req(adset, {"daily_budget": 50}), Req(adset, {"daily_budget": 150})


def c_campaign_budget_update(env: Env) -> tuple[Req, Req]:
    campaign = env.campaign(daily_budget=1000)
    return Req(campaign, {"daily_budget": 99}), Req(campaign, {"daily_budget": 100})


def c_campaign_stop_time(env: Env) -> tuple[Req, Req]:
    base = env.campaign_params()
    return _campaigns(env, {**base, "stop_time": PAST}, {**base, "stop_time": FUTURE})


def c_adset_other_account(env: Env) -> tuple[Req, Req]:
    foreign = env.campaign(act=env.act_2)
    base = env.adset_params(env.campaign())
    return _adsets(env, {**base, "campaign_id": foreign}, base)


def c_adset_deleted_campaign(env: Env) -> tuple[Req, Req]:
    gone = env.campaign()
    assert env.g.delete(gone).status == 200
    base = env.adset_params(env.campaign())
    return _adsets(env, {**base, "campaign_id": gone}, base)


def c_adset_archived_campaign(env: Env) -> tuple[Req, Req]:
    archived = env.campaign()
    assert env.g.post(archived, status="ARCHIVED").status == 200
    base = env.adset_params(env.campaign())
    return _adsets(env, {**base, "campaign_id": archived}, base)


def c_cbo_conflict(env: Env) -> tuple[Req, Req]:
    base = env.adset_params(env.campaign(daily_budget=5000))
    return _adsets(env, base, _without(base, "daily_budget"))


def c_adset_budget_cleared(env: Env) -> tuple[Req, Req]:
    adset = env.adset(env.campaign())  # its campaign has no budget: the ad set's own cannot be cleared
    return Req(adset, {"daily_budget": 0}), Req(adset, {"daily_budget": 2000})


def c_no_budget(env: Env) -> tuple[Req, Req]:
    base = env.adset_params(env.campaign())
    return _adsets(env, _without(base, "daily_budget"), base)


def c_lifetime_end(env: Env) -> tuple[Req, Req]:
    base = _without(
        env.adset_params(env.campaign(), start_time=FUTURE, lifetime_budget=50_000), "daily_budget"
    )
    return _adsets(env, base, {**base, "end_time": "2030-01-11T00:00:00+0000"})


def c_lifetime_too_low(env: Env) -> tuple[Req, Req]:
    base = _without(
        env.adset_params(env.campaign(), start_time=FUTURE, end_time="2030-01-11T00:00:00+0000"),
        "daily_budget",
    )
    return _adsets(env, {**base, "lifetime_budget": 999}, {**base, "lifetime_budget": 1000})


def c_daily_duration(env: Env) -> tuple[Req, Req]:
    base = env.adset_params(env.campaign(), start_time=FUTURE)
    return _adsets(
        env,
        {**base, "end_time": "2030-01-01T20:00:00+0000"},
        {**base, "end_time": "2030-01-02T00:00:01+0000"},
    )


def c_bid_required(env: Env) -> tuple[Req, Req]:
    base = env.adset_params(env.campaign(), bid_strategy="COST_CAP")
    return _adsets(env, base, {**base, "bid_amount": 200})


def c_bid_required_campaign(env: Env) -> tuple[Req, Req]:
    campaign = env.campaign(daily_budget=5000, bid_strategy="LOWEST_COST_WITH_BID_CAP")
    base = _without(env.adset_params(campaign), "daily_budget")
    return _adsets(env, base, {**base, "bid_amount": 200})


def c_bid_automatic(env: Env) -> tuple[Req, Req]:
    base = env.adset_params(env.campaign(), bid_amount=200)
    return _adsets(
        env,
        {**base, "bid_strategy": "LOWEST_COST_WITHOUT_CAP"},
        {**base, "bid_strategy": "LOWEST_COST_WITH_BID_CAP"},
    )


def c_roas(bad: dict[str, Any] | None, good: dict[str, Any]) -> Build:
    def build(env: Env) -> tuple[Req, Req]:
        base = env.adset_params(
            env.campaign(objective="OUTCOME_SALES"),
            bid_strategy="LOWEST_COST_WITH_MIN_ROAS",
            optimization_goal="VALUE",
        )
        bad_params = {**base, "bid_constraints": bad} if bad is not None else base
        return _adsets(env, bad_params, {**base, "bid_constraints": good})

    return build


def c_lead_page(env: Env) -> tuple[Req, Req]:
    base = env.adset_params(env.campaign(objective="OUTCOME_LEADS"), optimization_goal="LEAD_GENERATION")
    return _adsets(env, base, {**base, "promoted_object": {"page_id": PAGE}})


def c_spend_targets(env: Env) -> tuple[Req, Req]:
    bad = env.adset_params(env.campaign(), daily_spend_cap=500)
    good = _without(env.adset_params(env.campaign(daily_budget=5000), daily_spend_cap=500), "daily_budget")
    return _adsets(env, bad, good)


def c_asc_adset(key: str, bad: Any, good: Any) -> Build:
    def build(env: Env) -> tuple[Req, Req]:
        base = env.adset_params(env.asc_campaign(), optimization_goal="OFFSITE_CONVERSIONS")
        return _adsets(env, {**base, key: bad}, {**base, key: good})

    return build


def c_asc_one_adset(env: Env) -> tuple[Req, Req]:
    campaign = env.asc_campaign()
    env.adset(campaign, optimization_goal="OFFSITE_CONVERSIONS")
    return _adsets(
        env,
        env.adset_params(campaign, optimization_goal="OFFSITE_CONVERSIONS"),
        env.adset_params(env.asc_campaign(), optimization_goal="OFFSITE_CONVERSIONS"),
    )


def c_asc_regions(env: Env) -> tuple[Req, Req]:
    base = env.adset_params(env.asc_campaign(), optimization_goal="OFFSITE_CONVERSIONS")
    regions = [{"key": str(3800 + i)} for i in range(201)]
    return _adsets(
        env,
        {**base, "targeting": {"geo_locations": {"regions": regions}}},
        {**base, "targeting": {"geo_locations": {"regions": regions[:200]}}},
    )


def c_ecbp_deprecated(env: Env) -> tuple[Req, Req]:
    base = env.adset_params(env.asc_campaign(), optimization_goal="OFFSITE_CONVERSIONS")
    bad = {**base, "existing_customer_budget_percentage": 50}
    return Req(f"{env.act}/adsets", bad, "v25.0"), Req(f"{env.act}/adsets", bad, "v24.0")


def c_msg(destination: str, bad: dict[str, Any], good: dict[str, Any], page: str = PAGE) -> Build:
    def build(env: Env) -> tuple[Req, Req]:
        return _adsets(
            env, env.messaging_adset(destination, page, **bad), env.messaging_adset(destination, page, **good)
        )

    return build


def c_msg_pages(destination: str, bad_page: str, good_page: str) -> Build:
    def build(env: Env) -> tuple[Req, Req]:
        return _adsets(
            env, env.messaging_adset(destination, bad_page), env.messaging_adset(destination, good_page)
        )

    return build


def c_msg_promoted_page(env: Env) -> tuple[Req, Req]:
    good = env.messaging_adset(ALL_THREE)
    return _adsets(env, _without(good, "promoted_object"), good)


def c_msg_categories(env: Env) -> tuple[Req, Req]:
    bad = env.messaging_adset(
        ALL_THREE, campaign=env.campaign(objective="OUTCOME_ENGAGEMENT", special_ad_categories=["HOUSING"])
    )
    good = env.messaging_adset(
        ALL_THREE, campaign=env.campaign(objective="OUTCOME_ENGAGEMENT", special_ad_categories=["NONE"])
    )
    return _adsets(env, bad, good)


def _creatives(env: Env, bad: dict[str, Any], good: dict[str, Any]) -> tuple[Req, Req]:
    path = f"{env.act}/adcreatives"
    return Req(path, bad), Req(path, good)


def c_creative(bad: Callable[[Env], dict[str, Any]], good: Callable[[Env], dict[str, Any]]) -> Build:
    def build(env: Env) -> tuple[Req, Req]:
        return _creatives(env, bad(env), good(env))

    return build


def _with_welcome(env: Env, message: Any) -> dict[str, Any]:
    spec = {"page_id": PAGE, "link_data": {"link": "https://example.com", "page_welcome_message": message}}
    return {"name": "Cr", "object_story_spec": spec}


def _ice_breakers(
    title: str = "Can I see a menu?", response: str = "Sure", text: str = "Hi!"
) -> dict[str, Any]:
    return {
        "type": "VISUAL_EDITOR",
        "version": 2,
        "landing_screen_type": "welcome_message",
        "media_type": "text",
        "text_format": {
            "customer_action_type": "ice_breakers",
            "message": {
                "ice_breakers": [{"title": title, "response": response}],
                "quick_replies": [],
                "text": text,
            },
        },
        "user_edit": False,
        "surface": "visual_editor_new",
    }


def _cta_creative(kind: str, app: str) -> Callable[[Env], dict[str, Any]]:
    def params(env: Env) -> dict[str, Any]:
        cta = {"type": kind, "value": {"app_destination": app}}
        spec = {
            "page_id": PAGE,
            "instagram_actor_id": IG,
            "link_data": {"message": "Hi", "call_to_action": cta},
        }
        return {"name": "Cr", "object_story_spec": spec}

    return params


def _feed(**feed: Any) -> Callable[[Env], dict[str, Any]]:
    return lambda env: env.creative_params(asset_feed_spec=feed)


def c_creative_update(env: Env) -> tuple[Req, Req]:
    creative = env.creative()
    spec = {"page_id": PAGE, "link_data": {"link": "https://example.org"}}
    return Req(creative, {"object_story_spec": spec}), Req(creative, {"name": "renamed"})


def _ads(env: Env, bad: dict[str, Any], good: dict[str, Any]) -> tuple[Req, Req]:
    path = f"{env.act}/ads"
    return Req(path, bad), Req(path, good)


def c_ad_missing(key: str) -> Build:
    def build(env: Env) -> tuple[Req, Req]:
        base = env.ad_params(*env.tree())
        return _ads(env, _without(base, key), base)

    return build


def c_ad_foreign_adset(env: Env) -> tuple[Req, Req]:
    foreign = env.adset(env.campaign(act=env.act_2), act=env.act_2)
    adset, creative = env.tree()
    base = env.ad_params(adset, creative)
    return _ads(env, {**base, "adset_id": foreign}, base)


def c_ad_dead_adset(status: str) -> Build:
    def build(env: Env) -> tuple[Req, Req]:
        adset, creative = env.tree()
        dead = env.adset(env.campaign())
        assert env.g.post(dead, status=status).status == 200
        base = env.ad_params(adset, creative)
        return _ads(env, {**base, "adset_id": dead}, base)

    return build


def c_ad_deleted_campaign(env: Env) -> tuple[Req, Req]:
    adset, creative = env.tree()
    campaign = env.campaign()
    orphan = env.adset(campaign)
    assert env.g.delete(campaign).status == 200
    base = env.ad_params(adset, creative)
    return _ads(env, {**base, "adset_id": orphan}, base)


def c_ad_foreign_creative(env: Env) -> tuple[Req, Req]:
    foreign = env.creative(act=env.act_2)
    adset, creative = env.tree()
    base = env.ad_params(adset, creative)
    return _ads(env, {**base, "creative": {"creative_id": foreign}}, base)


def c_ad_bid_amount(env: Env) -> tuple[Req, Req]:
    base = env.ad_params(*env.tree())
    return _ads(env, {**base, "bid_amount": 100}, base)


def c_ad_schedule(env: Env) -> tuple[Req, Req]:
    creative = env.creative()
    traffic = env.adset(env.campaign())
    sales = env.adset(env.campaign(objective="OUTCOME_SALES"))
    return _ads(
        env,
        env.ad_params(traffic, creative, ad_schedule_start_time=FUTURE),
        env.ad_params(sales, creative, ad_schedule_start_time=FUTURE),
    )


def c_ad_multi_ctas(env: Env) -> tuple[Req, Req]:
    answer = env.g.post(f"{env.act}/adsets", **env.messaging_adset(ALL_THREE))
    assert answer.status == 200, answer.body
    adset = str(answer.body["id"])
    two = env.creative(
        asset_feed_spec={"optimization_type": "DOF_MESSAGING_DESTINATION", "call_to_actions": DOF_CTAS[:2]}
    )
    three = env.creative(
        asset_feed_spec={"optimization_type": "DOF_MESSAGING_DESTINATION", "call_to_actions": DOF_CTAS}
    )
    return _ads(env, env.ad_params(adset, two), env.ad_params(adset, three))


def c_ad_ig_cta(env: Env) -> tuple[Req, Req]:
    answer = env.g.post(f"{env.act}/adsets", **env.messaging_adset("INSTAGRAM_DIRECT"))
    assert answer.status == 200, answer.body
    adset = str(answer.body["id"])
    messenger = env.g.post(f"{env.act}/adcreatives", **_cta_creative("MESSAGE_PAGE", "MESSENGER")(env)).body[
        "id"
    ]
    instagram = env.g.post(
        f"{env.act}/adcreatives", **_cta_creative("MESSAGE_PAGE", "INSTAGRAM_DIRECT")(env)
    ).body["id"]
    return _ads(env, env.ad_params(adset, messenger), env.ad_params(adset, instagram))


def c_ad_page_mismatch(env: Env) -> tuple[Req, Req]:
    answer = env.g.post(f"{env.act}/adsets", **env.messaging_adset("MESSENGER", objective="OUTCOME_TRAFFIC"))
    assert answer.status == 200, answer.body
    adset = str(answer.body["id"])
    cta = {"type": "LEARN_MORE", "value": {"app_destination": "MESSENGER"}}
    other = env.creative(
        page=PAGE_2, object_story_spec={"page_id": PAGE_2, "link_data": {"call_to_action": cta}}
    )
    same = env.creative(object_story_spec={"page_id": PAGE, "link_data": {"call_to_action": cta}})
    return _ads(env, env.ad_params(adset, other), env.ad_params(adset, same))


def c_ad_website_url(env: Env) -> tuple[Req, Req]:
    adset = env.adset(env.campaign(), destination_type="WEBSITE")
    photo = env.creative(object_story_spec={"page_id": PAGE, "photo_data": {"image_hash": "abc"}})
    link = env.creative()
    return _ads(env, env.ad_params(adset, photo), env.ad_params(adset, link))


def c_image_hash_unknown(env: Env) -> tuple[Req, Req]:
    uploaded = env.g.post(
        f"{env.act}/adimages",
        bytes="iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGNgYGQCAAAIAAQ24LCmAAAAAElFTkSuQmCC",
        name="hero",
    ).body["images"]["hero"]["hash"]
    elsewhere = env.g.post(
        f"{env.act_2}/adimages",
        bytes="iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGNg5+AEAAAyABmP5B0GAAAAAElFTkSuQmCC",
        name="x",
    ).body["images"]["x"]["hash"]

    def spec(image_hash: str) -> dict[str, Any]:
        link = {"link": "https://example.com", "image_hash": image_hash}
        return {"page_id": PAGE, "link_data": link}

    # the other account's image: same rule (libraries are per account)
    return (
        Req(f"{env.act}/adcreatives", env.creative_params(object_story_spec=spec(elsewhere))),
        Req(f"{env.act}/adcreatives", env.creative_params(object_story_spec=spec(uploaded))),
    )


def c_video_unknown(env: Env) -> tuple[Req, Req]:
    mine = env.g.post(f"{env.act}/advideos", file_url="https://example.com/v.mp4").body["id"]
    theirs = env.g.post(f"{env.act_2}/advideos", file_url="https://example.com/v.mp4").body["id"]

    def spec(video: str) -> dict[str, Any]:
        return {"page_id": PAGE, "video_data": {"video_id": video, "image_url": "https://example.com/t.jpg"}}

    return (
        Req(f"{env.act}/adcreatives", env.creative_params(object_story_spec=spec(theirs))),
        Req(f"{env.act}/adcreatives", env.creative_params(object_story_spec=spec(mine))),
    )


def c_ad_adset_ended(env: Env) -> tuple[Req, Req]:
    now = env.sim.run(lambda core: core.clock.now())
    adset = env.adset(env.campaign(), end_time=int(now + 3 * 86_400))
    ad = env.ad(adset, env.creative())
    env.sim.run(lambda core: core.clock.advance(4 * 86_400))
    return Req(ad, {"conversion_domain": "example.com"}), Req(ad, {"name": "renamed"})


CASES: list[Case] = [
    Case("exec.options.enum", None, [["execution_options"]], c_exec_enum),
    Case("exec.recommendations.alone", None, [["execution_options"]], c_exec_recommendations),
    Case("exec.sync_review.alone", None, [["execution_options"]], c_exec_sync_review),
    Case("create.status", None, [["status"]], c_create_status, "campaign"),
    Case("create.status", None, [["status"]], c_adset_create_status, "adset"),
    Case("campaign.name.required", None, [["name"]], c_campaign_missing("name")),
    Case("campaign.objective.required", None, [["objective"]], c_campaign_missing("objective")),
    Case(
        "campaign.objective.enum",
        None,
        [["objective"]],
        c_campaign_value("objective", "LINK_CLICK", "LINK_CLICKS"),
    ),
    Case(
        "campaign.sac.required",
        None,
        [["special_ad_categories"]],
        c_campaign_missing("special_ad_categories"),
    ),
    Case(
        "campaign.sac.enum",
        None,
        [["special_ad_categories"]],
        c_campaign_value("special_ad_categories", ["HOUSNG"], ["HOUSING"]),
    ),
    Case(
        "campaign.buying_type.enum",
        None,
        [["buying_type"]],
        c_campaign_value("buying_type", "AUCTIONS", "AUCTION"),
    ),
    Case(
        "bid_strategy.enum",
        None,
        [["bid_strategy"]],
        c_campaign_value("bid_strategy", "LOWEST_COST", "LOWEST_COST_WITHOUT_CAP", daily_budget=5000),
    ),
    Case("campaign.spend_cap.min", 2446307, [["spend_cap"]], c_campaign_value("spend_cap", 9999, 10000)),
    Case(
        "budget.too_low", 1885272, [["daily_budget"]], c_campaign_value("daily_budget", 99, 100), "campaign"
    ),
    Case("budget.too_low", 1885272, [["daily_budget"]], c_adset_value("daily_budget", 99, 100), "adset"),
    Case("budget.too_low", 1885272, [["lifetime_budget"]], c_lifetime_too_low, "lifetime"),
    Case("budget.too_low.update", 1885650, [["daily_budget"]], c_adset_budget_update, "adset"),
    Case("budget.too_low.update", 1885650, [["daily_budget"]], c_campaign_budget_update, "campaign"),
    Case("time.end_in_past", 1487033, [["end_time"]], c_adset_value("end_time", PAST, FUTURE), "adset"),
    Case("time.end_in_past", 1487033, [["stop_time"]], c_campaign_stop_time, "campaign"),
    Case(
        "time.invalid",
        None,
        [["end_time"]],
        c_adset_value("end_time", "next tuesday", "2030-01-01 00:00:00 PDT"),
    ),
    Case("asc.removed_v25", None, [["smart_promotion_type"]], c_asc_v25, "ASC"),
    Case("asc.removed_v25", None, [["smart_promotion_type"]], c_aac_v25, "AAC"),
    Case("advantage.read_only", None, [["smart_promotion_type"]], c_guided_creation, "guided"),
    Case("advantage.read_only", None, [["advantage_state"]], c_advantage_state, "state"),
    Case("asc.objective", None, [["objective"]], c_asc("objective", "OUTCOME_TRAFFIC", "OUTCOME_SALES")),
    Case("asc.buying_type", None, [["buying_type"]], c_asc("buying_type", "RESERVED", "AUCTION")),
    Case("adset.name.required", None, [["name"]], c_adset_missing("name")),
    Case("adset.name.length", None, [["name"]], c_adset_value("name", "n" * 401, "n" * 400)),
    Case("adset.campaign.required", None, [["campaign_id"]], c_adset_missing("campaign_id")),
    Case("adset.campaign.unknown", None, [["campaign_id"]], c_adset_other_account),
    Case("adset.campaign.not_live", None, [["campaign_id"]], c_adset_deleted_campaign, "deleted"),
    Case("adset.campaign.not_live", None, [["campaign_id"]], c_adset_archived_campaign, "archived"),
    Case("adset.billing_event.required", None, [["billing_event"]], c_adset_missing("billing_event")),
    Case(
        "adset.billing_event.enum",
        None,
        [["billing_event"]],
        c_adset_value("billing_event", "IMPRESSION", "IMPRESSIONS"),
    ),
    Case(
        "adset.optimization_goal.enum",
        None,
        [["optimization_goal"]],
        c_adset_value("optimization_goal", "LINK_CLICK", "LINK_CLICKS"),
    ),
    Case(
        "adset.destination_type.enum",
        None,
        [["destination_type"]],
        c_adset_value("destination_type", "WEBSITES", "WEBSITE"),
    ),
    Case(
        "adset.app_install_billing",
        None,
        [["billing_event"]],
        c_adset_value("billing_event", "APP_INSTALLS", "IMPRESSIONS", optimization_goal="APP_INSTALLS"),
    ),
    Case("adset.targeting.required", None, [["targeting"]], c_adset_missing("targeting")),
    Case(
        "adset.targeting.geo",
        None,
        [["targeting", "geo_locations"]],
        c_adset_value("targeting", {"age_min": 18}, {"geo_locations": {"regions": [{"key": "3847"}]}}),
    ),
    Case("budget.campaign_vs_adset", 1885621, [["daily_budget"]], c_cbo_conflict, "adset"),
    Case("adset.budget.required", None, [["daily_budget"]], c_adset_budget_cleared, "ad set update"),
    Case("adset.budget.required", None, [["daily_budget"]], c_no_budget),
    Case("adset.lifetime.end_time", None, [["end_time"]], c_lifetime_end),
    Case("adset.daily.duration", None, [["daily_budget"]], c_daily_duration),
    Case("adset.bid_amount.required", None, [["bid_amount"]], c_bid_required, "ad set strategy"),
    Case("adset.bid_amount.required", None, [["bid_amount"]], c_bid_required_campaign, "campaign strategy"),
    Case("adset.bid.automatic", 1885204, [["bid_amount"]], c_bid_automatic),
    Case("adset.bid_amount.min", None, [["bid_amount"]], c_adset_value("bid_amount", 1, 2), "IMPRESSIONS"),
    Case(
        "adset.bid_amount.min",
        None,
        [["bid_amount"]],
        c_adset_value("bid_amount", 0, 1, billing_event="LINK_CLICKS"),
        "LINK_CLICKS",
    ),
    Case(
        "adset.roas_floor.range",
        None,
        [["bid_constraints", "roas_average_floor"]],
        c_roas({"roas_average_floor": 99}, {"roas_average_floor": 100}),
        "low",
    ),
    Case(
        "adset.roas_floor.range",
        None,
        [["bid_constraints", "roas_average_floor"]],
        c_roas({"roas_average_floor": 10_000_001}, {"roas_average_floor": 10_000_000}),
        "high",
    ),
    Case(
        "adset.roas_floor.required",
        None,
        [["bid_constraints", "roas_average_floor"]],
        c_roas(None, {"roas_average_floor": 1000}),
    ),
    Case("adset.lead_page", None, [["promoted_object", "page_id"]], c_lead_page),
    Case("adset.spend_targets", None, [["daily_spend_cap"]], c_spend_targets),
    Case(
        "adset.frequency_control",
        None,
        [["frequency_control_specs"]],
        c_adset_value(
            "optimization_goal",
            "LINK_CLICKS",
            "REACH",
            frequency_control_specs=[{"event": "IMPRESSIONS", "interval_days": 7, "max_frequency": 2}],
        ),
    ),
    Case("asc.one_adset", None, [["campaign_id"]], c_asc_one_adset),
    Case(
        "asc.billing_event",
        None,
        [["billing_event"]],
        c_asc_adset("billing_event", "LINK_CLICKS", "IMPRESSIONS"),
    ),
    Case(
        "asc.targeting",
        None,
        [["targeting", "age_min"]],
        c_asc_adset("targeting", {**TARGETING, "age_min": 25}, TARGETING),
        "geo only",
    ),
    Case("asc.targeting", None, [["targeting", "geo_locations", "regions"]], c_asc_regions, "regions"),
    Case(
        "asc.ecbp.range",
        None,
        [["existing_customer_budget_percentage"]],
        c_asc_adset("existing_customer_budget_percentage", 101, 100),
    ),
    Case("asc.ecbp.deprecated", None, [["existing_customer_budget_percentage"]], c_ecbp_deprecated),
    Case(
        "msg.objective",
        2446509,
        [["destination_type"]],
        c_msg("INSTAGRAM_DIRECT", {"objective": "OUTCOME_AWARENESS"}, {"objective": "OUTCOME_ENGAGEMENT"}),
        "IG direct",
    ),
    Case(
        "msg.objective",
        2446509,
        [["destination_type"]],
        c_msg(ALL_THREE, {"objective": "OUTCOME_LEADS"}, {"objective": "OUTCOME_SALES"}),
        "multidestination",
    ),
    Case(
        "msg.objective",
        2446509,
        [["destination_type"]],
        c_msg(
            "MESSENGER",
            {"objective": "OUTCOME_APP_PROMOTION", "optimization_goal": "LEAD_GENERATION"},
            {"objective": "OUTCOME_LEADS", "optimization_goal": "LEAD_GENERATION"},
        ),
        "Messenger leads",
    ),
    Case(
        "msg.billing_event",
        None,
        [["billing_event"]],
        c_msg(ALL_THREE, {"billing_event": "LINK_CLICKS"}, {"billing_event": "IMPRESSIONS"}),
    ),
    Case(
        "msg.optimization_goal",
        None,
        [["optimization_goal"]],
        c_msg(ALL_THREE, {"optimization_goal": "LINK_CLICKS"}, {"optimization_goal": "CONVERSATIONS"}),
        "multidestination",
    ),
    Case(
        "msg.optimization_goal",
        None,
        [["optimization_goal"]],
        c_msg("INSTAGRAM_DIRECT", {"optimization_goal": "REACH"}, {"optimization_goal": "LINK_CLICKS"}),
        "IG engagement",
    ),
    Case(
        "msg.optimization_goal",
        None,
        [["optimization_goal"]],
        c_msg(
            "INSTAGRAM_DIRECT",
            {"objective": "OUTCOME_SALES", "optimization_goal": "LANDING_PAGE_VIEWS"},
            {"objective": "OUTCOME_SALES", "optimization_goal": "OFFSITE_CONVERSIONS"},
        ),
        "IG sales",
    ),
    Case(
        "msg.optimization_goal",
        None,
        [["optimization_goal"]],
        c_msg(
            "MESSENGER",
            {"objective": "OUTCOME_LEADS", "optimization_goal": "CONVERSATIONS"},
            {"objective": "OUTCOME_LEADS", "optimization_goal": "QUALITY_LEAD"},
        ),
        "Messenger leads",
    ),
    Case("msg.promoted_page", None, [["promoted_object", "page_id"]], c_msg_promoted_page),
    Case("msg.special_ad_categories", None, [["special_ad_categories"]], c_msg_categories),
    Case(
        "msg.whatsapp_number",
        2446880,
        [["promoted_object", "page_id"]],
        c_msg_pages("MESSAGING_MESSENGER_WHATSAPP", PAGE_NO_WA, PAGE_NO_IG),
    ),
    Case(
        "msg.instagram_account",
        None,
        [["promoted_object", "page_id"]],
        c_msg_pages("INSTAGRAM_DIRECT", PAGE_NO_IG, PAGE_2),
    ),
    Case(
        "creative.spec.required",
        None,
        [["object_story_spec"]],
        c_creative(lambda e: {"name": "Cr"}, lambda e: {"name": "Cr", "object_story_id": f"{PAGE}_1"}),
    ),
    Case(
        "creative.story_spec",
        None,
        [["object_story_spec", "page_id"]],
        c_creative(
            lambda e: {"object_story_spec": {"link_data": {"link": "https://example.com"}}},
            lambda e: {"object_story_spec": {"page_id": PAGE, "link_data": {"link": "https://example.com"}}},
        ),
        "page_id",
    ),
    Case(
        "creative.story_spec",
        None,
        [["object_story_spec"]],
        c_creative(
            lambda e: {"object_story_spec": {"page_id": PAGE, "instagram_user_id": IG}},
            lambda e: {
                "object_story_spec": {"page_id": PAGE, "instagram_user_id": IG},
                "asset_feed_spec": {
                    "bodies": [{"text": "a"}],
                    "link_urls": [{"website_url": "https://example.com"}],
                },
            },
        ),
        "*_data",
    ),
    Case(
        "creative.story_id",
        None,
        [["object_story_id"]],
        c_creative(lambda e: {"object_story_id": "12345"}, lambda e: {"object_story_id": "12345_678"}),
    ),
    Case(
        "creative.dof_destinations",
        None,
        [["asset_feed_spec", "call_to_actions"]],
        c_creative(
            _feed(
                optimization_type="DOF_MESSAGING_DESTINATION",
                call_to_actions=[{"type": "WHATSAPP_MESSAGE", "value": {"app_destination": "MESSENGER"}}],
            ),
            _feed(optimization_type="DOF_MESSAGING_DESTINATION", call_to_actions=DOF_CTAS),
        ),
        "pair",
    ),
    Case(
        "creative.dof_destinations",
        None,
        [["asset_feed_spec", "call_to_actions"]],
        c_creative(
            _feed(optimization_type="DOF_MESSAGING_DESTINATION"),
            _feed(optimization_type="DOF_MESSAGING_DESTINATION", call_to_actions=DOF_CTAS[:1]),
        ),
        "missing",
    ),
    Case(
        "creative.cta_destination",
        None,
        [["object_story_spec", "link_data", "call_to_action", "value", "app_destination"]],
        c_creative(
            _cta_creative("INSTAGRAM_MESSAGE", "MESSENGER"),
            _cta_creative("INSTAGRAM_MESSAGE", "INSTAGRAM_DIRECT"),
        ),
    ),
    Case(
        "creative.icebreaker.title",
        None,
        [["object_story_spec", "link_data", "page_welcome_message"]],
        c_creative(
            lambda e: _with_welcome(e, _ice_breakers(title="t" * 81)),
            lambda e: _with_welcome(e, _ice_breakers(title="t" * 80)),
        ),
    ),
    Case(
        "creative.icebreaker.response",
        None,
        [["object_story_spec", "link_data", "page_welcome_message"]],
        c_creative(  # a JSON-encoded string, as S001 sends it
            lambda e: _with_welcome(e, json.dumps(_ice_breakers(response="r" * 301))),
            lambda e: _with_welcome(e, json.dumps(_ice_breakers(response="r" * 300))),
        ),
    ),
    Case(
        "creative.welcome.text",
        None,
        [["object_story_spec", "link_data", "page_welcome_message"]],
        c_creative(
            lambda e: _with_welcome(e, _ice_breakers(text="x" * 301)),
            lambda e: _with_welcome(e, _ice_breakers(text="x" * 300)),
        ),
        "object",
    ),
    Case(
        "creative.welcome.text",
        None,
        [["page_welcome_message"]],
        c_creative(
            lambda e: e.creative_params(page_welcome_message="x" * 301),
            lambda e: e.creative_params(page_welcome_message="x" * 300),
        ),
        "plain text",
    ),
    Case(
        "creative.instagram_ids",
        2238055,
        [["instagram_actor_id"]],
        c_creative(
            lambda e: {
                "object_id": PAGE,
                "instagram_user_id": IG,
                "instagram_actor_id": IG,
                "source_instagram_media_id": "9",
            },
            lambda e: {"object_id": PAGE, "instagram_user_id": IG, "source_instagram_media_id": "9"},
        ),
        "user+actor",
    ),
    Case(
        "creative.instagram_ids",
        2238055,
        [["object_story_spec", "source_instagram_media_id"]],
        c_creative(
            lambda e: e.creative_params(
                object_story_spec={
                    "page_id": PAGE,
                    "instagram_story_id": "7",
                    "source_instagram_media_id": "9",
                    "link_data": {},
                }
            ),
            lambda e: e.creative_params(
                object_story_spec={"page_id": PAGE, "instagram_story_id": "7", "link_data": {}}
            ),
        ),
        "story+media",
    ),
    Case(
        "creative.instagram_access",
        1815199,
        [["object_story_spec", "instagram_actor_id"]],
        c_creative(
            lambda e: e.creative_params(
                object_story_spec={"page_id": PAGE, "instagram_actor_id": "3999999999", "link_data": {}}
            ),
            lambda e: e.creative_params(
                object_story_spec={"page_id": PAGE, "instagram_actor_id": IG_2, "link_data": {}}
            ),
        ),
    ),
    Case(
        "creative.asset_feed.unique",
        1815629,
        [["asset_feed_spec", "bodies"]],
        c_creative(
            _feed(bodies=[{"text": "a"}, {"text": "a"}]),
            _feed(bodies=[{"text": "a"}, {"text": "b"}]),
        ),
    ),
    Case(
        "creative.asset_feed.limits",
        None,
        [["asset_feed_spec", "bodies"]],
        c_creative(
            _feed(bodies=[{"text": str(i)} for i in range(6)]),
            _feed(bodies=[{"text": str(i)} for i in range(5)]),
        ),
        "count",
    ),
    Case(
        "creative.asset_feed.limits",
        None,
        [["asset_feed_spec", "titles"]],
        c_creative(_feed(titles=[{"text": "t" * 256}]), _feed(titles=[{"text": "t" * 255}])),
        "length",
    ),
    Case("creative.immutable", None, [["object_story_spec"]], c_creative_update),
    Case("ad.name.required", None, [["name"]], c_ad_missing("name")),
    Case("ad.adset.required", None, [["adset_id"]], c_ad_missing("adset_id")),
    Case("ad.adset.unknown", None, [["adset_id"]], c_ad_foreign_adset),
    Case("ad.adset.not_live", None, [["adset_id"]], c_ad_dead_adset("ARCHIVED"), "archived ad set"),
    Case("ad.adset.not_live", None, [["adset_id"]], c_ad_dead_adset("DELETED"), "deleted ad set"),
    Case("ad.adset.not_live", None, [["adset_id"]], c_ad_deleted_campaign, "deleted campaign"),
    Case("ad.creative.required", None, [["creative"]], c_ad_missing("creative")),
    Case("ad.creative.unknown", None, [["creative", "creative_id"]], c_ad_foreign_creative),
    Case("ad.bid_amount", None, [["bid_amount"]], c_ad_bid_amount),
    Case("ad.schedule", None, [["ad_schedule_start_time"]], c_ad_schedule),
    Case(
        "msg.creative_destination",
        None,
        [["creative", "asset_feed_spec", "call_to_actions"]],
        c_ad_multi_ctas,
        "multidestination",
    ),
    Case("msg.creative_destination", None, [["creative", "call_to_action"]], c_ad_ig_cta, "IG direct"),
    Case("ad.page_mismatch", 1885029, [["creative", "object_story_spec", "page_id"]], c_ad_page_mismatch),
    Case(
        "ad.website_url", 2446383, [["creative", "object_story_spec", "link_data", "link"]], c_ad_website_url
    ),
    Case("ad.adset_ended", 1487007, [["conversion_domain"]], c_ad_adset_ended),
    Case(
        "creative.image_hash.unknown",
        None,
        [["object_story_spec", "link_data", "image_hash"]],
        c_image_hash_unknown,
    ),
    Case("creative.video.unknown", None, [["object_story_spec", "video_data", "video_id"]], c_video_unknown),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule(env: Env, case: Case) -> None:
    bad, good = case.build(env)
    answer = env.send(bad)
    assert answer.status == 400, answer.body
    error = answer.error
    assert (error["code"], error.get("error_subcode")) == (case.code, case.subcode), error
    assert error["error_data"]["blame_field_specs"] == case.blame, error
    assert error["error_user_title"] == validation.RULES[case.rule].title  # the intended rule answered
    assert error["error_user_msg"] and error["message"].startswith(f"(#{case.code})")
    answer = env.send(good)
    assert answer.status == 200, answer.body
    assert answer.body.get("id") or answer.body.get("success") is True


def test_every_rule_is_documented_and_tested() -> None:
    doc = validation.__doc__ or ""
    tested = {c.rule for c in CASES}
    assert len(validation.RULES) >= 35
    assert set(validation.RULES) == tested
    for rule, spec in validation.RULES.items():
        assert f"\n{rule} " in doc, rule
        assert spec.code == 100
    assert len({c.id for c in CASES}) == len(CASES)
    assert len({spec.title for spec in validation.RULES.values()}) == len(validation.RULES)


# --- compatibility: plain trees keep working ------------------------------------------------------
def test_plain_link_ad_tree_with_campaign_or_adset_budget(env: Env) -> None:
    cbo = make_campaign(env.g, env.act, daily_budget=5000)
    answer = env.g.post(f"{env.act}/adsets", **_without(env.adset_params(cbo), "daily_budget"))
    assert answer.status == 200, answer.body
    adset = str(answer.body["id"])
    make_ad(env.g, env.act, adset, make_creative(env.g, env.act, PAGE))
    plain = make_campaign(env.g, env.act)
    adset_2 = make_adset(env.g, env.act, plain)
    make_ad(env.g, env.act, adset_2, make_creative(env.g, env.act, PAGE_2))
    read = env.g.get(adset, fields="bid_strategy,daily_budget").body
    assert read == {"id": adset}  # the campaign holds the budget and the strategy
    assert env.g.get(cbo, fields="bid_strategy").body["bid_strategy"] == "LOWEST_COST_WITHOUT_CAP"
    assert env.g.get(adset_2, fields="bid_strategy").body["bid_strategy"] == "LOWEST_COST_WITHOUT_CAP"


def test_bid_amount_alone_sets_the_bid_cap_strategy(env: Env) -> None:
    adset = env.adset(env.campaign(), bid_amount=150)
    assert env.g.get(adset, fields="bid_strategy,bid_amount").body == {
        "id": adset,
        "bid_strategy": "LOWEST_COST_WITH_BID_CAP",
        "bid_amount": "150",
    }


# --- execution options ----------------------------------------------------------------------------
def test_validate_only_checks_without_storing(env: Env) -> None:
    campaign = env.campaign()
    adset = env.adset(campaign)
    creative = env.creative()
    before = env.sim.run(lambda core: len(core.store))
    requests = [
        (f"{env.act}/campaigns", env.campaign_params()),
        (f"{env.act}/adsets", env.adset_params(campaign)),
        (f"{env.act}/adcreatives", env.creative_params()),
        (f"{env.act}/ads", env.ad_params(adset, creative)),
        (
            f"{env.act}/ads",
            {**env.ad_params(adset, creative), "creative": {"creative": env.creative_params()}},
        ),
        (adset, {"name": "renamed", "daily_budget": 2000}),
    ]
    for path, params in requests:
        answer = env.g.post(path, **params, execution_options=["validate_only"])
        assert (answer.status, answer.body) == (200, {"success": True}), (path, answer.body)
    assert env.sim.run(lambda core: len(core.store)) == before
    assert env.g.get(adset, fields="name,daily_budget").body == {
        "id": adset,
        "name": "S",
        "daily_budget": "1000",
    }
    bad = env.g.post(
        f"{env.act}/adsets",
        **env.adset_params(campaign, daily_budget=10),
        execution_options=["validate_only"],
    )
    assert bad.error["error_subcode"] == 1885272  # validate_only still answers the rule's error


def test_creatives_only_take_validate_only(env: Env) -> None:
    answer = env.g.post(
        f"{env.act}/adcreatives",
        **env.creative_params(),
        execution_options=["validate_only", "include_recommendations"],
    )
    assert answer.error["error_data"]["blame_field_specs"] == [["execution_options"]]


# --- creatives: reuse and inline ------------------------------------------------------------------
def test_object_story_id_reuse_returns_the_existing_creative(env: Env) -> None:
    first = env.g.post(f"{env.act}/adcreatives", name="one", object_story_id=f"{PAGE}_111").body["id"]
    again = env.g.post(f"{env.act}/adcreatives", name="two", object_story_id=f"{PAGE}_111").body["id"]
    other = env.g.post(f"{env.act}/adcreatives", name="three", object_story_id=f"{PAGE}_222").body["id"]
    elsewhere = env.g.post(f"{env.act_2}/adcreatives", name="four", object_story_id=f"{PAGE}_111").body["id"]
    assert first == again
    assert len({first, other, elsewhere}) == 3
    assert env.g.get(first, fields="name").body["name"] == "one"
    assert env.g.delete(first).status == 200
    fresh = env.g.post(f"{env.act}/adcreatives", name="five", object_story_id=f"{PAGE}_111").body["id"]
    assert fresh != first


def test_inline_creative_spec_creates_the_creative(env: Env) -> None:
    adset, _ = env.tree()
    creatives = env.count("adcreative")
    for shape in ({"creative": env.creative_params()}, env.creative_params()):
        answer = env.g.post(f"{env.act}/ads", **{**env.ad_params(adset, "x"), "creative": shape})
        assert answer.status == 200, answer.body
        creative_id = env.g.get(answer.body["id"], fields="creative").body["creative"]["id"]
        read = env.g.get(creative_id, fields="name,object_story_spec,account_id").body
        assert read["object_story_spec"]["page_id"] == PAGE
        assert read["account_id"] == env.act.removeprefix("act_")
    assert env.count("adcreative") == creatives + 2
    story = {"creative": {"name": "post", "object_story_id": f"{PAGE}_333"}}
    ids = {
        env.g.get(
            env.g.post(f"{env.act}/ads", **{**env.ad_params(adset, "x"), "creative": story}).body["id"],
            fields="creative",
        ).body["creative"]["id"]
        for _ in range(2)
    }
    assert len(ids) == 1  # object_story_id reuse applies to inline specs too


def test_inline_creative_is_not_stored_when_the_ad_fails(env: Env) -> None:
    answer = env.g.post(f"{env.act}/adsets", **env.messaging_adset("INSTAGRAM_DIRECT"))
    adset = str(answer.body["id"])
    creatives = env.count("adcreative")
    bad_spec = env.creative_params(page_welcome_message="x" * 301)
    answer = env.g.post(f"{env.act}/ads", **{**env.ad_params(adset, "x"), "creative": {"creative": bad_spec}})
    assert answer.error["error_data"]["blame_field_specs"] == [["page_welcome_message"]]
    answer = env.g.post(f"{env.act}/ads", **{**env.ad_params(adset, "x"), "creative": env.creative_params()})
    assert answer.error["error_data"]["blame_field_specs"] == [["creative", "call_to_action"]]
    assert env.count("adcreative") == creatives


# --- updates --------------------------------------------------------------------------------------
def test_update_rules_skip_to_the_status_machine_for_deleted_objects(env: Env) -> None:
    adset = env.adset(env.campaign())
    assert env.g.delete(adset).status == 200
    error = env.g.post(adset, daily_budget=10).error
    assert error["error_subcode"] == 1487056  # the deleted ad set's code, not "budget too low"


def test_ad_in_an_ended_ad_set_can_still_be_paused_and_renamed(env: Env) -> None:
    bad, good = c_ad_adset_ended(env)
    assert env.send(good).status == 200
    assert env.g.post(bad.path, status="PAUSED").status == 200
    assert env.send(bad).error["error_subcode"] == 1487007


# --- the seeds' messaging ad trees, end to end -----------------------------------------------------
def _form(env: Env, version: str, path: str, **params: Any) -> dict[str, Any]:
    answer = Graph(env.g.base_url, env.g.token, version).post(path, **params)
    assert answer.status == 200, answer.body
    return dict(answer.body)


def _json(env: Env, version: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = call(
        env.g.base_url, "POST", f"/{version}/{path}", json_body={"access_token": env.g.token, **body}
    )
    assert answer.status == 200, answer.body
    return dict(answer.body)


def test_seed_000_click_to_multidestination_tree(env: Env) -> None:
    v = "v21.0"
    campaign = _form(
        env,
        v,
        f"{env.act}/campaigns",
        name="Click to Multi Destination Campaign",
        objective="OUTCOME_ENGAGEMENT",
        status="ACTIVE",
        special_ad_categories="[]",
    )["id"]
    assert env.g.get(campaign, fields="name,status,objective").body == {
        "name": "Click to Multi Destination Campaign",
        "status": "ACTIVE",
        "objective": "OUTCOME_ENGAGEMENT",
        "id": campaign,
    }
    adset = _form(
        env,
        v,
        f"{env.act}/adsets",
        bid_strategy="LOWEST_COST_WITHOUT_CAP",
        billing_event="IMPRESSIONS",
        campaign_id=campaign,
        daily_budget=2000,
        destination_type=ALL_THREE,
        name="Multi destination ad set",
        optimization_goal="CONVERSATIONS",
        promoted_object=f'{{\n      "page_id": "{PAGE}"\n    }}',
        status="ACTIVE",
        start_time=FUTURE,
        targeting='{ \n        "geo_locations": { "countries":["US","CA"] },\n        "device_platforms": ["mobile", "desktop"]\n  }',
    )["id"]
    assert env.g.get(adset, fields="name,destination_type,optimization_goal,bid_strategy").body == {
        "name": "Multi destination ad set",
        "destination_type": ALL_THREE,
        "optimization_goal": "CONVERSATIONS",
        "bid_strategy": "LOWEST_COST_WITHOUT_CAP",
        "id": adset,
    }
    welcome = {  # S000 "Filling out Page Welcome Message" → Example
        "type": "VISUAL_EDITOR",
        "version": 2,
        "landing_screen_type": "welcome_message",
        "media_type": "text",
        "text_format": {
            "customer_action_type": "ice_breakers",
            "message": {
                "ice_breakers": [
                    {"title": "Can I make a purchase?", "response": "This is a response 1"},
                    {"title": "Can I see a menu?", "response": "This is a response 2"},
                    {"title": "Where are you located?", "response": "This is a response 3"},
                ],
                "quick_replies": [],
                "text": "Hi {{user_first_name}}! Please let us know how we can help you.",
            },
        },
        "user_edit": False,
        "surface": "visual_editor_new",
    }
    creative = _form(  # the seed's example with its missing comma after image_hash restored
        env,
        v,
        f"{env.act}/adcreatives",
        name="Multi destination creative",
        object_story_spec={
            "page_id": PAGE,
            "link_data": {
                "name": "Chat with us",
                "message": "Ask us anything",
                "image_hash": "abc123",
                "link": "https://fb.com/messenger_doc/",
                "page_welcome_message": welcome,
                "call_to_action": {"type": "MESSAGE_PAGE", "value": {"app_destination": "MESSENGER"}},
            },
        },
        asset_feed_spec={"optimization_type": "DOF_MESSAGING_DESTINATION", "call_to_actions": DOF_CTAS},
        degrees_of_freedom_spec={
            "creative_features_spec": {"standard_enhancements": {"enroll_status": "OPT_IN"}}
        },
    )["id"]
    ad = _form(
        env,
        v,
        f"{env.act}/ads",
        name="Multi destination ad",
        adset_id=adset,
        creative={"creative_id": creative},
        status="ACTIVE",
    )["id"]
    assert env.g.get(ad, fields="status,adset_id").body == {"status": "ACTIVE", "adset_id": adset, "id": ad}
    ig_post = _form(  # "Creating ad creatives using Instagram content" → Instagram Posts
        env,
        v,
        f"{env.act}/adcreatives",
        name="Sample ad creative from Instagram post",
        object_id=PAGE,
        instagram_user_id=IG,
        source_instagram_media_id="17900000000000001",
        call_to_action={"type": "INSTAGRAM_MESSAGE", "value": {"link": "https://www.instagram.com"}},
    )["id"]
    assert ig_post
    # Two destinations only: the creative's three call_to_actions no longer match.
    two = _form(
        env,
        v,
        f"{env.act}/adsets",
        **env.messaging_adset("MESSAGING_INSTAGRAM_DIRECT_MESSENGER", campaign=campaign),
    )["id"]
    mismatch = env.g.post(f"{env.act}/ads", **env.ad_params(two, creative))
    assert mismatch.error["error_data"]["blame_field_specs"] == [
        ["creative", "asset_feed_spec", "call_to_actions"]
    ]


def test_seed_001_click_to_messenger_trees(env: Env) -> None:
    v = "v25.0"
    campaign = _json(  # JSON body with the Page token, trailing comma removed
        env,
        v,
        f"{env.act}/campaigns",
        {
            "buying_type": "AUCTION",
            "name": "Messenger_ad_campaign_name",
            "objective": "OUTCOME_TRAFFIC",
            "status": "PAUSED",
            "special_ad_categories": ["NONE"],
        },
    )["id"]
    adset = (
        _json(  # the seed's broken keys ("name:", "optimization_goal:IMPRESSIONS") repaired; promoted_object
            env,  # is in the seed's must-include list although its example omits it
            v,
            f"{env.act}/adsets",
            {
                "bid_amount": "200",
                "billing_event": "IMPRESSIONS",
                "campaign_id": campaign,
                "daily_budget": "1500",
                "destination_type": "MESSENGER",
                "name": "Your_messenger_adset_name",
                "optimization_goal": "IMPRESSIONS",
                "promoted_object": {"page_id": PAGE},
                "status": "PAUSED",
                "targeting": {
                    "geo_locations": {"countries": ["US", "CA"]},
                    "device_platforms": ["mobile", "desktop"],
                    "publisher_platforms": ["messenger"],
                },
            },
        )["id"]
    )
    assert env.g.get(adset, fields="bid_strategy").body["bid_strategy"] == "LOWEST_COST_WITH_BID_CAP"
    image = _json(
        env,
        v,
        f"{env.act}/adcreatives",
        {
            "name": "Your_CTM_image_ad_name",
            "object_story_spec": {
                "page_id": PAGE,
                "link_data": {
                    "page_welcome_message": "Your_welcome_message",
                    "image_hash": "Your_image_hash",
                    "link": "https://example.com/image.jpg",
                    "call_to_action": {"type": "LEARN_MORE", "value": {"app_destination": "MESSENGER"}},
                },
            },
        },
    )["id"]
    video = _json(
        env,
        v,
        f"{env.act}/adcreatives",
        {
            "name": "Your_CTM_video_ad_name",
            "object_story_spec": {
                "page_id": PAGE,
                "video_data": {
                    "call_to_action": {"type": "LEARN_MORE", "value": {"app_destination": "MESSENGER"}},
                    "link_description": "Your_link_description",
                    "image_url": "https://example.com/thumb.jpg",
                    "page_welcome_message": "Your_welcome_text",
                    "video_id": "123",
                },
            },
        },
    )["id"]
    opt_in = {  # marketing-message opt-in, sent as a JSON-encoded string
        "landing_screen_type": "marketing_messages",
        "media_type": "image",
        "image_format": {
            "customer_action_type": "buttons",
            "message": {
                "text": "Your_welcome_message",
                "attachment": {
                    "type": "template",
                    "payload": {
                        "template_type": "notification_messages",
                        "elements": [
                            {
                                "title": "Your_CTS_title",
                                "subtitle": "Your_CTS_subtitle",
                                "image_url": "https://example.com/i.jpg",
                                "app_id": "1",
                                "buttons": [{"type": "postback", "payload": "data", "title": "Get messages"}],
                            }
                        ],
                    },
                },
            },
        },
    }
    cts = _json(
        env,
        v,
        f"{env.act}/adcreatives",
        {
            "name": "Your_CTS_image_ad_name",
            "object_story_spec": {
                "page_id": PAGE,
                "link_data": {
                    "image_hash": "Your_image_hash",
                    "link": "https://example.com/image.jpg",
                    "call_to_action": {"type": "LEARN_MORE", "value": {"app_destination": "MESSENGER"}},
                    "page_welcome_message": json.dumps(opt_in),
                },
            },
        },
    )["id"]
    call_prompt = [
        {
            "landing_screen_type": "call_prompt",
            "media_type": "text",
            "text_format": {
                "message": {
                    "text": "Your_welcome_message",
                    "call_prompt_data": {"call_prompt_message": "Call us"},
                }
            },
        }
    ]
    prompt = _json(
        env,
        v,
        f"{env.act}/adcreatives",
        {
            "name": "call prompt",
            "object_story_spec": {
                "page_id": PAGE,
                "link_data": {
                    "link": "https://example.com",
                    "call_to_action": {"type": "MESSAGE_PAGE", "value": {"app_destination": "MESSENGER"}},
                    "page_welcome_message": json.dumps(call_prompt),
                },
            },
        },
    )["id"]
    for i, creative in enumerate((image, video, cts, prompt)):
        ad = _json(  # the seed's example lacks "name", which its parameter table requires
            env,
            v,
            f"{env.act}/ads",
            {"name": f"ad {i}", "adset_id": adset, "creative": {"creative_id": creative}, "status": "PAUSED"},
        )["id"]
        assert _json(env, v, ad, {"status": "ACTIVE"}) == {"success": True}
        assert env.g.get(ad, fields="status,effective_status").body["effective_status"] == "CAMPAIGN_PAUSED"
    too_long = [{**call_prompt[0], "text_format": {"message": {"text": "x" * 301}}}]
    answer = call(
        env.g.base_url,
        "POST",
        f"/{v}/{env.act}/adcreatives",
        json_body={
            "access_token": env.g.token,
            "object_story_spec": {
                "page_id": PAGE,
                "link_data": {"page_welcome_message": json.dumps(too_long)},
            },
        },
    )
    assert answer.error["error_data"]["blame_field_specs"] == [
        ["object_story_spec", "link_data", "page_welcome_message"]
    ]
    # Messenger ads for leads: OUTCOME_LEADS, LEAD_GENERATION, template id in a JSON-encoded welcome message.
    leads = _json(
        env,
        v,
        f"{env.act}/campaigns",
        {
            "buying_type": "AUCTION",
            "name": "leads",
            "objective": "OUTCOME_LEADS",
            "status": "PAUSED",
            "special_ad_categories": ["NONE"],
        },
    )["id"]
    lead_set = _json(
        env,
        v,
        f"{env.act}/adsets",
        {
            "bid_amount": 300,
            "billing_event": "IMPRESSIONS",
            "campaign_id": leads,
            "daily_budget": 1500,
            "destination_type": "MESSENGER",
            "name": "lead ad set",
            "optimization_goal": "QUALITY_LEAD",
            "promoted_object": {"page_id": PAGE, "pixel_id": "555"},
            "status": "PAUSED",
            "targeting": {"geo_locations": {"countries": ["US"]}},
        },
    )["id"]
    lead_creative = _json(
        env,
        v,
        f"{env.act}/adcreatives",
        {
            "degrees_of_freedom_spec": {
                "creative_features_spec": {"standard_enhancements": {"enroll_status": "OPT_IN"}}
            },
            "name": "Your_lead_ad_image_ad_name",
            "object_story_spec": {
                "page_id": PAGE,
                "link_data": {
                    "call_to_action": {"type": "MESSAGE_PAGE", "value": {"app_destination": "MESSENGER"}},
                    "description": "Sample_description",
                    "image_hash": "Your_image_hash",
                    "message": "Sample_message_for_Creative",
                    "page_welcome_message": json.dumps({"ctm_lead_gen_template_id": "98765"}),
                },
            },
        },
    )["id"]
    _json(
        env,
        v,
        f"{env.act}/ads",
        {"name": "lead ad", "adset_id": lead_set, "creative": {"creative_id": lead_creative}},
    )


def test_seed_002_click_to_instagram_tree(env: Env) -> None:
    v = "v25.0"
    campaign = _form(
        env,
        v,
        f"{env.act}/campaigns",
        name="Click to Instagram Campaign",
        objective="OUTCOME_ENGAGEMENT",
        status="ACTIVE",
        special_ad_categories="[]",
    )["id"]
    adset = _form(
        env,
        v,
        f"{env.act}/adsets",
        bid_strategy="LOWEST_COST_WITHOUT_CAP",
        billing_event="IMPRESSIONS",
        campaign_id=campaign,
        daily_budget=2000,
        destination_type="INSTAGRAM_DIRECT",
        name="Click to Instagram Ad Set",
        optimization_goal="CONVERSATIONS",
        promoted_object=f'{{ "page_id": "{PAGE}" }}',
        status="ACTIVE",
        start_time=FUTURE,
        targeting='{ "geo_locations": { "countries":["US","CA"] }, "device_platforms": ["mobile", "desktop"] }',
    )["id"]
    assert env.g.get(adset, fields="name,destination_type,optimization_goal,bid_strategy,status").body == {
        "name": "Click to Instagram Ad Set",
        "destination_type": "INSTAGRAM_DIRECT",
        "optimization_goal": "CONVERSATIONS",
        "bid_strategy": "LOWEST_COST_WITHOUT_CAP",
        "status": "ACTIVE",
        "id": adset,
    }
    welcome = {
        "type": "VISUAL_EDITOR",
        "version": 2,
        "landing_screen_type": "welcome_message",
        "media_type": "text",
        "text_format": {
            "customer_action_type": "ice_breakers",
            "message": {
                "text": "Hi {{user_first_name}}. Welcome to {{page_name}}!",
                "ice_breakers": [
                    {"title": f"Icebreaker {i}", "response": f"Auto response {i}"} for i in range(3)
                ],
            },
        },
    }
    ig_cta = {"type": "INSTAGRAM_MESSAGE", "value": {"app_destination": "INSTAGRAM_DIRECT"}}
    creatives = [
        {  # image
            "name": "Sample ad creative",
            "object_story_spec": {
                "page_id": PAGE,
                "instagram_actor_id": IG,
                "link_data": {
                    "message": "Primary text",
                    "image_hash": "abc",
                    "page_welcome_message": welcome,
                    "call_to_action": ig_cta,
                },
            },
        },
        {  # video
            "name": "Sample ad creative",
            "object_story_spec": {
                "message": "Primary text",
                "page_id": PAGE,
                "instagram_actor_id": IG,
                "video_data": {
                    "video_id": "123",
                    "image_url": "https://example.com/t.jpg",
                    "page_welcome_message": welcome,
                    "call_to_action": ig_cta,
                },
            },
        },
        {  # carousel
            "name": "Sample ad creative",
            "object_story_spec": {
                "page_id": PAGE,
                "instagram_actor_id": IG,
                "link_data": {
                    "message": "Primary text",
                    "page_welcome_message": welcome,
                    "call_to_action": ig_cta,
                    "child_attachments": [
                        {"image_hash": "abc", "call_to_action": ig_cta, "name": "Headline"},
                        {
                            "video_id": "123",
                            "picture": "https://example.com/t.jpg",
                            "call_to_action": ig_cta,
                            "name": "H",
                        },
                    ],
                },
            },
        },
        {  # Instagram post
            "name": "Sample ad creative from Instagram post",
            "object_id": PAGE,
            "instagram_user_id": IG,
            "source_instagram_media_id": "17900000000000002",
            "call_to_action": {"type": "INSTAGRAM_MESSAGE", "value": {"link": "https://www.instagram.com"}},
        },
    ]
    for i, params in enumerate(creatives):
        creative = _form(env, v, f"{env.act}/adcreatives", **params)["id"]
        ad = _form(
            env,
            v,
            f"{env.act}/ads",
            name=f"Click to Instagram Ad {i}",
            adset_id=adset,
            creative={"creative_id": creative},
            status="PAUSED",
        )["id"]
        assert env.g.get(ad, fields="status,adset_id,campaign_id").body == {
            "status": "PAUSED",
            "adset_id": adset,
            "campaign_id": campaign,
            "id": ad,
        }
        assert _form(env, v, ad, status="ACTIVE") == {"success": True}
        assert env.g.get(ad, fields="status,effective_status").body == {
            "status": "ACTIVE",
            "effective_status": "PENDING_REVIEW",
            "id": ad,
        }
    both = {**creatives[3], "instagram_actor_id": IG}  # §9.3 #5: 2238055 / 2446149
    assert (
        Graph(env.g.base_url, env.g.token, v).post(f"{env.act}/adcreatives", **both).error["error_subcode"]
        == 2238055
    )
