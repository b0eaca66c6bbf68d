"""The Advantage+ state of a campaign, computed on read (S003 §Advantage+ Campaign Experience for Sales, App, and
Leads). Shared by the reads (``status.py``) and the migration (``copies.py``), which is why it is its own
module: neither imports the other for it.

The read-only campaign field ``advantage_state_info`` is computed on read from three levers —

- ``advantage_budget_state``: ENABLED when the campaign has a ``daily_budget`` / ``lifetime_budget`` and a
  supported ``bid_strategy`` (LOWEST_COST_WITHOUT_CAP, COST_CAP, LOWEST_COST_WITH_BID_CAP,
  LOWEST_COST_WITH_MIN_ROAS; none given = the default LOWEST_COST_WITHOUT_CAP);
- ``advantage_audience_state``: ENABLED when **at least one** non-deleted ad set has
  ``targeting_automation.advantage_audience = 1`` or no targeting besides ``geo_locations``; the "advanced"
  path counts too: custom audiences with ``targeting_relaxation_types.custom_audience|lookalike = 1``,
  detailed targeting with ``targeting_optimization = expansion_all``, age/gender with
  ``targeting_automation.individual_setting.age|gender = 1``;
- ``advantage_placement_state``: ENABLED when **all** non-deleted ad sets set no placement targeting or
  exclusions (:data:`PLACEMENT_KEYS`);

and ``advantage_state`` = ``ADVANTAGE_PLUS_SALES`` (OUTCOME_SALES) / ``ADVANTAGE_PLUS_APP`` /
``ADVANTAGE_PLUS_LEADS`` (OUTCOME_LEADS) when all three are ENABLED, else ``DISABLED``. **SPEC-DIGEST §9.3 #6**:
the guide names the app objective ``APP_INSTALLS`` (step 1) and ``APP_PROMOTION`` (step 3) while the campaign
enum has ``OUTCOME_APP_PROMOTION`` — all three map to ``ADVANTAGE_PLUS_APP``. Campaigns in an Advantage+ state
read ``smart_promotion_type: GUIDED_CREATION`` ("Campaigns created with an advantage_state of … will reflect a
smart_promotion_type of GUIDED_CREATION"); stored ASC / AAC types (``AUTOMATED_SHOPPING_ADS`` /
``SMART_APP_PROMOTION``) read as stored until migrated.
"""

from __future__ import annotations

from typing import Any

from bulk_engine.protocol.catalog import ADVANTAGE_STATES, PLACEMENT_KEYS, SUPPORTED_ADVANTAGE_STRATEGIES

from .store import ADSET, Node, Store

__all__ = [
    "AAC",
    "ASC",
    "GUIDED_CREATION",
    "compute_advantage_state_info",
    "effective_smart_promotion_type",
    "positive",
]

ASC = "AUTOMATED_SHOPPING_ADS"
AAC = "SMART_APP_PROMOTION"
GUIDED_CREATION = "GUIDED_CREATION"

# Targeting keys that never restrict the audience: geo, and the automation switches themselves.
AUDIENCE_NEUTRAL_KEYS = {
    "geo_locations",
    "targeting_automation",
    "targeting_relaxation_types",
    "targeting_optimization",
}
DETAILED_TARGETING_KEYS = {
    "flexible_spec",
    "interests",
    "behaviors",
    "life_events",
    "industries",
    "income",
    "family_statuses",
    "education_statuses",
    "work_positions",
    "work_employers",
}


# --- Advantage+ state -------------------------------------------------------------------------------
def compute_advantage_state_info(store: Store, campaign: Node) -> dict[str, str]:
    """``advantage_state_info`` from the three levers (S003 §Step 2 / §Step 3 / §DISABLED state)."""
    adsets = [a for a in store.children(campaign.id, ADSET) if a.status != "DELETED"]
    budget = _budget_lever(campaign)
    audience = any(_audience_enabled(a.get("targeting")) for a in adsets)
    placement = all(_placement_enabled(a.get("targeting")) for a in adsets)
    levers = {
        "advantage_budget_state": _state(budget),
        "advantage_audience_state": _state(audience),
        "advantage_placement_state": _state(placement),
    }
    kind = ADVANTAGE_STATES.get(str(campaign.get("objective")), "DISABLED")
    overall = kind if budget and audience and placement else "DISABLED"
    return {"advantage_state": overall, **levers}


def effective_smart_promotion_type(store: Store, campaign: Node) -> str | None:
    """ASC/AAC as stored; ``GUIDED_CREATION`` for a campaign in an Advantage+ state; else as stored."""
    stored = campaign.get("smart_promotion_type")
    if stored in (ASC, AAC):
        return str(stored)
    if compute_advantage_state_info(store, campaign)["advantage_state"] != "DISABLED":
        return GUIDED_CREATION
    return str(stored) if stored else None


def _state(enabled: bool) -> str:
    return "ENABLED" if enabled else "DISABLED"


def _budget_lever(campaign: Node) -> bool:
    has_budget = any(positive(campaign.get(k)) for k in ("daily_budget", "lifetime_budget"))
    strategy = campaign.get("bid_strategy")
    return has_budget and (strategy is None or strategy in SUPPORTED_ADVANTAGE_STRATEGIES)


def _audience_enabled(targeting: Any) -> bool:
    if not isinstance(targeting, dict):
        return True  # no targeting at all: nothing besides geo
    automation = targeting.get("targeting_automation")
    automation = automation if isinstance(automation, dict) else {}
    if _flag(automation.get("advantage_audience")):
        return True
    relaxation = targeting.get("targeting_relaxation_types")
    relaxation = relaxation if isinstance(relaxation, dict) else {}
    individual = automation.get("individual_setting")
    individual = individual if isinstance(individual, dict) else {}
    for key, value in targeting.items():
        if key in AUDIENCE_NEUTRAL_KEYS or key in PLACEMENT_KEYS or value in (None, [], {}):
            continue
        if key in ("custom_audiences",) and (
            _flag(relaxation.get("custom_audience")) or _flag(relaxation.get("lookalike"))
        ):
            continue
        if key in DETAILED_TARGETING_KEYS and targeting.get("targeting_optimization") == "expansion_all":
            continue
        if key in ("age_min", "age_max", "age_range") and _flag(individual.get("age")):
            continue
        if key == "genders" and _flag(individual.get("gender")):
            continue
        return False
    return True


def _placement_enabled(targeting: Any) -> bool:
    if not isinstance(targeting, dict):
        return True
    return not any(targeting.get(key) not in (None, [], {}) for key in PLACEMENT_KEYS)


def _flag(value: Any) -> bool:
    return value is True or (not isinstance(value, bool) and str(value).strip().lower() in ("1", "true"))


def positive(value: Any) -> bool:
    """An amount Graph counts as set: a positive integer (also as text)."""
    try:
        return int(str(value)) > 0
    except ValueError:
        return False
