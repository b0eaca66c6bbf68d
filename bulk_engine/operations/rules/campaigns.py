"""Campaign create rules (S003 §Ad Account, Ad Campaigns; §Advantage+ Campaign Experience)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from bulk_engine.protocol.catalog import (
    ADVANTAGE_STATES,
    MIN_SPEND_CAP,
    NO_SPEND_CAP,
    SUPPORTED_ADVANTAGE_STRATEGIES,
)

from ..base import Issue
from .core import as_int, budget_floor, create_status, has_budget, issue, read_time


def campaign_rules(params: Mapping[str, Any], *, advantage_plus: bool = False) -> Iterator[Issue]:
    """Rules of one campaign create (its Graph params)."""
    yield from create_status(params)
    if params.get("special_ad_categories") is None:
        yield issue(
            "campaign.sac.required",
            ("special_ad_categories",),
            "special_ad_categories is required (use [] or [NONE] when no category applies)",
            has_value=False,
        )
    if "smart_promotion_type" in params:
        yield issue(
            "campaign.smart_promotion_type",
            ("smart_promotion_type",),
            "campaigns can no longer be created with smart_promotion_type (ASC/AAC creation is removed from "
            "v25.0; GUIDED_CREATION is read-only): set advantage_plus: true to get an Advantage+ campaign",
            params.get("smart_promotion_type"),
        )
    yield from budget_floor(params)
    cap = as_int(params.get("spend_cap"))
    if cap is not None and cap != NO_SPEND_CAP and cap < MIN_SPEND_CAP:
        yield issue(
            "campaign.spend_cap.min",
            ("spend_cap",),
            f"spend_cap must be at least {MIN_SPEND_CAP} (cents, $100 USD)",
            params.get("spend_cap"),
        )
    for key in ("start_time", "stop_time"):
        _, bad = read_time(params, key)
        if bad is not None:
            yield bad
    if advantage_plus:
        objective = params.get("objective")
        if objective not in ADVANTAGE_STATES:
            yield issue(
                "advantage.objective",
                ("objective",),
                "an Advantage+ campaign needs objective OUTCOME_SALES, OUTCOME_APP_PROMOTION or OUTCOME_LEADS",
                objective,
            )
        if not has_budget(params):
            yield issue(
                "advantage.budget",
                ("daily_budget",),
                "Advantage+ budget (advantage_budget_state) needs a campaign-level daily_budget or lifetime_budget",
                has_value=False,
            )
        strategy = params.get("bid_strategy")
        if strategy is not None and strategy not in SUPPORTED_ADVANTAGE_STRATEGIES:
            yield issue(
                "advantage.budget",
                ("bid_strategy",),
                "bid strategy not supported by Advantage+ budget",
                strategy,
            )
