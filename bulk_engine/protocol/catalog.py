"""The Marketing API's documented vocabulary and limits, shared by the simulator and the operations layer.

Pure constants, one place: the simulator answers with them (``simulator/validation/`` cites the seed of
each rule in its table) and the operations layer checks job files against them before any call, so the
two can never drift apart. Seeds: S000-S002 (messaging destinations, CTAs, ice breakers), S003 (bid
strategies, budgets, spend caps, Advantage+ levers, placements, asset feeds).
"""

from __future__ import annotations

from typing import Final

BID_REQUIRED_STRATEGIES: Final = frozenset({"LOWEST_COST_WITH_BID_CAP", "COST_CAP"})
AUTOMATIC_STRATEGIES: Final = frozenset({"LOWEST_COST_WITHOUT_CAP", "LOWEST_COST_WITH_MIN_ROAS"})
SUPPORTED_ADVANTAGE_STRATEGIES: Final = frozenset(
    {"LOWEST_COST_WITHOUT_CAP", "COST_CAP", "LOWEST_COST_WITH_BID_CAP", "LOWEST_COST_WITH_MIN_ROAS"}
)
ADVANTAGE_STATES: Final = {
    "OUTCOME_SALES": "ADVANTAGE_PLUS_SALES",
    "OUTCOME_APP_PROMOTION": "ADVANTAGE_PLUS_APP",
    "APP_INSTALLS": "ADVANTAGE_PLUS_APP",
    "APP_PROMOTION": "ADVANTAGE_PLUS_APP",  # SPEC-DIGEST §9.3 #6: the guide's label for the app objective
    "OUTCOME_LEADS": "ADVANTAGE_PLUS_LEADS",
}
PLACEMENT_KEYS: Final = (
    "publisher_platforms",
    "facebook_positions",
    "instagram_positions",
    "audience_network_positions",
    "messenger_positions",
    "threads_positions",
    "whatsapp_positions",
    "oculus_positions",
    "device_platforms",
    "excluded_publisher_platforms",
    "excluded_facebook_positions",
    "excluded_instagram_positions",
)
MESSENGER_APP, WHATSAPP_APP, INSTAGRAM_APP = "MESSENGER", "WHATSAPP", "INSTAGRAM_DIRECT"
MULTI_DESTINATIONS: Final = {
    "MESSAGING_INSTAGRAM_DIRECT_MESSENGER_WHATSAPP": frozenset({INSTAGRAM_APP, MESSENGER_APP, WHATSAPP_APP}),
    "MESSAGING_INSTAGRAM_DIRECT_MESSENGER": frozenset({INSTAGRAM_APP, MESSENGER_APP}),
    "MESSAGING_MESSENGER_WHATSAPP": frozenset({MESSENGER_APP, WHATSAPP_APP}),
    "MESSAGING_INSTAGRAM_DIRECT_WHATSAPP": frozenset({INSTAGRAM_APP, WHATSAPP_APP}),
}
SINGLE_DESTINATIONS: Final = {
    "MESSENGER": frozenset({MESSENGER_APP}),
    "INSTAGRAM_DIRECT": frozenset({INSTAGRAM_APP}),
    "WHATSAPP": frozenset({WHATSAPP_APP}),
}
GUIDED_DESTINATIONS: Final = frozenset({*MULTI_DESTINATIONS, "MESSENGER", "INSTAGRAM_DIRECT"})
MESSAGING_OBJECTIVES: Final = frozenset({"OUTCOME_ENGAGEMENT", "OUTCOME_SALES", "OUTCOME_TRAFFIC"})
MESSENGER_OBJECTIVES: Final = frozenset({*MESSAGING_OBJECTIVES, "OUTCOME_LEADS"})
INSTAGRAM_GOALS: Final = {
    "OUTCOME_ENGAGEMENT": frozenset({"CONVERSATIONS", "LINK_CLICKS"}),
    "OUTCOME_SALES": frozenset(
        {"CONVERSATIONS", "OFFSITE_CONVERSIONS", "LINK_CLICKS", "IMPRESSIONS", "REACH"}
    ),
    "OUTCOME_TRAFFIC": frozenset(
        {"CONVERSATIONS", "LANDING_PAGE_VIEWS", "LINK_CLICKS", "IMPRESSIONS", "REACH", "POST_ENGAGEMENT"}
    ),
}
MESSENGER_GOALS: Final = frozenset({"CONVERSATIONS", "OFFSITE_CONVERSIONS", "IMPRESSIONS"})
MESSENGER_LEAD_GOALS: Final = frozenset({"LEAD_GENERATION", "QUALITY_LEAD"})
CTA_APPS: Final = {
    "MESSAGE_PAGE": MESSENGER_APP,
    "WHATSAPP_MESSAGE": WHATSAPP_APP,
    "INSTAGRAM_MESSAGE": INSTAGRAM_APP,
}
CTA_ALLOWED_APPS: Final = {
    "MESSAGE_PAGE": frozenset({MESSENGER_APP, INSTAGRAM_APP}),
    "WHATSAPP_MESSAGE": frozenset({WHATSAPP_APP}),
    "INSTAGRAM_MESSAGE": frozenset({INSTAGRAM_APP}),
}
STORY_DATA_KEYS: Final = ("link_data", "photo_data", "video_data", "text_data", "template_data")
GEO_KEYS: Final = frozenset(
    {
        "countries",
        "regions",
        "cities",
        "zips",
        "places",
        "custom_locations",
        "geo_markets",
        "electoral_districts",
        "country_groups",
        "location_cluster_ids",
        "large_geo_areas",
        "medium_geo_areas",
        "small_geo_areas",
        "metro_areas",
        "neighborhoods",
        "subneighborhoods",
        "subcities",
    }
)
SCHEDULE_OBJECTIVES: Final = frozenset(
    {"OUTCOME_SALES", "OUTCOME_APP_PROMOTION", "APP_INSTALLS", "CONVERSIONS", "PRODUCT_CATALOG_SALES"}
)
TRAFFIC_OBJECTIVES: Final = frozenset({"OUTCOME_TRAFFIC", "LINK_CLICKS"})
ASSET_FEED_LIMITS: Final = {
    "images": 10,
    "videos": 10,
    "bodies": 5,
    "titles": 5,
    "descriptions": 5,
    "link_urls": 5,
    "call_to_action_types": 5,
}
ASSET_TEXT_LIMITS: Final = {"titles": 255, "descriptions": 255, "bodies": 1024}
NAME_MAX: Final = 400
ICEBREAKER_TITLE_MAX: Final = 80
ICEBREAKER_RESPONSE_MAX: Final = 300
WELCOME_TEXT_MAX: Final = 300
MIN_DAILY_BUDGET: Final = 100  # cents ("at least $1.00 per day")
MIN_SPEND_CAP: Final = 10_000  # cents ("minimum value of $100 USD")
NO_SPEND_CAP: Final = 922337203685478
ROAS_FLOOR_RANGE: Final = (100, 10_000_000)
DAY_S: Final = 86_400.0

# Enums of the ad-object parameters (S003 §Ad Account, Ad Campaigns / Adsets), in the reference's order: the
# job-file Literal types (operations/specs.py, hence docs/job-schema.json) and the simulator's enum rules use them.
OBJECTIVES: Final = (
    "APP_INSTALLS",
    "BRAND_AWARENESS",
    "CONVERSIONS",
    "EVENT_RESPONSES",
    "LEAD_GENERATION",
    "LINK_CLICKS",
    "LOCAL_AWARENESS",
    "MESSAGES",
    "OFFER_CLAIMS",
    "OUTCOME_APP_PROMOTION",
    "OUTCOME_AWARENESS",
    "OUTCOME_ENGAGEMENT",
    "OUTCOME_LEADS",
    "OUTCOME_SALES",
    "OUTCOME_TRAFFIC",
    "PAGE_LIKES",
    "POST_ENGAGEMENT",
    "PRODUCT_CATALOG_SALES",
    "REACH",
    "STORE_VISITS",
    "VIDEO_VIEWS",
)
SPECIAL_AD_CATEGORIES: Final = (
    "NONE",
    "EMPLOYMENT",
    "HOUSING",
    "CREDIT",
    "ISSUES_ELECTIONS_POLITICS",
    "ONLINE_GAMBLING_AND_GAMING",
    "FINANCIAL_PRODUCTS_SERVICES",
)
BUYING_TYPES: Final = (
    "AUCTION",
    "RESERVED",
)
BID_STRATEGIES: Final = (
    "LOWEST_COST_WITHOUT_CAP",
    "LOWEST_COST_WITH_BID_CAP",
    "COST_CAP",
    "LOWEST_COST_WITH_MIN_ROAS",
)
BILLING_EVENTS: Final = (
    "APP_INSTALLS",
    "CLICKS",
    "IMPRESSIONS",
    "LINK_CLICKS",
    "NONE",
    "OFFER_CLAIMS",
    "PAGE_LIKES",
    "POST_ENGAGEMENT",
    "THRUPLAY",
    "PURCHASE",
    "LISTING_INTERACTION",
    "VIDEO_VIEWS",
)
OPTIMIZATION_GOALS: Final = (
    "NONE",
    "APP_INSTALLS",
    "AD_RECALL_LIFT",
    "ENGAGED_USERS",
    "EVENT_RESPONSES",
    "IMPRESSIONS",
    "LEAD_GENERATION",
    "QUALITY_LEAD",
    "LINK_CLICKS",
    "OFFSITE_CONVERSIONS",
    "PAGE_LIKES",
    "POST_ENGAGEMENT",
    "QUALITY_CALL",
    "REACH",
    "LANDING_PAGE_VIEWS",
    "VISIT_INSTAGRAM_PROFILE",
    "VALUE",
    "THRUPLAY",
    "DERIVED_EVENTS",
    "APP_INSTALLS_AND_OFFSITE_CONVERSIONS",
    "CONVERSATIONS",
    "IN_APP_VALUE",
    "MESSAGING_PURCHASE_CONVERSION",
    "SUBSCRIBERS",
    "REMINDERS_SET",
    "MEANINGFUL_CALL_ATTEMPT",
    "PROFILE_VISIT",
    "PROFILE_AND_PAGE_ENGAGEMENT",
    "ADVERTISER_SILOED_VALUE",
    "AUTOMATIC_OBJECTIVE",
    "MESSAGING_APPOINTMENT_CONVERSION",
)
DESTINATION_TYPES: Final = (
    "WEBSITE",
    "APP",
    "MESSENGER",
    "APPLINKS_AUTOMATIC",
    "WHATSAPP",
    "INSTAGRAM_DIRECT",
    "FACEBOOK",
    "MESSAGING_MESSENGER_WHATSAPP",
    "MESSAGING_INSTAGRAM_DIRECT_MESSENGER",
    "MESSAGING_INSTAGRAM_DIRECT_MESSENGER_WHATSAPP",
    "MESSAGING_INSTAGRAM_DIRECT_WHATSAPP",
    "SHOP_AUTOMATIC",
    "ON_AD",
    "ON_POST",
    "ON_EVENT",
    "ON_VIDEO",
    "ON_PAGE",
    "INSTAGRAM_PROFILE",
    "FACEBOOK_PAGE",
    "INSTAGRAM_PROFILE_AND_FACEBOOK_PAGE",
    "INSTAGRAM_LIVE",
    "FACEBOOK_LIVE",
    "IMAGINE",
)
