"""One rule book, two implementations kept honest (issue "A typed front door", Deliver 4).

The engine checks the documented Graph rules locally (``operations/rules/``) so a job fails before any call;
the simulator checks them again (``simulator/validation/``, ``status.py``, ``messages.py``) because it is the
test oracle and must not trust its client. Two tests keep them one rule book:

- **the catalog**: every local rule id is a simulator rule with the same Graph code and subcode, or says
  where the simulator enforces it, or is local advice Graph has no error for (and then carries no code);
- **behaviour**: for each case of the table, a create task that breaks exactly that rule is refused locally
  with that rule id at a field path, and — sent anyway, bypassing the local check — refused by the simulator
  over HTTP with the same rule, code, subcode and blamed field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bulk_engine import BulkEngine, OutcomeState
from bulk_engine.operations import CompileContext, TaskEnv
from bulk_engine.operations import rules as local
from bulk_engine.operations.create import CreateTask
from bulk_engine.simulator import messages as sim_messages
from bulk_engine.simulator import status as sim_status
from bulk_engine.simulator import validation as sim

# Rules the simulator enforces outside its validation table: where, and the subcode it answers with.
ELSEWHERE: dict[str, tuple[str, int | None]] = {
    "status.transition": ("simulator/status.py: the status table", None),
    "update.archived": ("simulator/status.py", sim_status.SUBCODE_ARCHIVED_EDIT),
    "update.deleted.ad": ("simulator/status.py", sim_status.SUBCODE_ARCHIVED_EDIT),
    "update.deleted.adset": ("simulator/status.py", sim_status.SUBCODE_ADSET_DELETED),
    "update.deleted.campaign": ("simulator/status.py", sim_status.SUBCODE_CAMPAIGN_DELETED),
    "message.interval": ("simulator/messages.py", sim_messages.SUBCODE_OUTSIDE_WINDOW),
    "update.creative": (
        "simulator/validation/ creative.immutable",
        sim.RULES["creative.immutable"].subcode,
    ),
    "update.field": ("simulator/validation/updates.py", None),
}
# Local names of simulator rules (kept apart so each file reads like its seed section).
RENAMED = {"campaign.smart_promotion_type": "asc.removed_v25"}
# Local advice: Graph creates such an object, it is just not what was asked for (no Graph error to mirror).
ADVICE = {"advantage.budget", "advantage.objective", "advantage.placement", "update.relative"}


def test_every_local_rule_has_its_simulator_twin_with_the_same_code() -> None:
    for rule_id, rule in local.RULES.items():
        if rule_id in ADVICE:
            assert rule.code is None, f"{rule_id}: advice carries no Graph code"
            continue
        if rule_id in ELSEWHERE:
            where, subcode = ELSEWHERE[rule_id]
            assert rule.subcode == subcode, f"{rule_id}: {where} answers subcode {subcode}"
            continue
        twin = sim.RULES.get(RENAMED.get(rule_id, rule_id))
        assert twin is not None, f"{rule_id} has no simulator rule"
        assert (rule.code, rule.subcode) == (twin.code, twin.subcode), rule_id


# --- behaviour -------------------------------------------------------------------------------------------
TARGETING = {"geo_locations": {"countries": ["US"]}}
CAMPAIGN: dict[str, Any] = {"name": "C", "objective": "OUTCOME_TRAFFIC", "special_ad_categories": []}
ADSET: dict[str, Any] = {
    "name": "S",
    "billing_event": "IMPRESSIONS",
    "optimization_goal": "LINK_CLICKS",
    "daily_budget": 1000,
    "targeting": TARGETING,
}
FUTURE = 1_900_000_000  # 2030


@dataclass(frozen=True)
class Case:
    rule: str
    campaign: dict[str, Any]
    adset: dict[str, Any] | None = None  # None: no ad set
    creative: dict[str, Any] | None = None  # a shared creative "k" and an ad using it
    ad: dict[str, Any] | None = None

    @property
    def id(self) -> str:
        return self.rule


def _with(base: dict[str, Any], *drop: str, **changes: Any) -> dict[str, Any]:
    return {**{k: v for k, v in base.items() if k not in drop}, **changes}


def _creative(page: str, **changes: Any) -> dict[str, Any]:
    story = {"page_id": page, "link_data": {"link": "https://example.com", "message": "m"}}
    return {"name": "K", "object_story_spec": story, **changes}


CASES: list[Callable[[str], Case]] = [
    lambda page: Case("campaign.spend_cap.min", _with(CAMPAIGN, spend_cap=500)),
    lambda page: Case("budget.too_low", CAMPAIGN, _with(ADSET, daily_budget=50)),
    lambda page: Case("budget.campaign_vs_adset", _with(CAMPAIGN, daily_budget=5000), ADSET),
    lambda page: Case("adset.targeting.required", CAMPAIGN, _with(ADSET, "targeting")),
    lambda page: Case("adset.targeting.geo", CAMPAIGN, _with(ADSET, targeting={"age_min": 18})),
    lambda page: Case("adset.budget.required", CAMPAIGN, _with(ADSET, "daily_budget")),
    lambda page: Case(
        "adset.lifetime.end_time", CAMPAIGN, _with(ADSET, "daily_budget", lifetime_budget=100_000)
    ),
    lambda page: Case(
        "adset.daily.duration",
        CAMPAIGN,
        _with(ADSET, start_time=FUTURE, end_time=FUTURE + 3600),
    ),
    lambda page: Case("time.invalid", CAMPAIGN, _with(ADSET, start_time="next tuesday")),
    lambda page: Case(
        "adset.bid_amount.required", CAMPAIGN, _with(ADSET, bid_strategy="LOWEST_COST_WITH_BID_CAP")
    ),
    lambda page: Case(
        "adset.bid.automatic",
        CAMPAIGN,
        _with(ADSET, bid_strategy="LOWEST_COST_WITHOUT_CAP", bid_amount=100),
    ),
    lambda page: Case("adset.bid_amount.min", CAMPAIGN, _with(ADSET, bid_amount=1)),
    lambda page: Case(
        "adset.roas_floor.required",
        _with(CAMPAIGN, objective="OUTCOME_SALES"),
        _with(
            ADSET,
            bid_strategy="LOWEST_COST_WITH_MIN_ROAS",
            optimization_goal="VALUE",
            promoted_object={"pixel_id": "1", "custom_event_type": "PURCHASE"},
        ),
    ),
    lambda page: Case("adset.spend_targets", CAMPAIGN, _with(ADSET, daily_min_spend_target=500)),
    lambda page: Case(
        "adset.lead_page",
        _with(CAMPAIGN, objective="OUTCOME_LEADS"),
        _with(ADSET, optimization_goal="LEAD_GENERATION"),
    ),
    lambda page: Case(
        "msg.objective",
        _with(CAMPAIGN, objective="OUTCOME_AWARENESS"),
        _with(
            ADSET,
            destination_type="MESSENGER",
            optimization_goal="CONVERSATIONS",
            promoted_object={"page_id": page},
        ),
    ),
    lambda page: Case(
        "msg.promoted_page",
        _with(CAMPAIGN, objective="OUTCOME_ENGAGEMENT"),
        _with(ADSET, destination_type="MESSENGER", optimization_goal="CONVERSATIONS"),
    ),
    lambda page: Case("creative.spec.required", CAMPAIGN, ADSET, creative={"name": "K"}),
    lambda page: Case(
        "ad.bid_amount", CAMPAIGN, ADSET, creative=_creative(page), ad={"extra_params": {"bid_amount": 100}}
    ),
    lambda page: Case(
        "ad.schedule", CAMPAIGN, ADSET, creative=_creative(page), ad={"ad_schedule_start_time": FUTURE}
    ),
    lambda page: Case(
        "adset.frequency_control",
        CAMPAIGN,
        _with(
            ADSET, frequency_control_specs=[{"event": "IMPRESSIONS", "interval_days": 7, "max_frequency": 2}]
        ),
    ),
    lambda page: Case(
        "adset.roas_floor.range",
        _with(CAMPAIGN, objective="OUTCOME_SALES"),
        _with(
            ADSET,
            bid_strategy="LOWEST_COST_WITH_MIN_ROAS",
            bid_constraints={"roas_average_floor": 10**12},
            optimization_goal="VALUE",
            promoted_object={"pixel_id": "1", "custom_event_type": "PURCHASE"},
        ),
    ),
    lambda page: Case(
        "msg.billing_event",
        _with(CAMPAIGN, objective="OUTCOME_ENGAGEMENT"),
        _with(
            ADSET,
            destination_type="MESSENGER",
            billing_event="LINK_CLICKS",
            optimization_goal="CONVERSATIONS",
            promoted_object={"page_id": page},
        ),
    ),
    lambda page: Case(
        "msg.optimization_goal",
        _with(CAMPAIGN, objective="OUTCOME_ENGAGEMENT"),
        _with(ADSET, "optimization_goal", destination_type="MESSENGER", promoted_object={"page_id": page}),
    ),
    lambda page: Case(
        "creative.story_spec",
        CAMPAIGN,
        ADSET,
        creative={"name": "K", "object_story_spec": {"link_data": {"link": "https://example.com"}}},
    ),
    lambda page: Case(
        "creative.instagram_ids",
        CAMPAIGN,
        ADSET,
        creative=_creative(
            page, instagram_user_id="3000000001", extra_params={"instagram_actor_id": "3000000001"}
        ),
    ),
]

# Shared rules without a case above, and why: each is still tested on both sides on its own
# (tests/operations/test_ops_rules.py, tests/simulator/test_validation.py).
NOT_IN_TABLE = {
    "create.status": "the typed specs only take ACTIVE or PAUSED: the schema refuses first",
    "campaign.sac.required": "special_ad_categories is required by the schema",
    "adset.billing_event.required": "billing_event is required by the schema",
    "adset.name.length": "the schema caps names at 400 characters",
    "budget.too_low.update": "an update rule (the update task), not a create",
    "adset.app_install_billing": "needs an app promoted object the simulator's account does not have",
    "msg.special_ad_categories": "needs a multi-destination tree (seed 000): test_validation's seed tests",
    "msg.creative_destination": "needs a multi-destination tree (seed 000): test_validation's seed tests",
    "creative.dof_destinations": "needs a multi-destination tree (seed 000): test_validation's seed tests",
    "creative.cta_destination": "needs a messaging tree: test_validation's seed tests",
    "creative.icebreaker.title": "needs a messaging tree with a welcome message: seed 000 cases",
    "creative.icebreaker.response": "needs a messaging tree with a welcome message: seed 000 cases",
    "creative.welcome.text": "needs a messaging tree with a welcome message: seed 000 cases",
    "creative.asset_feed.limits": "needs an asset feed creative: test_validation",
    "creative.asset_feed.unique": "needs an asset feed creative: test_validation",
    "creative.story_id": "needs an existing post of the page: test_validation",
    "ad.page_mismatch": "needs a messaging tree on two pages: test_validation",
    "ad.website_url": "needs a conversion objective tree: test_validation",
    "ad.creative.required": "an ad the task compiles always names a creative (none: the rule stops it first)",
}


def test_every_shared_rule_is_in_the_table_or_says_why_not() -> None:
    shared = set(local.RULES) & set(sim.RULES)
    in_table = {make("PAGE").rule for make in CASES}
    assert shared - in_table <= set(NOT_IN_TABLE), sorted(shared - in_table - set(NOT_IN_TABLE))
    assert set(NOT_IN_TABLE) <= set(sim.RULES) and not set(NOT_IN_TABLE) & in_table


def _task(case: Case) -> CreateTask:
    adsets = []
    creatives = {}
    if case.adset is not None:
        ads = []
        if case.creative is not None:
            creatives["k"] = case.creative
            ads = [{"name": "A", "creative": "k", **(case.ad or {})}]
        adsets = [{**case.adset, "ads": ads}]
    return CreateTask.model_validate(
        {
            "type": "create",
            "key": "p",
            "creatives": creatives,
            "campaigns": [{**case.campaign, "ad_sets": adsets}],
        }
    )


def _object_path(path: tuple[Any, ...]) -> list[str]:
    """A task-relative issue path as Graph blames it: the fields inside the object, its tree prefix dropped."""
    parts = list(path)
    while parts and parts[0] in ("campaigns", "ad_sets", "ads", "creatives") and len(parts) > 1:
        parts = parts[2:]
    return [str(p) for p in parts]


@pytest.mark.parametrize("make", CASES, ids=[make("PAGE").id for make in CASES])
async def test_a_rule_broken_in_a_job_is_refused_by_both_alike(
    make: Callable[[str], Case], start_sim: Any
) -> None:
    sim_server = await start_sim()
    case = make(sim_server.page_id)
    task = _task(case)
    found = [i for i in task.rule_issues() if i.rule == case.rule]
    assert found, f"no local issue {case.rule}: {[str(i) for i in task.rule_issues()]}"
    issue = found[0]
    assert (issue.code, issue.subcode) == (local.RULES[case.rule].code, local.RULES[case.rule].subcode)

    act = sim_server.accounts[0]
    env = TaskEnv("p", act, Path.cwd(), CompileContext(default_account_id=act))
    async with BulkEngine(sim_server.engine_config()) as engine:
        result = await engine.run(list(task.compile(env)))  # the local check bypassed: sent as compiled
    refused = [o for o in result.outcomes if o.state is OutcomeState.FAILED and o.error is not None]
    assert refused, f"the simulator accepted what {case.rule} forbids: {result.counts}"
    error = refused[0].error
    assert error is not None
    titles = {rule.title: name for name, rule in sim.RULES.items()}
    assert titles.get(error.error_user_title or "") == RENAMED.get(case.rule, case.rule), error
    assert (error.code, error.error_subcode) == (issue.code, issue.subcode)
    blamed = error.blame_field_specs or []
    assert _object_path(issue.path) in [list(b) for b in blamed], (issue.path, blamed)
