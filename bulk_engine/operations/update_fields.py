"""What an ``update`` may change on campaigns, ad sets and ads, and how one object's change is planned.

Pure (no I/O): the ``update`` task (:mod:`.update`) reads the objects, then asks :func:`plan_object` for each
one what to send. The rules, each with the seed section it implements and the Graph error it mirrors:

===============================  ============  ===================================================================
rule id                          Graph code    rule (seed section)
===============================  ============  ===================================================================
``update.field``                 100           only documented updatable fields per level (S003 §Ad Campaign
                                               Management → Modify an Ad Campaign; §Advantage+ Shopping Campaigns
                                               Step 4 → Updating ``POST /{ad_set_id}``; Step 5 → Updating
                                               ``POST /{ad_id}``); Graph: "Param X cannot be updated"
``update.creative``              100           an ad's creative changes by pointing ``creative`` at another creative
                                               id, never by editing the creative: "Ad Creatives cannot be edited
                                               after they have been created except for name and run status"
                                               (S003 §Asynchronous and Batch Requests → Update Ads)
``update.archived``              100/1885088   an ARCHIVED object (or one under an archived parent) accepts only
                                               ``name`` and ``status`` → DELETED (S003 §Manage Your Ad Object's
                                               Status → Archived; §Error Codes 1885088)
``update.deleted.{level}``       100/1885088,  a DELETED object accepts only ``name`` (§Manage Your Ad Object's
                                 1487056,      Status → Deleted; §Error Codes 1487056 ad set, 1487566 campaign)
                                 1487566
``budget.campaign_vs_adset``     100/1885621   an ad set's budget is not set under a campaign budget, and a campaign
                                               without one (its ad sets hold the budgets) is not given one:
                                               "either at the campaign level or at the adset level, not both"
                                               (S003 §Ad Account, Ad Campaigns ``daily_budget``; §Error Codes)
``budget.too_low.update``        100/1885650   a budget is at least ``MIN_DAILY_BUDGET`` (S003 §Error Codes 1885650
                                               "This minimum amount is required … while your budget is updated")
``status.transition``            100           a ``status`` change the status table forbids (shared with the
                                               status task: :func:`~.status.check_transition`)
``update.changed_since``         —             an undo never overwrites a field someone else changed after the
                                               job it undoes (the read differs from what the job set)
===============================  ============  ===================================================================

Choice: giving a budget to a campaign whose ad sets hold the budgets is refused, although the simulator by
default switches such a campaign to a campaign budget and clears its ad sets' (``budget_switch``,
``SimulatorConfig.campaign_budget_switch``; the seeds document no in-place path): an update must not silently
drop every ad set's budget. Switch budget levels with a raw operation when that is what you mean.

No-op changes (the object already has the value) are dropped field by field; an object left with no change
costs no call and is reported ``skipped`` with the reason "unchanged".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final, Literal

from bulk_engine.persistence.keys import key_in_name, strip_key
from bulk_engine.protocol.catalog import MIN_DAILY_BUDGET

from .diff_log import ObjectPlan
from .relative_values import Clamp, ValueSpec
from .rules import RULES
from .status import check_transition

__all__ = [
    "BUDGETS",
    "CREATIVE_SPEC_FIELDS",
    "NUMERIC",
    "UPDATABLE",
    "Level",
    "ObjectPlan",
    "comparable",
    "plan_object",
    "read_fields",
    "wire_value",
]

Level = Literal["campaign", "adset", "ad"]

UPDATABLE: Final[dict[str, frozenset[str]]] = {
    "campaign": frozenset(
        {
            "name",
            "status",
            "daily_budget",
            "lifetime_budget",
            "spend_cap",
            "bid_strategy",
            "start_time",
            "stop_time",
            "adlabels",
            "special_ad_categories",
        }
    ),
    "adset": frozenset(
        {
            "name",
            "status",
            "daily_budget",
            "lifetime_budget",
            "bid_amount",
            "bid_strategy",
            "bid_constraints",
            "targeting",
            "start_time",
            "end_time",
            "optimization_goal",
            "billing_event",
            "promoted_object",
            "adlabels",
            "attribution_spec",
            "daily_min_spend_target",
            "daily_spend_cap",
            "lifetime_min_spend_target",
            "lifetime_spend_cap",
        }
    ),
    "ad": frozenset({"name", "status", "creative", "adlabels", "tracking_specs", "conversion_domain"}),
}
NUMERIC: Final = frozenset(
    {
        "daily_budget",
        "lifetime_budget",
        "spend_cap",
        "bid_amount",
        "daily_min_spend_target",
        "daily_spend_cap",
        "lifetime_min_spend_target",
        "lifetime_spend_cap",
    }
)
BUDGETS: Final = ("daily_budget", "lifetime_budget")
JSON_VALUED: Final = frozenset(
    {
        "targeting",
        "adlabels",
        "promoted_object",
        "bid_constraints",
        "special_ad_categories",
        "attribution_spec",
        "tracking_specs",
    }
)
CREATIVE_SPEC_FIELDS: Final = frozenset(
    {
        "object_story_spec",
        "object_story_id",
        "asset_feed_spec",
        "object_id",
        "title",
        "body",
        "image_hash",
        "image_url",
        "video_id",
        "link_url",
        "call_to_action",
        "call_to_action_type",
        "url_tags",
        "degrees_of_freedom_spec",
    }
)
"""Fields of a creative: set on an ad, they would edit its creative (refused: ``update.creative``)."""
STATE_FIELDS: Final = "id,name,status,effective_status"
PARENT_FIELD: Final = {"campaign": "", "adset": ",campaign_id", "ad": ",adset_id"}
"""Read too: the parent tells an undo rebuilt from the journal the level of each object (``undo.py``)."""
_DELETED_RULE: Final = {
    "campaign": "update.deleted.campaign",
    "adset": "update.deleted.adset",
    "ad": "update.deleted.ad",
}


def read_fields(level: str, fields: set[str]) -> str:
    """The ``fields=`` of the read before the write: the fields to change, the status (for the ARCHIVED /
    DELETED rules), the parent's id and, for ad-set budgets, the campaign's budgets (field expansion)."""
    wanted = [STATE_FIELDS + PARENT_FIELD[level], *sorted(fields - {"id", "name", "status"})]
    if level == "adset" and fields & set(BUDGETS):
        wanted.append("campaign{id,daily_budget,lifetime_budget}")
    return ",".join(wanted)


def comparable(name: str, value: Any) -> Any:
    """A value as read or as requested, in one form so equal values compare equal (Graph answers amounts
    as text, a creative as ``{"id": …}``, JSON fields in any key order)."""
    if value is None:
        return None
    if name in NUMERIC:
        try:
            return int(str(value).strip())
        except ValueError:
            return str(value)
    if name == "creative":
        if isinstance(value, Mapping):
            value = value.get("creative_id", value.get("id"))
        return str(value) if value is not None else None
    if name == "status":
        return str(value).upper()
    if name in JSON_VALUED:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return value
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def wire_value(name: str, value: Any) -> Any:
    """The value as the write sends it (a creative by id: S003 §Ad Account Ads ``creative`` → ``creative_id``)."""
    if name == "creative":
        return {"creative_id": comparable("creative", value)}
    if name == "status":
        return str(value).upper()
    return value


def display(name: str, value: Any) -> Any:
    """The value as a diff shows it: amounts as numbers, a creative as its id, JSON fields parsed."""
    if value is None:
        return None
    if name == "name" and isinstance(value, str):
        return strip_key(value)
    if name in NUMERIC or name in ("creative", "status"):
        return comparable(name, value)
    if name in JSON_VALUED and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _refusal(rule: str, message: str) -> str:
    spec = RULES[rule]
    code = f"{spec.code}/{spec.subcode}" if spec.subcode else str(spec.code)
    return f"{message} (rule {rule}, Graph code {code}; {spec.section})"


def plan_object(
    level: str,
    current: Mapping[str, Any],
    requested: Mapping[str, ValueSpec],
    clamps: Mapping[str, Clamp],
    expected: Mapping[str, Any] | None = None,
) -> ObjectPlan:
    """Plan one object's write from its read (``current``) and the requested values (see the module table).

    ``expected`` (an undo's ``expect.<field>`` columns) are the values the object must still have for a field
    to be changed: a field someone else changed since is never overwritten (rule ``update.changed_since``)."""
    plan = ObjectPlan(str(current.get("id")))
    targets: dict[str, Any] = {}
    for name, spec in requested.items():
        try:
            targets[name] = (
                spec.target(current.get(name), clamps.get(name)) if name in NUMERIC else spec.absolute
            )
        except (ValueError, ArithmeticError) as err:  # the read is Graph's answer: never a crash
            plan.refused, plan.rule = f"{name}: {err}", "update.relative"
            return plan
    for name, target in targets.items():
        old = current.get(name)
        if name == "name" and isinstance(old, str) and isinstance(target, str):
            old, target = _keep_key(old, target)
            targets[name] = target
        if comparable(name, old) == comparable(name, target):
            plan.unchanged.append(name)
            continue
        plan.diff[name] = (display(name, old), display(name, target))
    wanted = expected or {}
    moved = [
        name
        for name in plan.diff
        if name in wanted and _seen(name, current.get(name)) != _seen(name, wanted[name])
    ]
    if moved:
        name = moved[0]
        plan.rule = "update.changed_since"
        plan.refused = (
            f"changed since: {name} is {_seen(name, current.get(name))!r}, not {_seen(name, wanted[name])!r} "
            "as the job left it; not overwritten (rule update.changed_since)"
        )
        return plan
    refused = _state_refusal(level, current, plan.diff)
    if refused is not None:
        plan.rule, plan.refused = refused
        return plan
    plan.params = {name: wire_value(name, targets[name]) for name in plan.diff}
    return plan


def _seen(name: str, value: Any) -> Any:
    """A value as compared with an expected one (a name without its idempotency key)."""
    if name == "name" and isinstance(value, str):
        return strip_key(value)
    return comparable(name, value)


def _keep_key(old: str, new: str) -> tuple[str, str]:
    """A new name keeps the engine's idempotency key the old one carries (`` [be:…]``): without it, a create
    job run again without its journal would not find the object by its key and create it again. Compared
    and shown without the key, as the user wrote it."""
    key = key_in_name(old)
    if key is None or key_in_name(new) is not None:
        return old, new
    return old, f"{new} [{key}]"


def _state_refusal(level: str, current: Mapping[str, Any], diff: Mapping[str, Any]) -> tuple[str, str] | None:
    """The first documented rule the planned change breaks, given the object as read."""
    if not diff:
        return None
    status = _upper(current.get("status"))
    effective = _upper(current.get("effective_status"))
    seen = (status, effective)
    state = "DELETED" if "DELETED" in seen else "ARCHIVED" if "ARCHIVED" in seen else None
    others = sorted(k for k in diff if k not in ("name", "status"))
    if "status" in diff:
        target = str(diff["status"][1])
        reason = check_transition(status, target, effective=effective)
        if reason is not None:
            return "status.transition", _refusal("status.transition", f"status {status} → {target}: {reason}")
    if state == "DELETED" and (others or "status" in diff):
        rule = _DELETED_RULE[level]
        return rule, _refusal(
            rule, f"the {level} is DELETED: only its name can change, not {(others or ['status'])[0]}"
        )
    if state == "ARCHIVED" and others:
        return "update.archived", _refusal(
            "update.archived",
            f"the {level} is ARCHIVED: only its name (and status → DELETED) can change, not {others[0]}",
        )
    for name in BUDGETS:
        if name in diff:
            new = comparable(name, diff[name][1])
            if isinstance(new, int) and new < MIN_DAILY_BUDGET:
                return "budget.too_low.update", _refusal(
                    "budget.too_low.update", f"{name} {new} is below the minimum of {MIN_DAILY_BUDGET}"
                )
    budget = next((name for name in BUDGETS if name in diff), None)
    if budget is not None and level == "adset":
        campaign = current.get("campaign")
        if isinstance(campaign, Mapping) and any(_positive(campaign.get(k)) for k in BUDGETS):
            return "budget.campaign_vs_adset", _refusal(
                "budget.campaign_vs_adset",
                f"the ad set's campaign {campaign.get('id')} has a campaign budget: the ad set's {budget} cannot be set",
            )
    if budget is not None and level == "campaign" and not any(_positive(current.get(k)) for k in BUDGETS):
        return "budget.campaign_vs_adset", _refusal(
            "budget.campaign_vs_adset",
            f"the campaign has no campaign budget (its ad sets hold the budgets): setting its {budget} would "
            "budget at both levels",
        )
    return None


def _upper(value: Any) -> str | None:
    return str(value).upper() if value not in (None, "") else None


def _positive(value: Any) -> bool:
    try:
        return int(str(value)) > 0
    except ValueError:
        return False
