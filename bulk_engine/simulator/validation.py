"""Documented validation rules for creating and updating ad objects.

Every rule answers with the code/subcode its seed documents. The seeds print ad-object errors such as
``1885621`` as "codes" in their tables, but Graph sends them as ``code: 100`` with the number as
``error_subcode`` (the envelope of S003 §Handling Errors → Error Responses; ``status.py`` does the same);
we follow that. Where no code is documented the answer is ``code: 100`` with
``error_data.blame_field_specs`` naming the field (column "code" shows ``100`` and no subcode). Each
rule is one entry of :data:`RULES`; ``tests/simulator/test_validation.py`` holds one failing and one
near-miss passing request per rule.

Seed keys: S000 click to multidestination, S001 click to Messenger, S002 click to Instagram, S003 the
Marketing API compendium (``§`` = its heading), S004 marketing messages.

=================================  ===========  ============================================  ===========================================
rule id                            code/sub     rule (blamed field)                           seed section
=================================  ===========  ============================================  ===========================================
exec.options.enum                  100          execution_options ⊆ the edge's enum           S003 §Ad Account Ads / Adsets / Ad Creatives
exec.recommendations.alone         100          include_recommendations "cannot be used by    S003 §Ad Account Adsets (execution_options)
                                                itself"
exec.sync_review.alone             100          synchronous_ad_review only with validate_only S003 §Ad Account Ads (execution_options)
create.status                      100          create status ∈ {ACTIVE, PAUSED} (status)     S003 §Ad Account, Ad Campaigns / Adsets / Ads
campaign.name.required             100          name required                                 S003 §Create an Ad Campaign → Required Params
campaign.objective.required        100          objective required                            S003 §Create an Ad Campaign; S000/S002 Step 1
campaign.objective.enum            100          objective enum                                S003 §Ad Account, Ad Campaigns → Creating
campaign.sac.required              100          special_ad_categories required                S003 §Ad Account, Ad Campaigns ("Required")
campaign.sac.enum                  100          special_ad_categories enum                    S003 §Ad Account, Ad Campaigns
campaign.buying_type.enum          100          buying_type ∈ {AUCTION, RESERVED}             S003 §Ad Account, Ad Campaigns (buying_type)
bid_strategy.enum                  100          bid_strategy enum (campaign and ad set)       S003 §Ad Account, Ad Campaigns / Adsets
campaign.spend_cap.min             100/2446307  spend_cap ≥ $100 (10000 cents) (spend_cap)    S003 §Ad Account, Ad Campaigns; §Handling Errors
budget.too_low                     100/1885272  daily ≥ account min_daily_budget (100 cents)  S003 §Handling Errors; §Handling Errors example
                                                lifetime ≥ min × days [inference] (budget)    (1487901 "at least $1.00 per day"); S004
budget.too_low.update              100/1885650  same minimum when a budget is updated         S003 §Handling Errors ("while your budget is
                                                                                              updated, which may take up to 15 minutes")
time.end_in_past                   100/1487033  end_time / stop_time must be in the future    S003 §Troubleshooting → Error Codes
time.invalid                       100          datetimes: ISO, "… PDT", UNIX, 0 = ongoing    S003 §Ad Account Adsets (end_time)
asc.removed_v25                    100          smart_promotion_type AUTOMATED_SHOPPING_ADS / S003 §Advantage+ Campaign Experience
                                                SMART_APP_PROMOTION refused from v25.0
advantage.read_only                100          GUIDED_CREATION, advantage_state(_info) are   S003 §Advantage+ Campaign Experience (Step 3,
                                                read-only                                     FAQ)
asc.objective                      100          ASC objective OUTCOME_SALES only              S003 §Advantage+ Shopping Campaigns Step 2
asc.buying_type                    100          ASC buying_type AUCTION only                  S003 §Advantage+ Shopping Campaigns Step 2
adset.name.required                100          name required                                 S003 §Ad Account Adsets (name Required)
adset.name.length                  100          name ≤ 400 characters                         S003 §Ad Account Adsets (name)
adset.campaign.required            100          campaign_id required                          S000/S002 Step 2; S003 §Create an Ad Set
adset.campaign.unknown             100          campaign_id is a campaign of this account     S003 §Ad Account Adsets (campaign_id)
adset.campaign.not_live            100          no new ad set in an ARCHIVED/DELETED campaign S003 §Manage Your Ad Object's Status
adset.billing_event.required       100          billing_event required                        S000/S002 Step 2 ("Required")
adset.billing_event.enum           100          billing_event enum                            S003 §Ad Account Adsets
adset.optimization_goal.enum       100          optimization_goal enum                        S003 §Ad Account Adsets
adset.destination_type.enum        100          destination_type enum                         S003 §Ad Account Adsets
adset.app_install_billing          100          billing APP_INSTALLS not with goal            S003 §Ad Account Adsets → Creating
                                                APP_INSTALLS
adset.targeting.required           100          targeting required                            S003 §Create an Ad Set; S000/S002 Step 2
adset.targeting.geo                100          targeting.geo_locations with countries (or    S003 §Ad Account Adsets ("countries is
                                                regions/cities/zips/…)                        required"); §Advantage+ Shopping Step 4
budget.campaign_vs_adset           100/1885621  ad set budget under a campaign budget         S003 §Handling Errors; §Ad Account, Ad Campaigns
                                                (campaign update: only with
                                                campaign_budget_switch="refuse")
adset.budget.required              100          daily or lifetime > 0 without campaign budget S003 §Ad Account Adsets (daily_budget)
                                                (create, and updates that clear it)
adset.lifetime.end_time            100          lifetime_budget requires end_time (end_time)  S003 §Ad Account Adsets (lifetime_budget)
adset.daily.duration               100          daily_budget only for > 24 h (daily_budget)   S003 §Ad Account Adsets (daily_budget)
adset.bid_amount.required          100          bid_amount for LOWEST_COST_WITH_BID_CAP /     S003 §Ad Account Adsets (bid_amount); S003
                                                COST_CAP, own or campaign strategy            §Ad Account, Ad Campaigns (bid_strategy)
adset.bid.automatic                100/1885204  bid_amount with an automatic strategy         S003 §Handling Errors (1885204)
                                                (LOWEST_COST_WITHOUT_CAP / MIN_ROAS)
adset.bid_amount.min               100          ≥ 2 cents per 1,000 for IMPRESSIONS/REACH     S003 §Ad Account Adsets (bid_amount)
                                                billing, ≥ 1 cent otherwise
adset.roas_floor.range             100          bid_constraints.roas_average_floor ∈          S003 §Advantage+ Shopping Campaigns Step 4
                                                [100, 10000000]
adset.roas_floor.required          100          LOWEST_COST_WITH_MIN_ROAS needs the floor     S003 §Advantage+ Shopping Campaigns Step 4
adset.lead_page                    100          goal LEAD_GENERATION needs promoted_object    S003 §Ad Account Adsets (promoted_object)
                                                .page_id
adset.spend_targets                100          daily_/lifetime_ min_spend_target/spend_cap   S003 §Ad Account Adsets
                                                need the matching campaign budget
adset.frequency_control            100          frequency_control_specs only for REACH /      S003 §Ad Account Adsets
                                                THRUPLAY
asc.one_adset                      100          one ad set per ASC campaign (campaign_id)     S003 §Advantage+ Shopping Campaigns Step 4
asc.billing_event                  100          ASC billing_event IMPRESSIONS only            S003 §Advantage+ Shopping Campaigns Step 4
asc.targeting                      100          ASC targeting: geo_locations only, ≤ 200      S003 §Advantage+ Shopping Campaigns Step 4
                                                regions
asc.ecbp.range                     100          existing_customer_budget_percentage 0–100     S003 §Advantage+ Shopping Campaigns Step 4
asc.ecbp.deprecated                100          existing_customer_budget_percentage refused   S003 §Advantage+ Campaign Experience
                                                from v25.0
msg.objective                      100/2446509  messaging destination needs objective         S000/S002 Step 1; S001 campaign table;
                                                ENGAGEMENT/SALES/TRAFFIC (+LEADS Messenger)   S003 §Handling Errors (2446509)
msg.billing_event                  100          messaging ad sets bill IMPRESSIONS            S000/S002 Step 2; S001 ad set list
msg.optimization_goal              100          multidestination CONVERSATIONS; IG Direct per S000 Step 2; S002 Step 2; S001 ad set table
                                                objective; Messenger CONVERSATIONS /
                                                IMPRESSIONS / OFFSITE_CONVERSIONS, leads
                                                LEAD_GENERATION / QUALITY_LEAD
msg.promoted_page                  100          promoted_object.page_id required              S000/S002 Step 2; S001 ad set list
msg.special_ad_categories          100          multidestination: categories NONE or []       S000 Step 1
msg.whatsapp_number                100/2446880  WhatsApp destination needs the Page's number  S000 Step 2 note; S003 §Handling Errors
msg.instagram_account              100          Instagram destination needs an IG account     S000 Step 2 note; S002
                                                connected to the Page
creative.spec.required             100          object_story_spec / object_story_id /         S003 §Create an Ad Creative; §Ad Account Ad
                                                asset_feed_spec / object_id required          Creatives
creative.story_spec                100          object_story_spec needs page_id and a *_data  S003 §Ad Account Ad Creatives
                                                (unless asset_feed_spec supplies the assets)  (object_story_spec); S001
creative.story_id                  100          object_story_id is <PAGE_ID>_<POST_ID>        S003 §Ad Account Ad Creatives; S000/S002
creative.dof_destinations          100          DOF_MESSAGING_DESTINATION needs               S000 Step 3 (asset_feed_spec)
                                                call_to_actions MESSAGE_PAGE/MESSENGER,
                                                WHATSAPP_MESSAGE/WHATSAPP,
                                                INSTAGRAM_MESSAGE/INSTAGRAM_DIRECT
creative.cta_destination           100          CTA type and value.app_destination agree      S000 Step 3; S002; S001 (value Required)
creative.icebreaker.title          100          ice-breaker title ≤ 80 characters             S000 Step 3 → Limitations
creative.icebreaker.response       100          ice-breaker response ≤ 300 characters         S000 Step 3 → Limitations
creative.welcome.text              100          message text ≤ 300 characters                 S000 Step 3 → Limitations
creative.instagram_ids             100/2238055  not both instagram_user_id and                S003 §Handling Errors (2238055 = 2446149;
                                                instagram_actor_id (or instagram_story_id and  §9.3 #5)
                                                source_instagram_media_id)
creative.instagram_access          100/1815199  the IG account is one the account may use     S003 §Troubleshooting → Error Codes
creative.asset_feed.unique         100/1815629  asset feed values unique                      S003 §Troubleshooting → Error Codes
creative.asset_feed.limits         100          ≤ 10 images/videos, ≤ 5 bodies/titles/…;      S003 §Asset Feed Spec → Restrictions
                                                titles ≤ 255, bodies ≤ 1024 characters
creative.image_hash.unknown        100          every image_hash (and asset feed image hash)  S003 §Asset Feed Spec ("images which are in
                                                is in the account's image library             the ad account's image library")
creative.video.unknown             100          every video_id is a video of the ad account   S003 §Video and Carousel Ads → Limitations
creative.immutable                 100          only name and status can change               S003 §Asynchronous and Batch Requests
ad.name.required                   100          name required                                 S003 §Ad Account Ads (name Required)
ad.adset.required                  100          adset_id required                             S003 §Ad Account Ads (adset_id)
ad.adset.unknown                   100          adset_id is an ad set of this account         S003 §Ad Account Ads
ad.adset.not_live                  100          no new ad in an ARCHIVED/DELETED ad set or    S003 §Manage Your Ad Object's Status
                                                campaign
ad.creative.required               100          creative required: {"creative_id"} or inline   S003 §Ad Account Ads (creative)
                                                spec
ad.creative.unknown                100          creative_id is a live creative of this        S003 §Ad Account Ads (creative)
                                                account
ad.bid_amount                      100          bid_amount on ads is no longer allowed        S003 §Ad Account Ads (bid_amount)
ad.schedule                        100          ad_schedule_* only for sales / app promotion  S003 §Ad Account Ads
msg.creative_destination           100          creative CTAs match the ad set's              S000 Step 3 ("needs to match with the
                                                destination_type                              destination_type"); S001; S002
ad.page_mismatch                   100/1885029  creative Page = promoted_object.page_id       S003 §Handling Errors (1885029)
ad.website_url                     100/2446383  TRAFFIC + WEBSITE destination needs a link    S003 §Handling Errors (2446383)
ad.adset_ended                     100/1487007  no edits of ads in an ad set past its end     S003 §Troubleshooting → Error Codes
=================================  ===========  ============================================  ===========================================

Behaviours without an error (also tested): ``object_story_id`` reuse returns the existing creative's id
(S003 §Ad Account Ad Creatives → Limitations); ``execution_options=["validate_only"]`` runs every rule
and answers ``{"success": true}`` without storing anything; an ad may create its creative inline with
``creative={"creative": {...}}`` or ``creative={<spec>}``.

Choices where the seeds contradict each other or are silent (SPEC-DIGEST §9.3):

- #3 create status: S000/S002 list ``DELETED``/``ARCHIVED`` for a new ad, the reference says "Only
  ACTIVE and PAUSED are valid during creation". We follow the reference for all three levels; status is
  optional and defaults to ``ACTIVE`` (S000/S002 "defaults to ACTIVE").
- #4 default bid strategy: a campaign gets ``LOWEST_COST_WITHOUT_CAP`` when it has a budget and nothing
  otherwise (the reference's "LOWEST_COST_WITH_BID_CAP is the default" would make every budget-only tree
  fail the bid_amount rule); an ad set sent only ``bid_amount`` gets ``LOWEST_COST_WITH_BID_CAP`` (ad-set
  reference), else ``LOWEST_COST_WITHOUT_CAP``.
- #5 ``2238055``: the Handling Errors table (instagram_user_id with instagram_actor_id, same text as
  2446149) is the one we answer; the Troubleshooting meaning (campaign budget too low) is answered with
  ``1885272`` instead.
- S000's example creative omits ``instagram_actor_id`` although its table marks it required: we do not
  require it (the Instagram account comes from the Page, checked on the ad set), so the seed's own payload
  succeeds.
- S001 lists ``CONVERSIONS`` as a Messenger goal, which is not in the optimization_goal enum; we read it
  as ``OFFSITE_CONVERSIONS``.
- The ASC MIN_ROAS example uses ``OFFSITE_CONVERSIONS`` while its table says ``VALUE`` only: we check the
  floor range and presence, not the goal.
- Switching an ad-set-budget campaign to a campaign budget: the seeds document no in-place path; a
  campaign update that sets a budget clears its ad sets' budgets (:func:`budget_switch`, configurable).
- Naive datetimes are read as UTC; time zone abbreviations PST/PDT/MST/MDT/CST/CDT/EST/EDT/UTC/GMT work.
- The object_story_id reuse index is kept per store and per account and filled as creatives are created
  through this module, so the lookup is O(1) (one scan per account the first time).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import re
import weakref
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from bulk_engine.protocol import catalog
from bulk_engine.protocol.catalog import (
    ASSET_FEED_LIMITS,
    ASSET_TEXT_LIMITS,
    AUTOMATIC_STRATEGIES,
    BID_REQUIRED_STRATEGIES,
    CTA_ALLOWED_APPS,
    CTA_APPS,
    DAY_S,
    GEO_KEYS,
    GUIDED_DESTINATIONS,
    ICEBREAKER_RESPONSE_MAX,
    ICEBREAKER_TITLE_MAX,
    INSTAGRAM_APP,
    INSTAGRAM_GOALS,
    MESSAGING_OBJECTIVES,
    MESSENGER_GOALS,
    MESSENGER_LEAD_GOALS,
    MESSENGER_OBJECTIVES,
    MIN_DAILY_BUDGET,
    MIN_SPEND_CAP,
    MULTI_DESTINATIONS,
    NAME_MAX,
    NO_SPEND_CAP,
    ROAS_FLOOR_RANGE,
    SCHEDULE_OBJECTIVES,
    SINGLE_DESTINATIONS,
    STORY_DATA_KEYS,
    TRAFFIC_OBJECTIVES,
    WELCOME_TEXT_MAX,
    WHATSAPP_APP,
)
from bulk_engine.protocol.spec_fields import BadTime, iter_ctas
from bulk_engine.protocol.spec_fields import creative_has_link as _creative_has_link
from bulk_engine.protocol.spec_fields import creative_page as _creative_page
from bulk_engine.protocol.spec_fields import cta_app as _cta_app
from bulk_engine.protocol.spec_fields import parse_time as parse_graph_time
from bulk_engine.protocol.spec_fields import promoted_page as _promoted_page
from bulk_engine.protocol.spec_fields import welcome_messages as _welcome_messages

from .errors import GraphAPIError
from .params import Params
from .status import CREATE_STATUSES
from .store import AD, ADSET, CAMPAIGN, CREATIVE, PAGE, VIDEO, Node, Store

if TYPE_CHECKING:
    from .graph import CallContext


class Rule(NamedTuple):
    code: int
    subcode: int | None
    title: str
    section: str


def _r(subcode: int | None, title: str, section: str) -> Rule:
    return Rule(100, subcode, title, section)


# One entry per documented rule; the module docstring renders the same table for readers.
RULES: dict[str, Rule] = {
    "exec.options.enum": _r(None, "Invalid execution option", "S003 §Ad Account Ads"),
    "exec.recommendations.alone": _r(None, "Recommendations can't be used alone", "S003 §Ad Account Adsets"),
    "exec.sync_review.alone": _r(None, "Synchronous ad review needs validate_only", "S003 §Ad Account Ads"),
    "create.status": _r(None, "Invalid status", "S003 §Ad Account, Ad Campaigns"),
    "campaign.name.required": _r(None, "Missing campaign name", "S003 §Create an Ad Campaign"),
    "campaign.objective.required": _r(None, "Missing objective", "S003 §Create an Ad Campaign"),
    "campaign.objective.enum": _r(None, "Invalid objective", "S003 §Ad Account, Ad Campaigns"),
    "campaign.sac.required": _r(None, "Special ad categories required", "S003 §Ad Account, Ad Campaigns"),
    "campaign.sac.enum": _r(None, "Invalid special ad category", "S003 §Ad Account, Ad Campaigns"),
    "campaign.buying_type.enum": _r(None, "Invalid buying type", "S003 §Ad Account, Ad Campaigns"),
    "bid_strategy.enum": _r(None, "Invalid bid strategy", "S003 §Ad Account Adsets"),
    "campaign.spend_cap.min": _r(2446307, "Spend Cap Too Low", "S003 §Handling Errors"),
    "budget.too_low": _r(1885272, "Budget Too Low", "S003 §Handling Errors"),
    "budget.too_low.update": _r(1885650, "Your Budget Is Too Low", "S003 §Handling Errors"),
    "time.end_in_past": _r(1487033, "End Date Must Be In The Future", "S003 §Troubleshooting"),
    "time.invalid": _r(None, "Invalid date", "S003 §Ad Account Adsets"),
    "asc.removed_v25": _r(None, "Smart promotion type no longer supported", "S003 §Advantage+ Campaign"),
    "advantage.read_only": _r(None, "Read-only field", "S003 §Advantage+ Campaign Experience"),
    "asc.objective": _r(None, "Objective not available for ASC", "S003 §Advantage+ Shopping Campaigns"),
    "asc.buying_type": _r(None, "Buying type not available for ASC", "S003 §Advantage+ Shopping Campaigns"),
    "adset.name.required": _r(None, "Missing ad set name", "S003 §Ad Account Adsets"),
    "adset.name.length": _r(None, "Name too long", "S003 §Ad Account Adsets"),
    "adset.campaign.required": _r(None, "Missing campaign", "S003 §Create an Ad Set"),
    "adset.campaign.unknown": _r(None, "Invalid campaign", "S003 §Ad Account Adsets"),
    "adset.campaign.not_live": _r(None, "Campaign not live", "S003 §Manage Your Ad Object's Status"),
    "adset.billing_event.required": _r(None, "Missing billing event", "S000 Step 2"),
    "adset.billing_event.enum": _r(None, "Invalid billing event", "S003 §Ad Account Adsets"),
    "adset.optimization_goal.enum": _r(None, "Invalid optimization goal", "S003 §Ad Account Adsets"),
    "adset.destination_type.enum": _r(None, "Invalid destination type", "S003 §Ad Account Adsets"),
    "adset.app_install_billing": _r(None, "App install billing not supported", "S003 §Ad Account Adsets"),
    "adset.targeting.required": _r(None, "Missing targeting", "S003 §Create an Ad Set"),
    "adset.targeting.geo": _r(None, "Missing location", "S003 §Ad Account Adsets"),
    "budget.campaign_vs_adset": _r(1885621, "Can't Set Ad Set Budget", "S003 §Handling Errors"),
    "adset.budget.required": _r(None, "Missing budget", "S003 §Ad Account Adsets"),
    "adset.lifetime.end_time": _r(None, "End time required", "S003 §Ad Account Adsets"),
    "adset.daily.duration": _r(None, "Ad set too short for a daily budget", "S003 §Ad Account Adsets"),
    "adset.bid_amount.required": _r(None, "Bid amount required", "S003 §Ad Account Adsets"),
    "adset.bid.automatic": _r(1885204, "Bid Must Be Automatic", "S003 §Handling Errors"),
    "adset.bid_amount.min": _r(None, "Bid amount too low", "S003 §Ad Account Adsets"),
    "adset.roas_floor.range": _r(None, "Invalid ROAS floor", "S003 §Advantage+ Shopping Campaigns"),
    "adset.roas_floor.required": _r(None, "ROAS floor required", "S003 §Advantage+ Shopping Campaigns"),
    "adset.lead_page": _r(None, "Page required for lead generation", "S003 §Ad Account Adsets"),
    "adset.spend_targets": _r(None, "Campaign budget required", "S003 §Ad Account Adsets"),
    "adset.frequency_control": _r(None, "Frequency control not available", "S003 §Ad Account Adsets"),
    "asc.one_adset": _r(None, "Only one ad set", "S003 §Advantage+ Shopping Campaigns"),
    "asc.billing_event": _r(
        None, "Billing event not available for ASC", "S003 §Advantage+ Shopping Campaigns"
    ),
    "asc.targeting": _r(None, "Invalid targeting", "S003 §Advantage+ Shopping Campaigns"),
    "asc.ecbp.range": _r(None, "Invalid percentage", "S003 §Advantage+ Shopping Campaigns"),
    "asc.ecbp.deprecated": _r(None, "Field deprecated", "S003 §Advantage+ Campaign Experience"),
    "msg.objective": _r(2446509, "Invalid Destination Type", "S000/S002 Step 1; S003 §Handling Errors"),
    "msg.billing_event": _r(None, "Billing event not available for messaging ads", "S000/S002 Step 2"),
    "msg.optimization_goal": _r(
        None, "Optimization goal not available for messaging ads", "S000/S002 Step 2; S001"
    ),
    "msg.promoted_page": _r(None, "Page required for messaging ads", "S000/S002 Step 2"),
    "msg.special_ad_categories": _r(None, "Special ad categories not supported", "S000 Step 1"),
    "msg.whatsapp_number": _r(2446880, "WhatsApp Number Disconnected", "S000 Step 2; S003 §Handling Errors"),
    "msg.instagram_account": _r(None, "No Instagram account", "S000 Step 2; S002"),
    "creative.spec.required": _r(None, "Missing creative content", "S003 §Create an Ad Creative"),
    "creative.story_spec": _r(None, "Invalid object story spec", "S003 §Ad Account Ad Creatives"),
    "creative.story_id": _r(None, "Invalid post id", "S003 §Ad Account Ad Creatives"),
    "creative.dof_destinations": _r(None, "Invalid destinations", "S000 Step 3"),
    "creative.cta_destination": _r(None, "Invalid call to action", "S000 Step 3; S002"),
    "creative.icebreaker.title": _r(None, "Ice breaker too long", "S000 Step 3 Limitations"),
    "creative.icebreaker.response": _r(None, "Ice breaker response too long", "S000 Step 3 Limitations"),
    "creative.welcome.text": _r(None, "Welcome message too long", "S000 Step 3 Limitations"),
    "creative.instagram_ids": _r(2238055, "Conflicting Instagram Ids", "S003 §Handling Errors"),
    "creative.instagram_access": _r(1815199, "No Access To Instagram Account", "S003 §Troubleshooting"),
    "creative.asset_feed.unique": _r(1815629, "Asset Values Not Unique", "S003 §Troubleshooting"),
    "creative.asset_feed.limits": _r(None, "Too many assets", "S003 §Asset Feed Spec"),
    "creative.image_hash.unknown": _r(
        None, "Image Not In Library", "S003 §Asset Feed Spec; §Ad Account Ad Images"
    ),
    "creative.video.unknown": _r(
        None, "Video Not In Ad Account", "S003 §Video and Carousel Ads → Limitations"
    ),
    "creative.immutable": _r(None, "Ad creative cannot be edited", "S003 §Asynchronous and Batch Requests"),
    "ad.name.required": _r(None, "Missing ad name", "S003 §Ad Account Ads"),
    "ad.adset.required": _r(None, "Missing ad set", "S003 §Ad Account Ads"),
    "ad.adset.unknown": _r(None, "Invalid ad set", "S003 §Ad Account Ads"),
    "ad.adset.not_live": _r(None, "Ad set not live", "S003 §Manage Your Ad Object's Status"),
    "ad.creative.required": _r(None, "Missing creative", "S003 §Ad Account Ads"),
    "ad.creative.unknown": _r(None, "Invalid creative", "S003 §Ad Account Ads"),
    "ad.bid_amount": _r(None, "Bid amount not allowed on ads", "S003 §Ad Account Ads"),
    "ad.schedule": _r(None, "Ad scheduling not available", "S003 §Ad Account Ads"),
    "msg.creative_destination": _r(None, "Creative does not match destination", "S000 Step 3; S001; S002"),
    "ad.page_mismatch": _r(1885029, "Page Mismatch", "S003 §Handling Errors"),
    "ad.website_url": _r(2446383, "Website URL Required", "S003 §Handling Errors"),
    "ad.adset_ended": _r(1487007, "Ad Set Ended", "S003 §Troubleshooting"),
}

Blame = str | tuple[str, ...]


def fail(rule: str, msg: str, *blame: Blame) -> GraphAPIError:
    """The error of ``rule``: its code/subcode, the user title/message, and the blamed field paths."""
    spec = RULES[rule]
    specs = [[b] if isinstance(b, str) else list(b) for b in blame]
    return GraphAPIError(
        code=spec.code,
        message=f"(#{spec.code}) Invalid parameter" if spec.subcode else f"(#{spec.code}) {msg}",
        subcode=spec.subcode,
        type="OAuthException",
        user_title=spec.title,
        user_msg=msg,
        blame_field_specs=specs or None,
    )


# --- enums ----------------------------------------------------------------------------------------
OBJECTIVES = frozenset(catalog.OBJECTIVES)
SPECIAL_AD_CATEGORIES = frozenset(catalog.SPECIAL_AD_CATEGORIES)
BID_STRATEGIES = frozenset(catalog.BID_STRATEGIES)
BUYING_TYPES = frozenset(catalog.BUYING_TYPES)
BILLING_EVENTS = frozenset(catalog.BILLING_EVENTS)
OPTIMIZATION_GOALS = frozenset(catalog.OPTIMIZATION_GOALS)
DESTINATION_TYPES = frozenset(catalog.DESTINATION_TYPES)
SMART_PROMOTION_TYPES = {"AUTOMATED_SHOPPING_ADS", "SMART_APP_PROMOTION", "GUIDED_CREATION"}
ASC = "AUTOMATED_SHOPPING_ADS"
REMOVED_IN_V25 = {"AUTOMATED_SHOPPING_ADS", "SMART_APP_PROMOTION"}

EXECUTION_OPTIONS = {
    CAMPAIGN: {"validate_only", "include_recommendations"},
    ADSET: {"validate_only", "include_recommendations"},
    AD: {"validate_only", "include_recommendations", "synchronous_ad_review"},
    CREATIVE: {"validate_only"},
}


# --- small readers --------------------------------------------------------------------------------
def enum(
    ctx: CallContext, key: str, allowed: frozenset[str], rule: str, *, required_rule: str | None = None
) -> str | None:
    value = ctx.params.str(key)
    if value is None:
        if required_rule is not None:
            raise fail(required_rule, f"The parameter {key} is required", key)
        return None
    if value not in allowed:
        raise fail(rule, f"Param {key} must be one of {{{', '.join(sorted(allowed))}}} - got {value}", key)
    return value


def _copy_params(ctx: CallContext, keys: tuple[str, ...], json_keys: tuple[str, ...] = ()) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key in keys:
        value = ctx.params.str(key)
        if value is not None:
            data[key] = value
    for key in json_keys:
        value = ctx.params.json(key)
        if value is not None:
            data[key] = value
    return data


def _create_status(ctx: CallContext) -> str:
    value = ctx.params.str("status") or "ACTIVE"
    if value not in CREATE_STATUSES:  # reference: "Only ACTIVE and PAUSED are valid during creation"
        raise fail(
            "create.status",
            f"Param status must be one of {{ACTIVE, PAUSED}} during creation - got {value}",
            "status",
        )
    return value


def _amount(params: Params, key: str) -> int | None:
    value = params.int(key)
    if value is not None and value < 0:
        raise fail("budget.too_low", f"Param {key} must be a non-negative integer", key)
    return value


def _int(value: Any) -> int:
    try:
        return int(str(value).strip()) if value not in (None, "") else 0
    except ValueError:
        return 0


def parse_time(value: Any, key: str) -> float | None:
    """A Graph datetime → epoch (``0``/empty → None); a bad one is the documented parameter error."""
    try:
        return parse_graph_time(value)
    except BadTime:
        raise fail(
            "time.invalid",
            f"Param {key} must be a datetime like 2015-03-12 23:59:59-07:00 or a UNIX time",
            key,
        ) from None


def _future(ctx: CallContext, value: Any, key: str) -> float | None:
    when = parse_time(value, key)
    if when is not None and when <= ctx.now:
        raise fail(
            "time.end_in_past",
            "Your campaign's end date must be in the future. Please choose a different end date and try again.",
            key,
        )
    return when


def _min_daily_budget(account: Node | None) -> int:
    return (
        _int(account.get("min_daily_budget"))
        if account and account.get("min_daily_budget")
        else MIN_DAILY_BUDGET
    )


def _check_budget_floor(
    rule: str, daily: int | None, lifetime: int | None, days: float | None, account: Node | None
) -> None:
    """``budget.too_low``: daily ≥ the account minimum; lifetime ≥ minimum × days (at least one day)."""
    floor = _min_daily_budget(account)
    if daily is not None and 0 < daily < floor:
        raise fail(
            rule, f"Your budget is too low. It must be at least {floor} (cents) per day.", "daily_budget"
        )
    if lifetime is not None and lifetime > 0:
        needed = floor * max(1, math.ceil(days or 1))
        if lifetime < needed:
            raise fail(
                rule,
                f"Your lifetime budget is too low. It must be at least {needed} (cents).",
                "lifetime_budget",
            )


def _check_execution_options(ctx: CallContext, type_: str) -> list[str]:
    options = [str(o) for o in ctx.params.list("execution_options") or []]
    allowed = EXECUTION_OPTIONS.get(type_, {"validate_only"})
    for opt in options:
        if opt not in allowed:
            raise fail(
                "exec.options.enum",
                f"Param execution_options[0] must be one of {{{', '.join(sorted(allowed))}}} - got {opt}",
                "execution_options",
            )
    if "validate_only" not in options:
        if options == ["include_recommendations"]:
            raise fail(
                "exec.recommendations.alone",
                "include_recommendations cannot be used by itself",
                "execution_options",
            )
        if "synchronous_ad_review" in options:
            raise fail(
                "exec.sync_review.alone",
                "synchronous_ad_review should always be specified with validate_only",
                "execution_options",
            )
    return options


def _will_store(options: list[str]) -> bool:
    return "validate_only" not in options


# --- entry points ---------------------------------------------------------------------------------
def validate_create(ctx: CallContext, account: Node, type_: str) -> tuple[dict[str, Any], Node | None]:
    """Validate a create on an ad-account edge; returns (stored data, parent node)."""
    options = _check_execution_options(ctx, type_)
    if type_ == CAMPAIGN:
        return _campaign(ctx, account), None
    if type_ == ADSET:
        return _adset(ctx, account)
    if type_ == CREATIVE:
        return _creative(ctx, account), None
    if type_ == AD:
        return _ad(ctx, account, _will_store(options))
    raise GraphAPIError(code=100, message=f"(#100) cannot create {type_}")


# --- campaigns ------------------------------------------------------------------------------------
def _campaign(ctx: CallContext, account: Node) -> dict[str, Any]:
    params = ctx.params
    data = _copy_params(
        ctx,
        (
            "spend_cap",
            "start_time",
            "stop_time",
            "topline_id",
            "source_campaign_id",
            "special_ad_category_country",
            "is_adset_budget_sharing_enabled",
        ),
        ("adlabels", "promoted_object", "budget_schedule_specs"),
    )
    name = params.str("name")
    if name is None:
        raise fail("campaign.name.required", "The parameter name is required", "name")
    data["name"] = name
    data["objective"] = enum(
        ctx, "objective", OBJECTIVES, "campaign.objective.enum", required_rule="campaign.objective.required"
    )
    data["special_ad_categories"] = _special_ad_categories(params)
    data["status"] = _create_status(ctx)
    data["buying_type"] = enum(ctx, "buying_type", BUYING_TYPES, "campaign.buying_type.enum") or "AUCTION"
    strategy = enum(ctx, "bid_strategy", BID_STRATEGIES, "bid_strategy.enum")
    for key in ("advantage_state", "advantage_state_info"):
        if params.has(key):
            raise fail("advantage.read_only", f"{key} is read-only: it is set by the Advantage+ levers", key)
    smart = params.str("smart_promotion_type")
    if smart is not None:
        if smart not in SMART_PROMOTION_TYPES:
            raise fail(
                "advantage.read_only",
                f"Param smart_promotion_type must be one of {{AUTOMATED_SHOPPING_ADS, SMART_APP_PROMOTION}}"
                f" - got {smart}",
                "smart_promotion_type",
            )
        if smart == "GUIDED_CREATION":
            raise fail(
                "advantage.read_only",
                "smart_promotion_type GUIDED_CREATION is read-only: campaigns reflect it once the Advantage+ "
                "levers are on",
                "smart_promotion_type",
            )
        if smart in REMOVED_IN_V25 and ctx.version_number >= 25:
            raise fail(
                "asc.removed_v25",
                f"Beginning with v25.0 campaigns can no longer be created with smart_promotion_type={smart}. "
                "Create an Advantage+ campaign with Advantage+ budget, audience and placements instead.",
                "smart_promotion_type",
            )
        if smart == ASC:
            if data["objective"] != "OUTCOME_SALES":
                raise fail(
                    "asc.objective",
                    "ASC can be created only with the OUTCOME_SALES campaign objective",
                    "objective",
                )
            if data["buying_type"] != "AUCTION":
                raise fail(
                    "asc.buying_type",
                    "Advantage+ shopping campaigns only support the value AUCTION",
                    "buying_type",
                )
        data["smart_promotion_type"] = smart
    daily = _amount(params, "daily_budget")
    lifetime = _amount(params, "lifetime_budget")
    for key, value in (("daily_budget", daily), ("lifetime_budget", lifetime)):
        if value is not None:
            data[key] = str(value)
    _check_budget_floor("budget.too_low", daily, lifetime, None, account)
    _check_spend_cap(params)
    _future(ctx, data.get("stop_time"), "stop_time")
    if strategy:
        data["bid_strategy"] = strategy
    elif (daily or 0) > 0 or (lifetime or 0) > 0:
        data["bid_strategy"] = "LOWEST_COST_WITHOUT_CAP"  # §9.3 #4, see the module docstring
    return data


def _special_ad_categories(params: Params) -> list[Any]:
    categories = params.list("special_ad_categories")
    if categories is None:
        raise fail(
            "campaign.sac.required",
            "The special_ad_categories parameter is required",
            "special_ad_categories",
        )
    for i, cat in enumerate(categories):
        if cat not in SPECIAL_AD_CATEGORIES:
            raise fail(
                "campaign.sac.enum",
                f"Param special_ad_categories[{i}] must be one of "
                f"{{{', '.join(sorted(SPECIAL_AD_CATEGORIES))}}} - got {cat}",
                "special_ad_categories",
            )
    return categories


def _check_spend_cap(params: Params) -> None:
    cap = params.int("spend_cap")
    if cap is not None and cap != NO_SPEND_CAP and cap < MIN_SPEND_CAP:
        raise fail(
            "campaign.spend_cap.min",
            f"Campaign group spend cap is less than minimum ({MIN_SPEND_CAP} cents, $100 USD)",
            "spend_cap",
        )


def _has_budget(node: Node | dict[str, Any]) -> bool:
    data = node.data if isinstance(node, Node) else node
    return _int(data.get("daily_budget")) > 0 or _int(data.get("lifetime_budget")) > 0


# --- ad sets --------------------------------------------------------------------------------------
def _adset(ctx: CallContext, account: Node) -> tuple[dict[str, Any], Node]:
    params = ctx.params
    data = _copy_params(
        ctx,
        ("source_adset_id", "dsa_beneficiary", "dsa_payor", "is_dynamic_creative"),
        (
            "targeting",
            "promoted_object",
            "adlabels",
            "bid_constraints",
            "frequency_control_specs",
            "attribution_spec",
        ),
    )
    name = params.str("name")
    if name is None:
        raise fail("adset.name.required", "The parameter name is required", "name")
    if len(name) > NAME_MAX:
        raise fail("adset.name.length", f"Param name must be at most {NAME_MAX} characters", "name")
    data["name"] = name
    campaign_id = params.str("campaign_id")
    if campaign_id is None:
        raise fail("adset.campaign.required", "The parameter campaign_id is required", "campaign_id")
    campaign = ctx.store.get(campaign_id)
    if campaign is None or campaign.type != CAMPAIGN or campaign.account_id != account.id:
        raise fail("adset.campaign.unknown", f"Invalid campaign_id {campaign_id}", "campaign_id")
    if campaign.status in ("ARCHIVED", "DELETED"):
        raise fail(
            "adset.campaign.not_live",
            f"Campaign {campaign.id} is {campaign.status.lower()}: ad sets can't be added to it",
            "campaign_id",
        )
    data["campaign_id"] = campaign.id
    data["status"] = _create_status(ctx)
    billing = enum(
        ctx,
        "billing_event",
        BILLING_EVENTS,
        "adset.billing_event.enum",
        required_rule="adset.billing_event.required",
    )
    data["billing_event"] = billing
    goal = enum(ctx, "optimization_goal", OPTIMIZATION_GOALS, "adset.optimization_goal.enum")
    destination = enum(ctx, "destination_type", DESTINATION_TYPES, "adset.destination_type.enum")
    if destination is not None:
        data["destination_type"] = destination
    if goal is None and destination in GUIDED_DESTINATIONS:
        raise fail(
            "msg.optimization_goal", "The parameter optimization_goal is required", "optimization_goal"
        )
    data["optimization_goal"] = goal = goal or "LINK_CLICKS"
    if billing == "APP_INSTALLS" and goal == "APP_INSTALLS":
        raise fail(
            "adset.app_install_billing",
            "Mobile App Install CPA Billing will no longer be supported. The billing event cannot be App Install "
            "if the Optimization goal is App Install.",
            "billing_event",
        )
    # Times: start defaults to now; end_time=0 or empty means ongoing (S003 §Ad Account Adsets).
    start_raw = params.get("start_time") if params.has("start_time") else params.get("time_start")
    end_raw = params.get("end_time") if params.has("end_time") else params.get("time_stop")
    start = parse_time(start_raw, "start_time")
    end = _future(ctx, end_raw, "end_time")
    if start_raw not in (None, ""):
        data["start_time"] = str(start_raw)
    if end_raw not in (None, ""):
        data["end_time"] = str(end_raw)
    _check_targeting(data.get("targeting"), params.has("targeting"))
    # Budgets (S003 §Ad Account Adsets; 1885621 S003 §Handling Errors).
    daily = _amount(params, "daily_budget")
    lifetime = _amount(params, "lifetime_budget")
    bid_amount = params.int("bid_amount")
    for key, value in (("daily_budget", daily), ("lifetime_budget", lifetime), ("bid_amount", bid_amount)):
        if value is not None:
            data[key] = str(value)
    _check_adset_budgets(ctx, account, campaign, daily, lifetime, start, end, params.has("daily_budget"))
    _check_spend_targets(params, campaign, data)
    strategy = enum(ctx, "bid_strategy", BID_STRATEGIES, "bid_strategy.enum")
    effective = _check_bid(strategy, campaign, bid_amount, billing, data.get("bid_constraints"))
    if strategy:
        data["bid_strategy"] = strategy
    elif effective and not campaign.get("bid_strategy"):
        data["bid_strategy"] = effective
    if data.get("frequency_control_specs") is not None and goal not in ("REACH", "THRUPLAY"):
        raise fail(
            "adset.frequency_control",
            "Writes to frequency_control_specs are only available in ad sets where REACH and THRUPLAY are the "
            "performance goal",
            "frequency_control_specs",
        )
    promoted = data.get("promoted_object")
    if goal == "LEAD_GENERATION" and not _promoted_page(promoted):
        raise fail(
            "adset.lead_page",
            "When optimization_goal is LEAD_GENERATION, page_id needs to be passed as promoted_object",
            ("promoted_object", "page_id"),
        )
    if campaign.get("smart_promotion_type") == ASC:
        _check_asc_adset(ctx, campaign, billing, data.get("targeting"))
    if params.has("existing_customer_budget_percentage"):
        data["existing_customer_budget_percentage"] = _check_ecbp(ctx, params)
    if destination is not None:
        _check_messaging_adset(ctx, campaign, destination, billing, goal, promoted)
    return data, campaign


def _check_targeting(targeting: Any, given: bool) -> None:
    if not given:
        raise fail("adset.targeting.required", "The parameter targeting is required", "targeting")
    if not isinstance(targeting, dict):
        raise fail("adset.targeting.geo", "Param targeting must be a targeting spec object", "targeting")
    geo = targeting.get("geo_locations")
    if not isinstance(geo, dict) or not any(geo.get(k) for k in GEO_KEYS):
        raise fail(
            "adset.targeting.geo",
            "Targeting spec must include geo_locations with countries (or regions, cities, zips, places…)",
            ("targeting", "geo_locations"),
        )


def _check_adset_budgets(
    ctx: CallContext,
    account: Node,
    campaign: Node,
    daily: int | None,
    lifetime: int | None,
    start: float | None,
    end: float | None,
    daily_given: bool,
) -> None:
    own = (daily or 0) > 0 or (lifetime or 0) > 0
    if own and _has_budget(campaign):
        raise fail(
            "budget.campaign_vs_adset",
            "You can only set an ad set budget or a campaign budget.",
            "daily_budget" if (daily or 0) > 0 else "lifetime_budget",
        )
    if not own and not _has_budget(campaign):
        raise fail(
            "adset.budget.required",
            "Either daily_budget or lifetime_budget must be greater than 0",
            "daily_budget",
        )
    if lifetime is not None and lifetime > 0 and end is None:
        raise fail(
            "adset.lifetime.end_time", "end_time is required when lifetime_budget is specified", "end_time"
        )
    begin = start if start is not None else ctx.now
    if daily_given and (daily or 0) > 0 and end is not None and end - begin <= DAY_S:
        raise fail(
            "adset.daily.duration",
            "daily_budget is allowed only for ad sets with a duration (difference between end_time and "
            "start_time) longer than 24 hours",
            "daily_budget",
        )
    days = (end - begin) / DAY_S if end is not None else None
    _check_budget_floor("budget.too_low", daily, lifetime, days, account)


def _check_spend_targets(params: Params, campaign: Node, data: dict[str, Any]) -> None:
    for key, needs in (
        ("daily_min_spend_target", "daily_budget"),
        ("daily_spend_cap", "daily_budget"),
        ("lifetime_min_spend_target", "lifetime_budget"),
        ("lifetime_spend_cap", "lifetime_budget"),
    ):
        value = params.int(key)
        if value is None:
            continue
        if _int(campaign.get(needs)) <= 0:
            raise fail(
                "adset.spend_targets",
                f"To use {key}, {needs.replace('_', ' ')} must be specified in the Campaign",
                key,
            )
        data[key] = str(value)


def _check_bid(
    strategy: str | None, campaign: Node, bid_amount: int | None, billing: str | None, constraints: Any
) -> str | None:
    """Bid rules; returns the ad set's effective strategy (own, the campaign's, or the §9.3 #4 default)."""
    effective = strategy or campaign.get("bid_strategy")
    if effective is None:
        effective = "LOWEST_COST_WITH_BID_CAP" if bid_amount is not None else "LOWEST_COST_WITHOUT_CAP"
    if effective in BID_REQUIRED_STRATEGIES and bid_amount is None:
        source = "" if strategy else " of the campaign"
        raise fail(
            "adset.bid_amount.required",
            f"bid_amount is required when the bid_strategy{source} is {effective}",
            "bid_amount",
        )
    if bid_amount is not None and effective in AUTOMATIC_STRATEGIES:
        raise fail(
            "adset.bid.automatic",
            "You need to set your bid to automatic for the chosen optimization. Remove any billing or bid info "
            "or change your optimization.",
            "bid_amount",
        )
    if bid_amount is not None:
        floor = 2 if billing in ("IMPRESSIONS", "REACH") else 1
        if bid_amount < floor:
            raise fail(
                "adset.bid_amount.min",
                f"bid_amount must be at least {floor} cents for billing_event {billing}",
                "bid_amount",
            )
    floor_value = constraints.get("roas_average_floor") if isinstance(constraints, dict) else None
    if floor_value is not None:
        low, high = ROAS_FLOOR_RANGE
        if (
            not isinstance(floor_value, (int, float))
            or isinstance(floor_value, bool)
            or not low <= floor_value <= high
        ):
            raise fail(
                "adset.roas_floor.range",
                f"The valid range of roas_average_floor is [{low}, {high}], inclusive",
                ("bid_constraints", "roas_average_floor"),
            )
    if effective == "LOWEST_COST_WITH_MIN_ROAS" and floor_value is None:
        raise fail(
            "adset.roas_floor.required",
            "LOWEST_COST_WITH_MIN_ROAS requires bid_constraints.roas_average_floor",
            ("bid_constraints", "roas_average_floor"),
        )
    return str(effective)


def _check_ecbp(ctx: CallContext, params: Params) -> str:
    key = "existing_customer_budget_percentage"
    if ctx.version_number >= 25:
        raise fail(
            "asc.ecbp.deprecated",
            f"{key} is deprecated from v25.0: use two ad sets with custom audiences instead",
            key,
        )
    raw = params.str(key)
    try:
        value = float(str(raw))
    except ValueError:
        value = -1.0
    if not 0 <= value <= 100:
        raise fail("asc.ecbp.range", f"Param {key} must be between 0 and 100 - got {raw}", key)
    return str(raw)


def _check_asc_adset(ctx: CallContext, campaign: Node, billing: str | None, targeting: Any) -> None:
    if any(s.status != "DELETED" for s in ctx.store.children(campaign.id, ADSET)):
        raise fail("asc.one_adset", "Only one Ad Set can be associated with each ASC campaign", "campaign_id")
    if billing != "IMPRESSIONS":
        raise fail(
            "asc.billing_event",
            "Only IMPRESSIONS is supported for Advantage+ shopping campaigns",
            "billing_event",
        )
    extra = sorted(k for k in targeting if k != "geo_locations") if isinstance(targeting, dict) else []
    if extra:
        raise fail(
            "asc.targeting",
            f"Only geo_locations are allowed in an Advantage+ shopping ad set's targeting - got {extra[0]}",
            ("targeting", extra[0]),
        )
    regions = targeting.get("geo_locations", {}).get("regions") if isinstance(targeting, dict) else None
    if isinstance(regions, list) and len(regions) > 200:
        raise fail(
            "asc.targeting", "At most 200 regions can be targeted", ("targeting", "geo_locations", "regions")
        )


def _check_messaging_adset(
    ctx: CallContext, campaign: Node, destination: str, billing: str | None, goal: str, promoted: Any
) -> None:
    """S000 / S001 / S002 ad set rules for click-to-message destinations."""
    apps = MULTI_DESTINATIONS.get(destination) or SINGLE_DESTINATIONS.get(destination)
    if apps is None:
        return
    objective = str(campaign.get("objective"))
    if destination in GUIDED_DESTINATIONS:
        allowed = MESSENGER_OBJECTIVES if destination == "MESSENGER" else MESSAGING_OBJECTIVES
        if objective not in allowed:
            raise fail(
                "msg.objective",
                f"The ad campaign destination type is not valid: {destination} needs a campaign objective in "
                f"{{{', '.join(sorted(allowed))}}} - got {objective}",
                "destination_type",
            )
        if billing != "IMPRESSIONS":
            raise fail(
                "msg.billing_event",
                f"billing_event must be IMPRESSIONS for {destination} ads",
                "billing_event",
            )
        goals = _messaging_goals(destination, objective)
        if goal not in goals:
            raise fail(
                "msg.optimization_goal",
                f"optimization_goal must be one of {{{', '.join(sorted(goals))}}} for {destination} ads with "
                f"objective {objective} - got {goal}",
                "optimization_goal",
            )
        if destination in MULTI_DESTINATIONS:
            categories = campaign.get("special_ad_categories") or []
            if any(c != "NONE" for c in categories):
                raise fail(
                    "msg.special_ad_categories",
                    "Special ad categories are not supported for ads that click to multidestination: the campaign's"
                    " special_ad_categories must be NONE or an empty array",
                    "special_ad_categories",
                )
    page_id = _promoted_page(promoted)
    if page_id is None:
        raise fail(
            "msg.promoted_page",
            f"promoted_object.page_id is required for {destination} ads",
            ("promoted_object", "page_id"),
        )
    page = ctx.store.get(page_id)
    page_data = page.data if page is not None and page.type == PAGE else {}
    if WHATSAPP_APP in apps and not page_data.get("whatsapp_number"):
        raise fail(
            "msg.whatsapp_number",
            "The WhatsApp number connected to your Facebook page or Instagram profile was disconnected. You can "
            "run this ad again when you reconnect your WhatsApp account.",
            ("promoted_object", "page_id"),
        )
    if INSTAGRAM_APP in apps and not page_data.get("instagram_business_account"):
        raise fail(
            "msg.instagram_account",
            f"Page {page_id} has no Instagram business account connected, which {destination} requires",
            ("promoted_object", "page_id"),
        )


def _messaging_goals(destination: str, objective: str) -> frozenset[str]:
    if destination in MULTI_DESTINATIONS:
        return frozenset({"CONVERSATIONS"})
    if destination == "INSTAGRAM_DIRECT":
        return INSTAGRAM_GOALS.get(objective, frozenset())
    return MESSENGER_LEAD_GOALS if objective == "OUTCOME_LEADS" else MESSENGER_GOALS


# --- creatives ------------------------------------------------------------------------------------
def _creative(ctx: CallContext, account: Node) -> dict[str, Any]:
    data = _copy_params(
        ctx,
        (
            "name",
            "object_story_id",
            "object_id",
            "instagram_user_id",
            "instagram_actor_id",
            "instagram_story_id",
            "image_hash",
            "image_url",
            "url_tags",
            "authorization_category",
            "body",
            "title",
            "link_url",
            "object_url",
            "source_instagram_media_id",
            "privacy_url",
        ),
        (
            "object_story_spec",
            "asset_feed_spec",
            "degrees_of_freedom_spec",
            "call_to_action",
            "adlabels",
            "contextual_multi_ads",
            "creative_sourcing_spec",
            "product_data",
        ),
    )
    pwm = ctx.params.get("page_welcome_message")
    if pwm is not None:
        data["page_welcome_message"] = pwm
    if not any(k in data for k in ("object_story_spec", "object_story_id", "asset_feed_spec", "object_id")):
        raise fail(
            "creative.spec.required",
            "The parameter object_story_spec is required (or object_story_id, object_id or asset_feed_spec)",
            "object_story_spec",
        )
    spec = data.get("object_story_spec")
    if spec is not None:
        _check_story_spec(spec, "asset_feed_spec" in data)
    story = data.get("object_story_id")
    if story is not None and not re.fullmatch(r"\d+_\d+", story):
        raise fail(
            "creative.story_id",
            f"Param object_story_id must look like <PAGE_ID>_<POST_ID> - got {story}",
            "object_story_id",
        )
    _check_instagram_ids(ctx, data)
    _check_ctas(data)
    feed = data.get("asset_feed_spec")
    if feed is not None:
        _check_asset_feed(feed)
    for path, value in _welcome_messages(data):
        _check_welcome_message(value, tuple(str(part) for part in path))
    if ctx.config.check_creative_media:
        _check_media(ctx, account, data)
    data.setdefault("name", f"Creative {ctx.store.new_id()[-6:]}")
    data["status"] = "ACTIVE"
    return data


def image_node_id(account_id: str, image_hash: str) -> str:
    """Images are account-scoped and keyed by their hash (``<account number>:<hash>``, as Graph's AdImage id)."""
    return f"{account_id.removeprefix('act_')}:{image_hash}"


def _media_refs(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, str, tuple[str, ...]]]:
    """Every ``("image", hash, path)`` / ``("video", id, path)`` a creative references, at any depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            here = (*path, str(key))
            if key == "image_hash" and isinstance(item, str) and item:
                yield "image", item, here
            elif key == "video_id" and isinstance(item, str | int) and str(item):
                yield "video", str(item), here
            elif key == "images" and path == ("asset_feed_spec",) and isinstance(item, list):
                for image in item:
                    if isinstance(image, dict) and isinstance(image.get("hash"), str):
                        yield "image", image["hash"], (*here, "hash")
            else:
                yield from _media_refs(item, here)
    elif isinstance(value, list):
        for item in value:
            yield from _media_refs(item, path)


def _check_media(ctx: CallContext, account: Node, data: dict[str, Any]) -> None:
    """Images and videos are the ad account's: a hash must be in its image library (S003 §Asset Feed Spec:
    "provide images which are in the ad account's image library"), a video in its video library (S003 §Video
    and Carousel Ads → Limitations: "The video_id must be associated with the ad account")."""
    for kind, ref, path in _media_refs(data):
        if kind == "image":
            image = ctx.store.get(image_node_id(account.id, ref))
            if image is None or image.get("status") == "DELETED":
                raise fail(
                    "creative.image_hash.unknown",
                    f"Image with hash {ref} is not in the image library of ad account {account.id}",
                    path,
                )
        else:
            video = ctx.store.get(ref)
            if video is None or video.type != VIDEO or video.account_id != account.id:
                raise fail(
                    "creative.video.unknown",
                    f"Video {ref} is not associated with ad account {account.id}",
                    path,
                )


def _check_story_spec(spec: Any, has_feed: bool) -> None:
    if not isinstance(spec, dict):
        raise fail("creative.story_spec", "Param object_story_spec must be an object", "object_story_spec")
    if spec.get("page_id") in (None, ""):
        raise fail(
            "creative.story_spec", "object_story_spec requires page_id", ("object_story_spec", "page_id")
        )
    if not has_feed and not any(isinstance(spec.get(k), dict) for k in STORY_DATA_KEYS):
        raise fail(
            "creative.story_spec",
            "object_story_spec must specify link_data, photo_data, video_data, text_data or template_data",
            "object_story_spec",
        )


def _instagram_ids(ctx: CallContext) -> set[str]:
    known = {str(i) for i in ctx.config.instagram_actor_ids}
    for page_id in ctx.config.page_ids:
        page = ctx.store.get(page_id)
        if page is not None and page.get("instagram_business_account"):
            known.add(str(page.get("instagram_business_account")))
    return known


def _check_instagram_ids(ctx: CallContext, data: dict[str, Any]) -> None:
    raw_spec = data.get("object_story_spec")
    spec: dict[str, Any] = raw_spec if isinstance(raw_spec, dict) else {}
    places: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (((), data), (("object_story_spec",), spec))
    pairs = (("instagram_user_id", "instagram_actor_id"), ("instagram_story_id", "source_instagram_media_id"))
    for where, holder in places:
        for one, other in pairs:
            if holder.get(one) not in (None, "") and holder.get(other) not in (None, ""):
                raise fail(
                    "creative.instagram_ids",
                    f"You can not pass both {one} and {other} in creative spec",
                    (*where, other),
                )
    known: set[str] | None = None
    for where, holder in places:
        for key in ("instagram_user_id", "instagram_actor_id"):
            value = holder.get(key)
            if value in (None, ""):
                continue
            known = known if known is not None else _instagram_ids(ctx)
            if str(value) not in known:
                raise fail(
                    "creative.instagram_access",
                    "Ad account has no access to this Instagram account. Please use authorized Instagram account "
                    "or assign ad account to this Instagram account first.",
                    (*where, key),
                )


def _check_ctas(data: dict[str, Any]) -> None:
    for path, cta in _ctas(data):
        kind = str(cta.get("type"))
        value = cta.get("value")
        app = value.get("app_destination") if isinstance(value, dict) else None
        if app and kind in CTA_ALLOWED_APPS and app not in CTA_ALLOWED_APPS[kind]:
            raise fail(
                "creative.cta_destination",
                f"call_to_action type {kind} can't open app_destination {app}",
                (*path, "value", "app_destination"),
            )


def _check_asset_feed(feed: Any) -> None:
    if not isinstance(feed, dict):
        raise fail("creative.asset_feed.limits", "Param asset_feed_spec must be an object", "asset_feed_spec")
    if feed.get("optimization_type") == "DOF_MESSAGING_DESTINATION":
        ctas = feed.get("call_to_actions")
        if not isinstance(ctas, list) or not ctas:
            raise fail(
                "creative.dof_destinations",
                "asset_feed_spec.call_to_actions is required when optimization_type is DOF_MESSAGING_DESTINATION",
                ("asset_feed_spec", "call_to_actions"),
            )
        for cta in ctas:
            kind = str(cta.get("type")) if isinstance(cta, dict) else ""
            app = _cta_app(cta) if isinstance(cta, dict) else None
            if kind not in CTA_APPS or app != CTA_APPS[kind]:
                raise fail(
                    "creative.dof_destinations",
                    "Each call_to_actions item must be MESSAGE_PAGE/MESSENGER, WHATSAPP_MESSAGE/WHATSAPP or "
                    f"INSTAGRAM_MESSAGE/INSTAGRAM_DIRECT - got {kind}/{app}",
                    ("asset_feed_spec", "call_to_actions"),
                )
    for key, limit in ASSET_FEED_LIMITS.items():
        items = feed.get(key)
        if isinstance(items, list) and len(items) > limit:
            raise fail(
                "creative.asset_feed.limits",
                f"At most {limit} {key} are allowed in an asset feed",
                ("asset_feed_spec", key),
            )
    formats = feed.get("ad_formats")
    if isinstance(formats, list) and len(formats) > 1:
        raise fail(
            "creative.asset_feed.limits",
            "Only one ad_format is allowed per asset feed",
            ("asset_feed_spec", "ad_formats"),
        )
    for key, limit in ASSET_TEXT_LIMITS.items():
        for item in feed.get(key) or []:
            text = item.get("text") if isinstance(item, dict) else None
            if isinstance(text, str) and len(text) > limit:
                raise fail(
                    "creative.asset_feed.limits",
                    f"asset_feed_spec {key} text must be at most {limit} characters",
                    ("asset_feed_spec", key),
                )
    for key in ("images", "videos", "bodies", "titles", "descriptions", "link_urls"):
        items = feed.get(key)
        if not isinstance(items, list):
            continue
        seen: set[str] = set()
        for item in items:
            marker = json.dumps(item, sort_keys=True)
            if marker in seen:
                raise fail(
                    "creative.asset_feed.unique",
                    "All ad asset values should be unique. Please check your values.",
                    ("asset_feed_spec", key),
                )
            seen.add(marker)


def _check_welcome_message(value: Any, path: tuple[str, ...]) -> None:
    """S000 Limitations: ice-breaker title ≤ 80, response ≤ 300, message text ≤ 300 characters.

    The value may be a JSON object/array, the same as a JSON-encoded string (S001), or plain greeting text.
    Strings that look like JSON but don't parse (S001's single-quoted quick-reply sample) are left alone.
    """
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("{", "["):
            try:
                value = json.loads(text)
            except ValueError:
                return
        else:
            if len(value) > WELCOME_TEXT_MAX:
                raise fail(
                    "creative.welcome.text",
                    f"Message text must not be more than {WELCOME_TEXT_MAX} characters",
                    path,
                )
            return
    for node in _walk(value):
        message = node.get("message")
        if isinstance(message, dict) and isinstance(message.get("text"), str):
            if len(message["text"]) > WELCOME_TEXT_MAX:
                raise fail(
                    "creative.welcome.text",
                    f"Message text must not be more than {WELCOME_TEXT_MAX} characters",
                    path,
                )
        for breaker in node.get("ice_breakers") or []:
            if not isinstance(breaker, dict):
                continue
            if len(str(breaker.get("title") or "")) > ICEBREAKER_TITLE_MAX:
                raise fail(
                    "creative.icebreaker.title",
                    f"Icebreaker titles must not be more than {ICEBREAKER_TITLE_MAX} characters",
                    path,
                )
            if len(str(breaker.get("response") or "")) > ICEBREAKER_RESPONSE_MAX:
                raise fail(
                    "creative.icebreaker.response",
                    f"Icebreaker responses must not be more than {ICEBREAKER_RESPONSE_MAX} characters",
                    path,
                )


def _walk(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for child in value.values():
            yield from _walk(child)
    elif isinstance(value, list):
        for child in value:
            yield from _walk(child)


# object_story_id → creative data, per store and ad account (see the module docstring).
_STORY_INDEX: weakref.WeakKeyDictionary[Store, dict[str, dict[str, dict[str, Any]]]] = (
    weakref.WeakKeyDictionary()
)


def existing_creative_for_story(ctx: CallContext, account: Node, data: dict[str, Any]) -> Node | None:
    """S003 §Ad Account Ad Creatives: a creative reusing an ``object_story_id`` returns the existing one.

    O(1): the index maps each story to the data dict of the creative created for it; ``store.add`` keeps
    that dict, so once the creative is stored its ``id`` is in it.
    """
    story = data.get("object_story_id")
    if not story:
        return None
    per_store = _STORY_INDEX.setdefault(ctx.store, {})
    index = per_store.get(account.id)
    if index is None:
        index = per_store[account.id] = {}
        for creative in ctx.store.children(account.id, CREATIVE):
            if creative.get("object_story_id"):
                index.setdefault(str(creative.get("object_story_id")), creative.data)
    known = index.get(str(story))
    if known is not None:
        node = ctx.store.get(str(known.get("id", "")))
        if node is not None and node.data is known and node.status != "DELETED":
            return node
    index[str(story)] = data
    return None


# --- ads ------------------------------------------------------------------------------------------
def _ad(ctx: CallContext, account: Node, store_inline: bool) -> tuple[dict[str, Any], Node]:
    params = ctx.params
    data = _copy_params(
        ctx,
        ("source_ad_id", "conversion_domain", "ad_schedule_start_time", "ad_schedule_end_time"),
        ("adlabels", "tracking_specs", "creative_sourcing_spec", "product_data"),
    )
    name = params.str("name")
    if name is None:
        raise fail("ad.name.required", "The parameter name is required", "name")
    data["name"] = name
    adset_id = params.str("adset_id")
    if adset_id is None:
        raise fail("ad.adset.required", "The parameter adset_id is required", "adset_id")
    adset = ctx.store.get(adset_id)
    if adset is None or adset.type != ADSET or adset.account_id != account.id:
        raise fail("ad.adset.unknown", f"Invalid adset_id {adset_id}", "adset_id")
    campaign = ctx.store.parent(adset)
    for node in (adset, campaign):
        if node is not None and node.status in ("ARCHIVED", "DELETED"):
            kind = "ad set" if node is adset else "campaign"
            raise fail(
                "ad.adset.not_live",
                f"The {kind} {node.id} is {node.status.lower()}: ads can't be added to it",
                "adset_id",
            )
    data["adset_id"] = adset.id
    data["campaign_id"] = adset.get("campaign_id")
    data["status"] = _create_status(ctx)
    if params.has("bid_amount"):
        raise fail(
            "ad.bid_amount",
            "We no longer allow setting the bid_amount value on an ad. Please set bid_amount for the ad set.",
            "bid_amount",
        )
    objective = campaign.get("objective") if campaign is not None else None
    for key in ("ad_schedule_start_time", "ad_schedule_end_time"):
        if key in data:
            if objective not in SCHEDULE_OBJECTIVES:
                raise fail(
                    "ad.schedule", f"{key} is only available for sales and app promotion campaigns", key
                )
            parse_time(data[key], key)
    found = _ad_creative(ctx, account, store_inline)
    _check_ad_fit(adset, campaign, found.data if isinstance(found, Node) else found)
    if isinstance(found, Node):
        data["creative"] = {"id": found.id}
    elif store_inline:
        data["creative"] = {"id": _store_inline_creative(ctx, account, found).id}
    else:  # validate_only: the inline spec was checked, nothing is stored
        data["creative"] = {"id": "0"}
    return data, adset


def _ad_creative(ctx: CallContext, account: Node, store_inline: bool) -> Node | dict[str, Any]:
    """``creative={"creative_id": …}`` → that node; an inline spec (``{"creative": {...}}`` or ``{<spec>}``)
    → the existing creative for its object_story_id, or the validated data of a creative still to store."""
    raw = ctx.params.json("creative")
    if raw is None:
        raise fail("ad.creative.required", "The parameter creative is required", "creative")
    if not isinstance(raw, dict):
        raise fail("ad.creative.required", "Param creative must be an object", "creative")
    creative_id = raw.get("creative_id")
    if creative_id is not None:
        node = ctx.store.get(str(creative_id))
        if node is None or node.type != CREATIVE or node.account_id != account.id or node.status == "DELETED":
            raise fail(
                "ad.creative.unknown", f"Invalid creative_id {creative_id}", ("creative", "creative_id")
            )
        return node
    spec = raw.get("creative") if isinstance(raw.get("creative"), dict) else raw
    if not spec:
        raise fail(
            "ad.creative.required", "Param creative must contain creative_id or a creative spec", "creative"
        )
    sub = dataclasses.replace(ctx, params=Params(spec))
    data = _creative(sub, account)
    existing = existing_creative_for_story(sub, account, data) if store_inline else None
    return existing if existing is not None else data


def _store_inline_creative(ctx: CallContext, account: Node, data: dict[str, Any]) -> Node:
    data["account_id"] = account.id.removeprefix("act_")
    stamp = _dt.datetime.fromtimestamp(ctx.now, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")
    data["created_time"] = data["updated_time"] = stamp
    return ctx.store.add(CREATIVE, data, now=ctx.now, account_id=account.id)


def _check_ad_fit(adset: Node, campaign: Node | None, creative: dict[str, Any]) -> None:
    """Creative ↔ ad set rules checked when the two meet in an ad."""
    destination = adset.get("destination_type")
    apps: set[str | None]
    if destination in MULTI_DESTINATIONS:
        feed = creative.get("asset_feed_spec")
        ctas = feed.get("call_to_actions") if isinstance(feed, dict) else None
        apps = {_cta_app(c) for c in ctas if isinstance(c, dict)} if isinstance(ctas, list) else set()
        if (
            not isinstance(feed, dict)
            or feed.get("optimization_type") != "DOF_MESSAGING_DESTINATION"
            or apps != MULTI_DESTINATIONS[destination]
        ):
            raise fail(
                "msg.creative_destination",
                f"The creative's asset_feed_spec (optimization_type DOF_MESSAGING_DESTINATION) call_to_actions "
                f"must match the ad set's destination_type {destination}",
                ("creative", "asset_feed_spec", "call_to_actions"),
            )
    elif destination in ("MESSENGER", "INSTAGRAM_DIRECT"):
        apps = {app for _, cta in _ctas(creative) if (app := _cta_app(cta))}
        if apps != SINGLE_DESTINATIONS[destination]:
            raise fail(
                "msg.creative_destination",
                f"The creative's call_to_action app_destination must be {destination} to match the ad set's "
                f"destination_type - got {sorted(str(a) for a in apps) or 'none'}",
                ("creative", "call_to_action"),
            )
    promoted_page = _promoted_page(adset.get("promoted_object"))
    creative_page = _creative_page(creative)
    if promoted_page and creative_page and promoted_page != creative_page:
        raise fail(
            "ad.page_mismatch",
            "The Page selected for your ad doesn't match the Page associated with the object you're promoting, "
            "like a Page post or app. Please make sure the Pages are the same.",
            ("creative", "object_story_spec", "page_id"),
        )
    objective = campaign.get("objective") if campaign is not None else None
    if destination == "WEBSITE" and objective in TRAFFIC_OBJECTIVES and not _creative_has_link(creative):
        raise fail(
            "ad.website_url",
            "Your campaign objective requires an external website URL. Select a call to action and enter a "
            "website URL in the ad creative section.",
            ("creative", "object_story_spec", "link_data", "link"),
        )


# --- updates --------------------------------------------------------------------------------------
UPDATABLE: dict[str, tuple[str, ...]] = {
    CAMPAIGN: (
        "name",
        "status",
        "daily_budget",
        "lifetime_budget",
        "spend_cap",
        "bid_strategy",
        "stop_time",
        "start_time",
        "adlabels",
        "special_ad_categories",
        "is_adset_budget_sharing_enabled",
        "topline_id",
    ),
    ADSET: (
        "name",
        "status",
        "daily_budget",
        "lifetime_budget",
        "bid_amount",
        "bid_strategy",
        "targeting",
        "end_time",
        "start_time",
        "optimization_goal",
        "billing_event",
        "adlabels",
        "promoted_object",
        "daily_min_spend_target",
        "daily_spend_cap",
        "lifetime_min_spend_target",
        "lifetime_spend_cap",
        "bid_constraints",
        "existing_customer_budget_percentage",
        "attribution_spec",
    ),
    AD: ("name", "status", "creative", "adlabels", "tracking_specs", "conversion_domain"),
    CREATIVE: ("name", "status", "adlabels"),
}
IGNORED_ON_UPDATE = {
    "access_token",
    "appsecret_proof",
    "execution_options",
    "redownload",
    "fields",
    "migrate_to_advantage_plus",
    "method",
}
JSON_FIELDS = {
    "targeting",
    "adlabels",
    "creative",
    "promoted_object",
    "bid_constraints",
    "special_ad_categories",
    "attribution_spec",
}
READ_ONLY = {"smart_promotion_type", "advantage_state", "advantage_state_info"}


def validate_update(ctx: CallContext, node: Node) -> dict[str, Any]:
    """Parse ``POST /<id>`` params into changes; creatives only accept name and status."""
    _check_execution_options(ctx, node.type)
    allowed = UPDATABLE.get(node.type, ())
    changes: dict[str, Any] = {}
    for key in ctx.params:
        if key in IGNORED_ON_UPDATE:
            continue
        if key not in allowed:
            if node.type == CREATIVE:
                raise fail(
                    "creative.immutable",
                    "Ad creatives cannot be edited after they have been created except for name and run status. "
                    "Create a new creative instead.",
                    key,
                )
            if key in READ_ONLY and node.type == CAMPAIGN:
                raise fail("advantage.read_only", f"{key} is read-only", key)
            raise GraphAPIError(
                code=100,
                message=f"(#100) Param {key} cannot be updated on this object",
                blame_field_specs=[[key]],
            )
        changes[key] = ctx.params.json(key) if key in JSON_FIELDS else ctx.params.str(key)
    if "status" in changes:
        changes["status"] = str(changes["status"]).upper()
    if node.status in ("ARCHIVED", "DELETED"):
        return changes  # the status machine answers with the object's archived/deleted code
    if node.type == CAMPAIGN:
        _update_campaign(ctx, node, changes)
    elif node.type == ADSET:
        _update_adset(ctx, node, changes)
    elif node.type == AD:
        _update_ad(ctx, node, changes)
    return changes


def _update_campaign(ctx: CallContext, node: Node, changes: dict[str, Any]) -> None:
    params = ctx.params
    if "bid_strategy" in changes:
        enum(ctx, "bid_strategy", BID_STRATEGIES, "bid_strategy.enum")
    if "special_ad_categories" in changes:
        changes["special_ad_categories"] = _special_ad_categories(params)
    _check_spend_cap(params)
    if "stop_time" in changes:
        _future(ctx, changes["stop_time"], "stop_time")
    daily, lifetime = _amount(params, "daily_budget"), _amount(params, "lifetime_budget")
    for key, value in (("daily_budget", daily), ("lifetime_budget", lifetime)):
        if value is not None:
            changes[key] = str(value)
    if daily is None and lifetime is None:
        return
    _check_budget_floor("budget.too_low.update", daily, lifetime, None, ctx.store.get(node.account_id or ""))
    if budget_switch(ctx, node, changes) and ctx.config.campaign_budget_switch == "refuse":
        raise fail(
            "budget.campaign_vs_adset",
            "You can only set an ad set budget or a campaign budget.",
            "daily_budget" if daily else "lifetime_budget",
        )


def budget_switch(ctx: CallContext, node: Node, changes: Mapping[str, Any]) -> list[Node]:
    """The ad sets whose own budgets a campaign-budget update replaces (empty: no switch).

    S003 §Ad Account, Ad Campaigns (daily_budget): "All adsets under this campaign will share this budget.
    You can either set budget at the campaign level or at the adset level, not both." The seeds show no
    other in-place path to a campaign budget (an ad set's budget cannot be cleared first: "Either
    daily_budget or lifetime_budget must be greater than 0"), so by default (``campaign_budget_switch =
    "convert"``) setting a budget on a campaign whose ad sets carry budgets switches it to a campaign
    budget and clears theirs, as Ads Manager's "Advantage campaign budget" toggle does; ``"refuse"``
    answers 1885621 instead.
    """
    if node.type != CAMPAIGN or _has_budget(node):
        return []
    if _int(changes.get("daily_budget")) <= 0 and _int(changes.get("lifetime_budget")) <= 0:
        return []
    return [s for s in ctx.store.children(node.id, ADSET) if s.status != "DELETED" and _has_budget(s)]


def _update_adset(ctx: CallContext, node: Node, changes: dict[str, Any]) -> None:
    params = ctx.params
    campaign = ctx.store.parent(node)
    if "name" in changes and len(str(changes["name"])) > NAME_MAX:
        raise fail("adset.name.length", f"Param name must be at most {NAME_MAX} characters", "name")
    if "billing_event" in changes:
        enum(ctx, "billing_event", BILLING_EVENTS, "adset.billing_event.enum")
    if "optimization_goal" in changes:
        enum(ctx, "optimization_goal", OPTIMIZATION_GOALS, "adset.optimization_goal.enum")
    strategy = enum(ctx, "bid_strategy", BID_STRATEGIES, "bid_strategy.enum")
    if "targeting" in changes:
        _check_targeting(changes["targeting"], True)
    if "end_time" in changes:
        _future(ctx, changes["end_time"], "end_time")
    if "existing_customer_budget_percentage" in changes:
        _check_ecbp(ctx, params)
    daily, lifetime = _amount(params, "daily_budget"), _amount(params, "lifetime_budget")
    bid_amount = params.int("bid_amount")
    for key, value in (("daily_budget", daily), ("lifetime_budget", lifetime), ("bid_amount", bid_amount)):
        if value is not None:
            changes[key] = str(value)
    merged = {**node.data, **changes}
    if campaign is not None and ((daily or 0) > 0 or (lifetime or 0) > 0) and _has_budget(campaign):
        raise fail(
            "budget.campaign_vs_adset",
            "You can only set an ad set budget or a campaign budget.",
            "daily_budget" if daily else "lifetime_budget",
        )
    if (
        campaign is not None
        and (daily is not None or lifetime is not None)
        and not _has_budget(campaign)
        and not _has_budget(merged)
    ):
        raise fail(
            "adset.budget.required",
            "Either daily_budget or lifetime_budget must be greater than 0",
            "daily_budget" if daily is not None else "lifetime_budget",
        )
    start = parse_time(merged.get("start_time"), "start_time")
    end = parse_time(merged.get("end_time"), "end_time")
    if _int(merged.get("lifetime_budget")) > 0 and end is None:
        raise fail(
            "adset.lifetime.end_time", "end_time is required when lifetime_budget is specified", "end_time"
        )
    begin = start if start is not None else ctx.now
    if ("daily_budget" in changes or "end_time" in changes) and _int(merged.get("daily_budget")) > 0:
        if end is not None and end - begin <= DAY_S:
            raise fail(
                "adset.daily.duration",
                "daily_budget is allowed only for ad sets with a duration longer than 24 hours",
                "daily_budget",
            )
    days = (end - begin) / DAY_S if end is not None else None
    _check_budget_floor("budget.too_low.update", daily, lifetime, days, ctx.store.get(node.account_id or ""))
    if campaign is not None and ({"bid_amount", "bid_strategy", "bid_constraints"} & changes.keys()):
        _check_bid(
            strategy or merged.get("bid_strategy"),
            campaign,
            _int(merged["bid_amount"]) if merged.get("bid_amount") not in (None, "") else None,
            merged.get("billing_event"),
            merged.get("bid_constraints"),
        )


def _update_ad(ctx: CallContext, node: Node, changes: dict[str, Any]) -> None:
    adset = ctx.store.parent(node)
    if adset is not None and changes.keys() - {"name", "status"}:
        end = parse_time(adset.get("end_time"), "end_time")
        if end is not None and end <= ctx.now:
            raise fail(
                "ad.adset_ended",
                "You can't edit this ad because it's part of a scheduled ad set that has reached its end date. "
                "Please go to the Budget and Schedule section of the ad set and change the end date to a date in "
                "the future and then try your edits again.",
                sorted(changes.keys() - {"name", "status"})[0],
            )
    if "creative" in changes:
        raw = changes["creative"]
        creative_id = raw.get("creative_id") if isinstance(raw, dict) else None
        target = ctx.store.get(str(creative_id)) if creative_id is not None else None
        if target is None or target.type != CREATIVE or target.account_id != node.account_id:
            raise fail(
                "ad.creative.unknown", f"Invalid creative_id {creative_id}", ("creative", "creative_id")
            )
        changes["creative"] = {"id": target.id}


def _ctas(data: dict[str, Any]) -> Iterator[tuple[tuple[str, ...], Mapping[str, Any]]]:
    """Every call_to_action of a creative outside the asset feed, with its blame path (strings, as Graph blames)."""
    for path, cta in iter_ctas(data):
        yield tuple(str(part) for part in path), cta
