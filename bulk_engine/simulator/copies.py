"""``/copies`` edges, the Advantage+ state and the Advantage+ migration.

**Copies** (SPEC-DIGEST §6.1 — the seeds only show ``POST <AD_CAMPAIGN_ID>/copies?migrate_to_advantage_plus=
true``; the rest follows Meta's public ``/copies`` references, marked [supplemental] in the digest):

- ``POST /<campaign|adset|ad>/copies`` with ``deep_copy`` (bool, default false: the object only),
  ``status_option`` ``ACTIVE | PAUSED | INHERITED_FROM_SOURCE`` (default ``PAUSED``; applied to every copied
  object; inheriting from an ARCHIVED/DELETED source gives PAUSED since only ACTIVE/PAUSED can be created),
  ``rename_options`` ``{rename_strategy: DEEP_RENAME | ONLY_TOP_LEVEL_RENAME | NO_RENAME, rename_prefix,
  rename_suffix}`` (also accepted as top-level params; default ``ONLY_TOP_LEVEL_RENAME`` with the suffix
  ``" - Copy"``, which is also used when a strategy that renames is given without prefix or suffix),
  ``campaign_id`` (target campaign of an ad-set copy), ``adset_id`` (target ad set of an ad copy),
  ``start_time`` / ``end_time`` (for the copied ad sets).
- Answers ``{"copied_campaign_id" | "copied_adset_id" | "copied_ad_id": id, "ad_object_ids": [{"ad_object_type":
  "campaign" | "adset" | "ad", "source_id", "copied_id"}, …]}`` in depth-first order (the seed shows the
  ``campaign`` entry; the other type names are the simulator's node types).
- Copies record ``source_campaign_id`` / ``source_adset_id`` / ``source_ad_id``; ``GET /<id>/copies`` lists
  them like any edge (paging, status filter). Copied ads share the source's creative id (creatives are
  immutable, so sharing is safe).
- A deep copy copies the live (ACTIVE / PAUSED) children only. One that would create more than
  ``SimulatorConfig.sync_copy_limit`` (3, "You can copy a maximum of 3 entities between campaign, ad sets and
  ads") objects is refused before anything is created: code 100, subcode ``1885194``, "The number of objects to
  copy is too large for a synchronous request; please use an asynchronous batch request" (blame ``deep_copy``)
  — the engine then sends the copy through ``async_batch_requests``.
- Archived and deleted objects **can** be copied: the documented errors for them (``1885088``, ``1487056``,
  ``1487566``) tell the user to "duplicate this ad …, which will create a new ad with the same settings". A
  copy is never placed under an archived or deleted target (code 100, blame ``campaign_id`` / ``adset_id``),
  and an ad-set copy with its own budget under a campaign with a campaign budget answers ``1885621``.

**Advantage+ state**: see :mod:`~bulk_engine.simulator.advantage` (computed on read; migration reads it too).

**Migration** (S003 §Migrate Advantage+ Shopping Campaigns and Advantage+ App Campaigns into Advantage+
Campaigns): ``POST /<campaign>/copies?migrate_to_advantage_plus=true`` copies and migrates (source kept;
``deep_copy`` and the other copy options apply) → ``{"copied_campaign_id", "ad_object_ids"}``;
``POST /<campaign>?migrate_to_advantage_plus=true`` migrates in place → ``{"success": true}`` (objects.py's
update runs :func:`migrate_in_place`, registered with its ``on_update_flag``; ``validate_only`` checks without
migrating; repeating it on a migrated campaign is a no-op success). Migrating sets ``smart_promotion_type =
GUIDED_CREATION`` and [inference] moves the budget of the campaign's single budgeted ad set (ASC allows one ad
set) to the campaign, as Advantage+ campaign budget, so a plain ASC comes out ``ADVANTAGE_PLUS_SALES``. The
seeds give no codes for the documented refusals, so the simulator answers code 100 with these subcodes
(simulator-assigned, stable):

- ``4990001`` copy-and-migrate of an AAC — "can only be migrated, not copied" (blame
  ``migrate_to_advantage_plus``);
- ``4990002`` the campaign uses ECBP — "using existing_customer_budget_percentage cannot be migrated" (blame
  ``existing_customer_budget_percentage``);
- ``4990003`` more than 150 ads — "with more than 150 ads cannot be migrated" (blame
  ``migrate_to_advantage_plus``);
- ``4990004`` not an ASC / AAC campaign (including one already migrated, for copy-and-migrate) — only ASC/AAC
  are migrated (blame ``migrate_to_advantage_plus``).

"More than 150" counts the campaign's non-deleted ads against ``SimulatorConfig.max_ads_for_migration``;
"using ECBP" means the campaign or one of its ad sets has ``existing_customer_budget_percentage`` > 0. Archived
or deleted campaigns cannot be migrated in place (their documented edit errors); they can be copied and
migrated.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bulk_engine.protocol.catalog import (
    SUPPORTED_ADVANTAGE_STRATEGIES,
)

from . import status
from .advantage import (
    AAC,
    ASC,
    GUIDED_CREATION,
    positive,
)
from .errors import GraphAPIError, invalid_param, rule_error
from .listing import list_edge
from .objects import on_update_flag
from .routing import RouteTable
from .store import AD, ADSET, CAMPAIGN, Node

if TYPE_CHECKING:
    from .context import CallContext

routes = RouteTable()

STATUS_OPTIONS = ("ACTIVE", "PAUSED", "INHERITED_FROM_SOURCE")
RENAME_STRATEGIES = ("DEEP_RENAME", "ONLY_TOP_LEVEL_RENAME", "NO_RENAME")
DEFAULT_RENAME_SUFFIX = " - Copy"

SUBCODE_SYNC_COPY_LIMIT = 1885194
SUBCODE_AAC_COPY = 4990001
SUBCODE_ECBP = 4990002
SUBCODE_TOO_MANY_ADS = 4990003
SUBCODE_NOT_MIGRATABLE = 4990004

SOURCE_KEYS = {CAMPAIGN: "source_campaign_id", ADSET: "source_adset_id", AD: "source_ad_id"}
COPIED_KEYS = {CAMPAIGN: "copied_campaign_id", ADSET: "copied_adset_id", AD: "copied_ad_id"}
# Stored fields a copy never inherits (ids, timestamps, provenance, simulator-private markers).
NOT_COPIED = {"id", "created_time", "updated_time", *SOURCE_KEYS.values()}


# --- copy options -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RenameOptions:
    """``rename_options``: which copies get renamed, and how."""

    strategy: str = "ONLY_TOP_LEVEL_RENAME"
    prefix: str = ""
    suffix: str = DEFAULT_RENAME_SUFFIX

    def apply(self, name: str, *, top_level: bool) -> str:
        if self.strategy == "NO_RENAME" or (self.strategy == "ONLY_TOP_LEVEL_RENAME" and not top_level):
            return name
        return f"{self.prefix}{name}{self.suffix}"


@dataclass(frozen=True)
class CopyOptions:
    deep: bool
    status_option: str
    rename: RenameOptions
    start_time: str | None
    end_time: str | None
    migrate: bool

    def status_for(self, source: Node) -> str:
        if self.status_option == "INHERITED_FROM_SOURCE":
            return source.status if source.status in status.LIVE_CONFIGURED else "PAUSED"
        return self.status_option


def _copy_options(ctx: CallContext) -> CopyOptions:
    params = ctx.params
    option = params.str("status_option") or "PAUSED"
    if option not in STATUS_OPTIONS:
        raise invalid_param(
            f"Param status_option must be one of {{{', '.join(STATUS_OPTIONS)}}} - got {option}",
            "status_option",
        )
    raw = params.json("rename_options")
    if raw is not None and not isinstance(raw, dict):
        raise invalid_param("Param rename_options must be a JSON object", "rename_options")
    spec: dict[str, Any] = dict(raw or {})
    for key in ("rename_strategy", "rename_prefix", "rename_suffix"):  # flat params, as some SDKs send them
        if params.has(key) and key not in spec:
            spec[key] = params.str(key)
    strategy = str(spec.get("rename_strategy") or "ONLY_TOP_LEVEL_RENAME")
    if strategy not in RENAME_STRATEGIES:
        raise invalid_param(
            f"Param rename_options[rename_strategy] must be one of {{{', '.join(RENAME_STRATEGIES)}}} - got "
            f"{strategy}",
            "rename_options",
        )
    prefix, suffix = spec.get("rename_prefix"), spec.get("rename_suffix")
    if prefix is None and suffix is None:
        rename = RenameOptions(strategy)
    else:
        rename = RenameOptions(strategy, str(prefix or ""), str(suffix or ""))
    start_time, end_time = params.str("start_time"), params.str("end_time")
    start, end = status.parse_time(start_time), status.parse_time(end_time)
    for key, raw_value, parsed in (("start_time", start_time, start), ("end_time", end_time, end)):
        if raw_value is not None and raw_value != "0" and parsed is None:
            raise invalid_param(f"Param {key} must be a valid datetime", key)
    if start is not None and end is not None and end <= start:
        raise invalid_param("The end time must be after the start time", "end_time")
    return CopyOptions(
        deep=params.bool("deep_copy"),
        status_option=option,
        rename=rename,
        start_time=start_time,
        end_time=end_time,
        migrate=params.bool("migrate_to_advantage_plus"),
    )


# --- copy planning --------------------------------------------------------------------------------------
@dataclass
class PlannedCopy:
    """One object to copy: its source, the planned copy's parent (a planned copy or an existing node)."""

    source: Node
    parent: PlannedCopy | Node | None
    top_level: bool
    copied: Node | None = None


def _live(nodes: list[Node]) -> list[Node]:
    return [n for n in nodes if n.status in status.LIVE_CONFIGURED]


def _plan(ctx: CallContext, source: Node, target: Node | None, deep: bool) -> list[PlannedCopy]:
    """Depth-first list of copies: the source, then (deep) each live ad set and its live ads."""
    top = PlannedCopy(source, target, top_level=True)
    plan = [top]
    if not deep:
        return plan
    if source.type == CAMPAIGN:
        for adset in _live(ctx.store.children(source.id, ADSET)):
            adset_copy = PlannedCopy(adset, top, top_level=False)
            plan.append(adset_copy)
            plan.extend(PlannedCopy(ad, adset_copy, top_level=False) for ad in _live(_ads_of(ctx, adset)))
    elif source.type == ADSET:
        plan.extend(PlannedCopy(ad, top, top_level=False) for ad in _live(_ads_of(ctx, source)))
    return plan


def _ads_of(ctx: CallContext, adset: Node) -> list[Node]:
    return ctx.store.children(adset.id, AD)


def _target_parent(ctx: CallContext, source: Node) -> Node | None:
    """The parent a copy goes under: ``campaign_id`` / ``adset_id`` when given, else the source's parent."""
    if source.type == CAMPAIGN:
        return None
    key, parent_type = ("campaign_id", CAMPAIGN) if source.type == ADSET else ("adset_id", ADSET)
    parent_id = ctx.params.str(key) or source.parent_id
    parent = ctx.store.get(str(parent_id)) if parent_id else None
    if parent is None or parent.type != parent_type or parent.account_id != source.account_id:
        if ctx.params.has(key):
            raise invalid_param(
                f"Invalid {key} {parent_id}: it must be a {parent_type} of the same account", key
            )
        raise invalid_param(f"This {source.type} cannot be copied: it has no {parent_type}", "id")
    if status.effective_status(ctx.store, parent, ctx.now) in ("ARCHIVED", "DELETED"):
        raise invalid_param(f"Cannot copy into an archived or deleted {parent_type} ({parent.id})", key)
    return parent


def _check_budget_rule(source: Node, target: Node | None) -> None:
    """An ad set with its own budget cannot go under a campaign with a campaign budget (1885621)."""
    if source.type != ADSET or target is None:
        return
    own = any(positive(source.get(k)) for k in ("daily_budget", "lifetime_budget"))
    shared = any(positive(target.get(k)) for k in ("daily_budget", "lifetime_budget"))
    if own and shared:
        raise rule_error(
            100,
            1885621,
            "Can't Set Ad Set Budget",
            "You can only set an ad set budget or a campaign budget.",
            "campaign_id",
        )


def _create_copies(ctx: CallContext, plan: list[PlannedCopy], options: CopyOptions) -> None:
    for item in plan:
        source = item.source
        data = {k: copy.deepcopy(v) for k, v in source.data.items() if not k.startswith("_")}
        for key in NOT_COPIED:
            data.pop(key, None)
        data["name"] = options.rename.apply(str(source.get("name", "")), top_level=item.top_level)
        data["status"] = options.status_for(source)
        data[SOURCE_KEYS[source.type]] = source.id
        parent = item.parent.copied if isinstance(item.parent, PlannedCopy) else item.parent
        if source.type == ADSET:
            assert parent is not None
            data["campaign_id"] = parent.id
            for key in ("start_time", "end_time"):
                value = getattr(options, key)
                if value is not None:
                    data[key] = value
        elif source.type == AD:
            assert parent is not None
            data["adset_id"] = parent.id
            data["campaign_id"] = parent.get("campaign_id")
        created = ctx.store.add(
            source.type,
            data,
            now=ctx.now,
            account_id=source.account_id,
            parent_id=parent.id if parent is not None else None,
        )
        created.data["created_time"] = status.iso_time(ctx.now)
        created.data["updated_time"] = created.data["created_time"]
        status.after_create(ctx, created)
        item.copied = created


# --- the edges ----------------------------------------------------------------------------------------
def _post_copies(ctx: CallContext, node: Node | None) -> Any:
    assert node is not None
    options = _copy_options(ctx)
    if options.migrate:
        if node.type != CAMPAIGN:
            raise invalid_param(
                "migrate_to_advantage_plus is only available on campaigns", "migrate_to_advantage_plus"
            )
        check_migration(ctx, node, copying=True)
    target = _target_parent(ctx, node)
    _check_budget_rule(node, target)
    plan = _plan(ctx, node, target, options.deep)
    if len(plan) > ctx.config.sync_copy_limit:
        raise GraphAPIError(
            code=100,
            subcode=SUBCODE_SYNC_COPY_LIMIT,
            message=(
                "(#100) The number of objects to copy is too large for a synchronous request; please use an "
                "asynchronous batch request"
            ),
            user_title="Too Many Objects to Copy",
            user_msg=(
                f"This copy would create {len(plan)} objects; a synchronous copy creates at most "
                f"{ctx.config.sync_copy_limit}. Send the copy as an asynchronous batch request instead."
            ),
            blame_field_specs=[["deep_copy"]],
        )
    _create_copies(ctx, plan, options)
    top = plan[0].copied
    assert top is not None
    if options.migrate:
        adsets = [p.copied for p in plan if p.copied is not None and p.copied.type == ADSET]
        budget_sources = adsets if options.deep else _live(ctx.store.children(node.id, ADSET))
        _migrate(ctx, top, budget_sources, take_budget=options.deep)
    return {
        COPIED_KEYS[node.type]: top.id,
        "ad_object_ids": [
            {"ad_object_type": p.source.type, "source_id": p.source.id, "copied_id": p.copied.id}
            for p in plan
            if p.copied is not None
        ],
    }


def _get_copies(ctx: CallContext, node: Node | None) -> Any:
    """``GET /<id>/copies``: the objects whose ``source_*_id`` is this one."""
    assert node is not None
    key = SOURCE_KEYS[node.type]
    owner = node.account_id or node.id
    items = [n for n in ctx.store.children(owner, node.type) if n.get(key) == node.id]
    return list_edge(ctx, items)


for _type in (CAMPAIGN, ADSET, AD):
    routes.add("POST", _type, "copies")(_post_copies)
    routes.add("GET", _type, "copies")(_get_copies)


# --- migration ------------------------------------------------------------------------------------------
def check_migration(ctx: CallContext, campaign: Node, *, copying: bool) -> None:
    """The documented refusals (S003 §Migrate … → Limitations); see the module docstring for the codes."""
    kind = campaign.get("smart_promotion_type")
    if kind == AAC and copying:
        raise _migration_error(
            SUBCODE_AAC_COPY,
            "Advantage+ App Campaign Cannot Be Copied",
            "Advantage+ app campaigns can only be migrated, not copied, into the Advantage+ format. Use POST "
            "/<CAMPAIGN_ID>?migrate_to_advantage_plus=true to migrate it in place.",
            "migrate_to_advantage_plus",
        )
    if kind not in (ASC, AAC):
        raise _migration_error(
            SUBCODE_NOT_MIGRATABLE,
            "Campaign Cannot Be Migrated",
            "Only Advantage+ shopping campaigns (smart_promotion_type=AUTOMATED_SHOPPING_ADS) and Advantage+ "
            "app campaigns (SMART_APP_PROMOTION) can be migrated to the Advantage+ structure.",
            "migrate_to_advantage_plus",
        )
    adsets = [a for a in ctx.store.children(campaign.id, ADSET) if a.status != "DELETED"]
    if any(_positive_number(n.get("existing_customer_budget_percentage")) for n in (campaign, *adsets)):
        raise _migration_error(
            SUBCODE_ECBP,
            "Campaign Uses Existing Customer Budget Percentage",
            "Advantage+ shopping campaigns using existing_customer_budget_percentage cannot be migrated to the "
            "Advantage+ structure using the Marketing API. Open the campaign in Ads Manager to migrate it.",
            "existing_customer_budget_percentage",
        )
    ads = sum(1 for ad in ctx.store.children(campaign.id, AD) if ad.status != "DELETED")
    if ads > ctx.config.max_ads_for_migration:
        raise _migration_error(
            SUBCODE_TOO_MANY_ADS,
            "Too Many Ads to Migrate",
            f"Advantage+ shopping campaigns with more than {ctx.config.max_ads_for_migration} ads cannot be "
            f"migrated to the Advantage+ structure using the Marketing API (this campaign has {ads}). Open the "
            "campaign in Ads Manager to migrate it.",
            "migrate_to_advantage_plus",
        )


@on_update_flag("migrate_to_advantage_plus")
def migrate_in_place(ctx: CallContext, node: Node, *, dry_run: bool = False) -> None:
    """``POST /<campaign>?migrate_to_advantage_plus=true`` (objects.py's update runs this hook)."""
    if node.type != CAMPAIGN:
        raise invalid_param(
            "migrate_to_advantage_plus is only available on campaigns", "migrate_to_advantage_plus"
        )
    status.check_update(ctx, node, {"smart_promotion_type": GUIDED_CREATION})  # archived / deleted refusals
    if node.get("smart_promotion_type") == GUIDED_CREATION:
        return  # already migrated: repeating the call (e.g. a retry after a timeout) is a no-op success
    check_migration(ctx, node, copying=False)
    if dry_run:
        return
    adsets = _live(ctx.store.children(node.id, ADSET))
    _migrate(ctx, node, adsets, take_budget=True)


def _migrate(ctx: CallContext, campaign: Node, adsets: list[Node], *, take_budget: bool) -> None:
    """Turn ``campaign`` into the Advantage+ structure; move a single ad-set budget to the campaign."""
    campaign.data["smart_promotion_type"] = GUIDED_CREATION
    campaign.data.pop("existing_customer_budget_percentage", None)
    keys = ("daily_budget", "lifetime_budget")
    budgeted = [a for a in adsets if any(positive(a.get(k)) for k in keys)]
    if not any(positive(campaign.get(k)) for k in keys) and len(budgeted) == 1:
        adset = budgeted[0]
        for key in keys:
            if positive(adset.get(key)):
                campaign.data[key] = adset.get(key)
                if take_budget:
                    adset.data.pop(key, None)
        strategy = adset.get("bid_strategy")
        campaign.data["bid_strategy"] = (
            strategy if strategy in SUPPORTED_ADVANTAGE_STRATEGIES else "LOWEST_COST_WITHOUT_CAP"
        )
        if take_budget:
            adset.data.pop("bid_strategy", None)
            adset.data["updated_time"] = status.iso_time(ctx.now)
    campaign.data["updated_time"] = status.iso_time(ctx.now)


def _migration_error(subcode: int, title: str, msg: str, field_name: str) -> GraphAPIError:
    return rule_error(100, subcode, title, msg, field_name)


def _positive_number(value: Any) -> bool:
    try:
        return float(str(value)) > 0
    except ValueError:
        return False
