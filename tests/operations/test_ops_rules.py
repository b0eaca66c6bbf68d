"""Each documented rule, checked locally before any call: one failing mutation per rule (and the valid base)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from ops_support import GEO, PAGE, adset, campaign, creative

from bulk_engine.operations import JobFileError, parse_job

Mutation = Callable[[dict[str, Any]], None]


def base() -> dict[str, Any]:
    return {
        "account_id": "act_1",
        "tasks": [
            {
                "type": "create",
                "creatives": {"c": creative()},
                "campaigns": [campaign(ad_sets=[adset(ads=[{"name": "Ad", "creative": "c"}])])],
            }
        ],
    }


def camp(d: dict[str, Any]) -> dict[str, Any]:
    return d["tasks"][0]["campaigns"][0]  # type: ignore[no-any-return]


def aset(d: dict[str, Any]) -> dict[str, Any]:
    return camp(d)["ad_sets"][0]  # type: ignore[no-any-return]


def cr(d: dict[str, Any]) -> dict[str, Any]:
    return d["tasks"][0]["creatives"]["c"]  # type: ignore[no-any-return]


def ad(d: dict[str, Any]) -> dict[str, Any]:
    return aset(d)["ads"][0]  # type: ignore[no-any-return]


def set_(target: Callable[[dict[str, Any]], dict[str, Any]], **values: Any) -> Mutation:
    def apply(d: dict[str, Any]) -> None:
        node = target(d)
        for key, value in values.items():
            if value is _DROP:
                node.pop(key, None)
            else:
                node[key] = value

    return apply


def both(*mutations: Mutation) -> Mutation:
    def apply(d: dict[str, Any]) -> None:
        for mutation in mutations:
            mutation(d)

    return apply


_DROP = object()
MESSENGER_CTA = {"type": "MESSAGE_PAGE", "value": {"app_destination": "MESSENGER"}}
DOF = {
    "optimization_type": "DOF_MESSAGING_DESTINATION",
    "call_to_actions": [
        {"type": "MESSAGE_PAGE", "value": {"app_destination": "MESSENGER"}},
        {"type": "WHATSAPP_MESSAGE", "value": {"app_destination": "WHATSAPP"}},
        {"type": "INSTAGRAM_MESSAGE", "value": {"app_destination": "INSTAGRAM_DIRECT"}},
    ],
}
MESSAGING = {
    "billing_event": "IMPRESSIONS",
    "optimization_goal": "CONVERSATIONS",
    "promoted_object": {"page_id": PAGE},
}


def welcome(title: str = "Hi?", response: str = "Yes", text: str = "Hello") -> dict[str, Any]:
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
    }


def link_creative(**link: Any) -> dict[str, Any]:
    return {"object_story_spec": {"page_id": PAGE, "link_data": {"link": "https://example.com", **link}}}


# (case id, mutation, rule, (code, subcode), field path)
CASES: list[tuple[str, Mutation, str, tuple[int | None, int | None], str]] = [
    (
        "budget on both levels",
        set_(camp, daily_budget=5000),
        "budget.campaign_vs_adset",
        (100, 1885621),
        "campaigns[0].ad_sets[0].daily_budget",
    ),
    (
        "no budget anywhere",
        set_(aset, daily_budget=_DROP),
        "adset.budget.required",
        (100, None),
        "campaigns[0].ad_sets[0].daily_budget",
    ),
    (
        "lifetime without end_time",
        set_(aset, daily_budget=_DROP, lifetime_budget=100000),
        "adset.lifetime.end_time",
        (100, None),
        "campaigns[0].ad_sets[0].end_time",
    ),
    (
        "daily budget for 12 hours",
        set_(aset, start_time="2030-01-01T00:00:00+0000", end_time="2030-01-01T12:00:00+0000"),
        "adset.daily.duration",
        (100, None),
        "campaigns[0].ad_sets[0].daily_budget",
    ),
    (
        "bad datetime",
        set_(aset, end_time="next tuesday"),
        "time.invalid",
        (100, None),
        "campaigns[0].ad_sets[0].end_time",
    ),
    (
        "budget too low",
        set_(aset, daily_budget=50),
        "budget.too_low",
        (100, 1885272),
        "campaigns[0].ad_sets[0].daily_budget",
    ),
    (
        "spend cap too low",
        set_(camp, spend_cap=500),
        "campaign.spend_cap.min",
        (100, 2446307),
        "campaigns[0].spend_cap",
    ),
    (
        "cost cap without bid",
        set_(aset, bid_strategy="COST_CAP"),
        "adset.bid_amount.required",
        (100, None),
        "campaigns[0].ad_sets[0].bid_amount",
    ),
    (
        "campaign bid cap without ad set bid",
        both(
            set_(camp, daily_budget=5000, bid_strategy="LOWEST_COST_WITH_BID_CAP"),
            set_(aset, daily_budget=_DROP),
        ),
        "adset.bid_amount.required",
        (100, None),
        "campaigns[0].ad_sets[0].bid_amount",
    ),
    (
        "bid with automatic strategy",
        set_(aset, bid_strategy="LOWEST_COST_WITHOUT_CAP", bid_amount=100),
        "adset.bid.automatic",
        (100, 1885204),
        "campaigns[0].ad_sets[0].bid_amount",
    ),
    (
        "bid too low",
        set_(aset, bid_amount=1),
        "adset.bid_amount.min",
        (100, None),
        "campaigns[0].ad_sets[0].bid_amount",
    ),
    (
        "roas floor out of range",
        set_(aset, bid_strategy="LOWEST_COST_WITH_MIN_ROAS", bid_constraints={"roas_average_floor": 50}),
        "adset.roas_floor.range",
        (100, None),
        "campaigns[0].ad_sets[0].bid_constraints.roas_average_floor",
    ),
    (
        "min roas without floor",
        set_(aset, bid_strategy="LOWEST_COST_WITH_MIN_ROAS"),
        "adset.roas_floor.required",
        (100, None),
        "campaigns[0].ad_sets[0].bid_constraints.roas_average_floor",
    ),
    (
        "targeting missing",
        set_(aset, targeting=_DROP),
        "adset.targeting.required",
        (100, None),
        "campaigns[0].ad_sets[0].targeting",
    ),
    (
        "targeting without geo",
        set_(aset, targeting={"age_min": 18}),
        "adset.targeting.geo",
        (100, None),
        "campaigns[0].ad_sets[0].targeting.geo_locations",
    ),
    (
        "app install billing and goal",
        set_(aset, billing_event="APP_INSTALLS", optimization_goal="APP_INSTALLS"),
        "adset.app_install_billing",
        (100, None),
        "campaigns[0].ad_sets[0].billing_event",
    ),
    (
        "lead generation without page",
        set_(aset, optimization_goal="LEAD_GENERATION"),
        "adset.lead_page",
        (100, None),
        "campaigns[0].ad_sets[0].promoted_object.page_id",
    ),
    (
        "frequency control on link clicks",
        set_(
            aset, frequency_control_specs=[{"event": "IMPRESSIONS", "interval_days": 7, "max_frequency": 2}]
        ),
        "adset.frequency_control",
        (100, None),
        "campaigns[0].ad_sets[0].frequency_control_specs",
    ),
    (
        "spend target without campaign budget",
        set_(aset, daily_min_spend_target=500),
        "adset.spend_targets",
        (100, None),
        "campaigns[0].ad_sets[0].daily_min_spend_target",
    ),
    (
        "messaging objective",
        both(
            set_(camp, objective="OUTCOME_AWARENESS"), set_(aset, destination_type="MESSENGER", **MESSAGING)
        ),
        "msg.objective",
        (100, 2446509),
        "campaigns[0].ad_sets[0].destination_type",
    ),
    (
        "messaging billing",
        set_(aset, destination_type="INSTAGRAM_DIRECT", **{**MESSAGING, "billing_event": "LINK_CLICKS"}),
        "msg.billing_event",
        (100, None),
        "campaigns[0].ad_sets[0].billing_event",
    ),
    (
        "multidestination goal",
        set_(
            aset,
            destination_type="MESSAGING_MESSENGER_WHATSAPP",
            **{**MESSAGING, "optimization_goal": "LINK_CLICKS"},
        ),
        "msg.optimization_goal",
        (100, None),
        "campaigns[0].ad_sets[0].optimization_goal",
    ),
    (
        "instagram goal per objective",
        set_(
            aset,
            destination_type="INSTAGRAM_DIRECT",
            **{**MESSAGING, "optimization_goal": "OFFSITE_CONVERSIONS"},
        ),
        "msg.optimization_goal",
        (100, None),
        "campaigns[0].ad_sets[0].optimization_goal",
    ),
    (
        "messaging page",
        set_(aset, destination_type="WHATSAPP", **{**MESSAGING, "promoted_object": _DROP}),
        "msg.promoted_page",
        (100, None),
        "campaigns[0].ad_sets[0].promoted_object.page_id",
    ),
    (
        "multidestination special categories",
        both(
            set_(camp, special_ad_categories=["HOUSING"]),
            set_(aset, destination_type="MESSAGING_MESSENGER_WHATSAPP", **MESSAGING),
        ),
        "msg.special_ad_categories",
        (100, None),
        "campaigns[0].ad_sets[0].destination_type",
    ),
    (
        "creative without content",
        set_(cr, object_story_spec=_DROP),
        "creative.spec.required",
        (100, None),
        "creatives.c.object_story_spec",
    ),
    (
        "story spec without page",
        set_(cr, object_story_spec={"link_data": {"link": "https://x"}}),
        "creative.story_spec",
        (100, None),
        "creatives.c.object_story_spec.page_id",
    ),
    (
        "bad post id",
        set_(cr, object_story_spec=_DROP, object_story_id="abc"),
        "creative.story_id",
        (100, None),
        "creatives.c.object_story_id",
    ),
    (
        "two instagram ids",
        set_(
            cr,
            object_story_spec={
                "page_id": PAGE,
                "instagram_user_id": "1",
                "instagram_actor_id": "2",
                "link_data": {},
            },
        ),
        "creative.instagram_ids",
        (100, 2238055),
        "creatives.c.object_story_spec.instagram_actor_id",
    ),
    (
        "cta opens the wrong app",
        set_(
            cr,
            **link_creative(
                call_to_action={"type": "WHATSAPP_MESSAGE", "value": {"app_destination": "MESSENGER"}}
            ),
        ),
        "creative.cta_destination",
        (100, None),
        "creatives.c.object_story_spec.link_data.call_to_action.value.app_destination",
    ),
    (
        "dof without call to actions",
        set_(cr, asset_feed_spec={"optimization_type": "DOF_MESSAGING_DESTINATION"}),
        "creative.dof_destinations",
        (100, None),
        "creatives.c.asset_feed_spec.call_to_actions",
    ),
    (
        "ice breaker title 81",
        set_(cr, **link_creative(page_welcome_message=welcome(title="t" * 81))),
        "creative.icebreaker.title",
        (100, None),
        "creatives.c.object_story_spec.link_data.page_welcome_message.text_format.message.ice_breakers[0].title",
    ),
    (
        "ice breaker response 301",
        set_(cr, page_welcome_message=json.dumps(welcome(response="r" * 301))),
        "creative.icebreaker.response",
        (100, None),
        "creatives.c.page_welcome_message.text_format.message.ice_breakers[0].response",
    ),
    (
        "welcome text 301",
        set_(cr, page_welcome_message=welcome(text="x" * 301)),
        "creative.welcome.text",
        (100, None),
        "creatives.c.page_welcome_message.text_format.message.text",
    ),
    (
        "asset values not unique",
        set_(cr, asset_feed_spec={"bodies": [{"text": "a"}, {"text": "a"}]}),
        "creative.asset_feed.unique",
        (100, 1815629),
        "creatives.c.asset_feed_spec.bodies[1]",
    ),
    (
        "too many titles",
        set_(cr, asset_feed_spec={"titles": [{"text": str(i)} for i in range(6)]}),
        "creative.asset_feed.limits",
        (100, None),
        "creatives.c.asset_feed_spec.titles",
    ),
    (
        "messenger ad set, instagram creative",
        both(
            set_(aset, destination_type="MESSENGER", **MESSAGING),
            set_(
                cr,
                **link_creative(
                    call_to_action={
                        "type": "INSTAGRAM_MESSAGE",
                        "value": {"app_destination": "INSTAGRAM_DIRECT"},
                    }
                ),
            ),
        ),
        "msg.creative_destination",
        (100, None),
        "campaigns[0].ad_sets[0].ads[0].creative.call_to_action",
    ),
    (
        "multidestination creative mismatch",
        both(
            set_(aset, destination_type="MESSAGING_MESSENGER_WHATSAPP", **MESSAGING),
            set_(cr, asset_feed_spec=DOF),
        ),
        "msg.creative_destination",
        (100, None),
        "campaigns[0].ad_sets[0].ads[0].creative.asset_feed_spec.call_to_actions",
    ),
    (
        "page mismatch",
        set_(aset, promoted_object={"page_id": "2000000002"}, optimization_goal="LEAD_GENERATION"),
        "ad.page_mismatch",
        (100, 1885029),
        "campaigns[0].ad_sets[0].ads[0].creative.object_story_spec.page_id",
    ),
    (
        "traffic to a website without a link",
        both(
            set_(aset, destination_type="WEBSITE"),
            set_(cr, object_story_spec={"page_id": PAGE, "photo_data": {"image_hash": "abc"}}),
        ),
        "ad.website_url",
        (100, 2446383),
        "campaigns[0].ad_sets[0].ads[0].creative.object_story_spec.link_data.link",
    ),
    (
        "two creatives on an ad",
        set_(ad, creative_id="123"),
        "ad.creative.required",
        (100, None),
        "campaigns[0].ad_sets[0].ads[0].creative",
    ),
    (
        "unknown creative key",
        set_(ad, creative="nope"),
        "create.creative_key",
        (None, None),
        "campaigns[0].ad_sets[0].ads[0].creative",
    ),
    (
        "ad scheduling on traffic",
        set_(ad, ad_schedule_start_time="2030-01-01T00:00:00+0000"),
        "ad.schedule",
        (100, None),
        "campaigns[0].ad_sets[0].ads[0].ad_schedule_start_time",
    ),
    (
        "bid amount on an ad",
        set_(ad, extra_params={"bid_amount": 5}),
        "ad.bid_amount",
        (100, None),
        "campaigns[0].ad_sets[0].ads[0].bid_amount",
    ),
    (
        "smart_promotion_type is refused",
        set_(camp, extra_params={"smart_promotion_type": "AUTOMATED_SHOPPING_ADS"}),
        "campaign.smart_promotion_type",
        (100, None),
        "campaigns[0].smart_promotion_type",
    ),
    (
        "advantage+ objective",
        set_(camp, advantage_plus=True),
        "advantage.objective",
        (None, None),
        "campaigns[0].objective",
    ),
    (
        "advantage+ needs a campaign budget",
        both(set_(camp, advantage_plus=True, objective="OUTCOME_SALES")),
        "advantage.budget",
        (None, None),
        "campaigns[0].daily_budget",
    ),
    (
        "advantage+ placements",
        both(
            set_(camp, advantage_plus=True, objective="OUTCOME_SALES", daily_budget=5000),
            set_(aset, daily_budget=_DROP, targeting={**GEO, "publisher_platforms": ["facebook"]}),
        ),
        "advantage.placement",
        (None, None),
        "campaigns[0].ad_sets[0].targeting.publisher_platforms",
    ),
]


def test_the_base_job_is_valid() -> None:
    parse_job(base())


@pytest.mark.parametrize(("case", "mutation", "rule", "codes", "field"), CASES, ids=[c[0] for c in CASES])
def test_each_rule_is_checked_locally(
    case: str, mutation: Mutation, rule: str, codes: tuple[int | None, int | None], field: str
) -> None:
    data = base()
    mutation(data)
    with pytest.raises(JobFileError) as caught:
        parse_job(data, "job.yaml")
    found = {(i.rule, i.field_path): i for i in caught.value.issues}
    key = (rule, f"tasks[0].{field}")
    assert key in found, [str(i) for i in caught.value.issues]
    issue = found[key]
    assert (issue.code, issue.subcode) == codes
    assert issue.file == "job.yaml"


STATUS_CASES = [
    ({"status": "PAUSED"}, "status.source"),
    ({"status": "PAUSED", "ids": ["1"], "csv": "x.csv"}, "status.source"),
    ({"ids": ["1"]}, "status.required"),
    ({"status": "PAUSED", "ids": ["1", "act_2"]}, "status.id"),
    ({"status": "PAUSED", "selector": {"name_regex": "(("}}, "status.regex"),
    ({"status": "PAUSED", "csv": "missing.csv"}, "csv.missing"),
]


@pytest.mark.parametrize(("task", "rule"), STATUS_CASES)
def test_status_task_rules(task: dict[str, Any], rule: str) -> None:
    with pytest.raises(JobFileError) as caught:
        parse_job({"account_id": "act_1", "tasks": [{"type": "status", **task}]})
    assert rule in {i.rule for i in caught.value.issues}


MESSAGE_CASES = [
    (
        {"campaign_id": "1", "campaign": {"name": "M", "page_id": PAGE, "daily_budget": 500}},
        "messages.campaign",
        None,
    ),
    ({"campaign": {"name": "M", "page_id": PAGE, "daily_budget": 50}}, "budget.too_low", 1885272),
    ({"campaign": {"name": "M", "page_id": PAGE, "lifetime_budget": 2000}}, "budget.too_low", 1885272),
    (
        {"campaign": {"name": "M", "page_id": PAGE, "daily_budget": 500, "lifetime_budget": 5000}},
        "messages.budget",
        None,
    ),
    ({"campaign_id": "1", "subscription_tokens": []}, "messages.tokens", None),
]


@pytest.mark.parametrize(("task", "rule", "subcode"), MESSAGE_CASES)
def test_message_task_rules(task: dict[str, Any], rule: str, subcode: int | None) -> None:
    body = {"type": "messages", "message": "Hi", "subscription_tokens": ["tok"], **task}
    with pytest.raises(JobFileError) as caught:
        parse_job({"account_id": "act_1", "tasks": [body]})
    issue = next(i for i in caught.value.issues if i.rule == rule)
    assert issue.subcode == subcode
