"""Documented validation rules for creating and updating ad objects.

Every rule answers with the code/subcode its seed documents. The seeds print ad-object errors such as
``1885621`` as "codes" in their tables, but Graph sends them as ``code: 100`` with the number as
``error_subcode`` (the envelope of S003 §Handling Errors → Error Responses; ``status.py`` does the same);
we follow that. Where no code is documented the answer is ``code: 100`` with
``error_data.blame_field_specs`` naming the field (column "code" shows ``100`` and no subcode). Each
rule is one entry of :data:`RULES`; ``tests/simulator/test_validation.py`` holds one failing and one
near-miss passing request per rule, and ``tests/engine/test_rule_parity.py`` holds this table and the
engine's local one (``operations/rules/``) to the same ids, codes and blamed fields.

One module per object type around a shared core: ``core`` (the table, :func:`fail`, enums, small readers),
``campaigns``, ``adsets``, ``creatives``, ``ads`` (creates) and ``updates``; this module is the entry point.

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

from typing import TYPE_CHECKING, Any

from ..errors import GraphAPIError
from ..store import AD, ADSET, CAMPAIGN, CREATIVE, Node
from .ads import validate_ad
from .adsets import validate_adset
from .campaigns import validate_campaign
from .core import RULES, Rule, check_execution_options, fail, will_store
from .creatives import existing_creative_for_story, image_node_id, validate_creative
from .updates import budget_switch, validate_update

if TYPE_CHECKING:
    from ..context import CallContext

__all__ = [
    "RULES",
    "Rule",
    "budget_switch",
    "existing_creative_for_story",
    "fail",
    "image_node_id",
    "validate_create",
    "validate_update",
]


# --- entry points ---------------------------------------------------------------------------------
def validate_create(ctx: CallContext, account: Node, type_: str) -> tuple[dict[str, Any], Node | None]:
    """Validate a create on an ad-account edge; returns (stored data, parent node)."""
    options = check_execution_options(ctx, type_)
    if type_ == CAMPAIGN:
        return validate_campaign(ctx, account), None
    if type_ == ADSET:
        return validate_adset(ctx, account)
    if type_ == CREATIVE:
        return validate_creative(ctx, account), None
    if type_ == AD:
        return validate_ad(ctx, account, will_store(options))
    raise GraphAPIError(code=100, message=f"(#100) cannot create {type_}")
