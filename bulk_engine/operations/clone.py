"""Cross-account clone: read a campaign tree in one ad account and re-create it in another, remapping ids.

``/copies`` only copies within an ad account, so a clone reads the source tree (campaign, its live ad sets and
ads, the ads' creatives) and creates it again in the target account as one dependency-linked job:

1. images the creatives use (``image_hash`` anywhere in a creative) are copied with ``POST
   /act_<target>/adimages copy_from={"source_account_id", "hash"}`` (S003 §Ad Account Ad Images) and the
   creatives reference the new hash (``{result=…:$.images.*.hash}``);
2. each creative once (shared creatives stay shared), then the campaign, its ad sets (``campaign_id`` →
   the new campaign) and its ads (``adset_id`` / ``creative_id`` → the new ones).

``status_option`` and ``rename_options`` behave like ``/copies`` (default: PAUSED, top-level name + " - Copy").
Read-only and account-specific fields (ids, timestamps, effective status, Advantage+ state) are not copied;
``source_*_id`` provenance fields are not set (they name objects of the same account). The report maps every
source id to its clone.

Op ids: ``<task>/clone/<source>/img:<hash>``, ``…/cr:<creative>``, ``…/c``, ``…/s:<adset>``, ``…/a:<ad>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bulk_engine.planning.graph import Operation, OpKind
from bulk_engine.protocol.refs import Ref
from bulk_engine.results import OutcomeState

from .base import EngineLike, TaskEnv
from .reads import EdgeRead, read_edges, read_nodes
from .task import TaskReport

__all__ = ["CAMPAIGN_COPY_FIELDS", "clone_campaigns"]

CAMPAIGN_COPY_FIELDS = (
    "name,objective,special_ad_categories,special_ad_category_country,status,buying_type,bid_strategy,"
    "daily_budget,lifetime_budget,spend_cap,start_time,stop_time,promoted_object,is_adset_budget_sharing_enabled"
)
ADSET_COPY_FIELDS = (
    "name,status,billing_event,optimization_goal,destination_type,bid_strategy,bid_amount,bid_constraints,"
    "daily_budget,lifetime_budget,start_time,end_time,targeting,promoted_object,attribution_spec,"
    "frequency_control_specs,is_dynamic_creative,daily_min_spend_target,daily_spend_cap,lifetime_min_spend_target,"
    "lifetime_spend_cap,dsa_beneficiary,dsa_payor"
)
AD_COPY_FIELDS = "name,status,creative,tracking_specs,conversion_domain"
CREATIVE_COPY_FIELDS = (
    "name,object_story_spec,object_story_id,asset_feed_spec,degrees_of_freedom_spec,call_to_action,"
    "instagram_user_id,object_id,page_welcome_message,image_hash,image_url,url_tags,privacy_url"
)
LIVE = ("ACTIVE", "PAUSED")


def _strip(node: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in node.items() if k != "id" and v is not None}


def _hashes(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key == "image_hash" and isinstance(item, str) and item:
                found.add(item)
            else:
                found |= _hashes(item)
    elif isinstance(value, list):
        for item in value:
            found |= _hashes(item)
    return found


def _replace_hashes(value: Any, refs: Mapping[str, Ref]) -> Any:
    if isinstance(value, Mapping):
        return {
            k: (
                refs[v]
                if k == "image_hash" and isinstance(v, str) and v in refs
                else _replace_hashes(v, refs)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_replace_hashes(v, refs) for v in value]
    return value


async def clone_campaigns(
    engine: EngineLike,
    env: TaskEnv,
    report: TaskReport,
    sources: Sequence[str],
    target_account_id: str,
    *,
    status_option: str,
    rename: Mapping[str, Any] | None,
) -> dict[str, dict[str, Any]]:
    """Clone each source campaign into ``target_account_id``; returns ``{source: {new_id, objects, failed}}``."""
    act = env.account_id
    campaigns = await read_nodes(
        engine, sources, CAMPAIGN_COPY_FIELDS, act, report, op_prefix=env.op_id("read", "c")
    )
    adsets = await read_edges(
        engine,
        [EdgeRead(s, f"{s}/adsets", act, {"fields": "id," + ADSET_COPY_FIELDS}) for s in sources],
        report,
        op_prefix=env.op_id("read", "adsets"),
    )
    adset_ids = [str(a["id"]) for s in sources for a in adsets.items.get(s, [])]
    ads = await read_edges(
        engine,
        [EdgeRead(a, f"{a}/ads", act, {"fields": "id," + AD_COPY_FIELDS}) for a in adset_ids],
        report,
        op_prefix=env.op_id("read", "ads"),
    )
    creative_ids = sorted(
        {
            str(ad["creative"]["id"])
            for a in adset_ids
            for ad in ads.items.get(a, [])
            if isinstance(ad.get("creative"), Mapping) and ad["creative"].get("id")
        }
    )
    creatives = await read_nodes(
        engine, creative_ids, CREATIVE_COPY_FIELDS, act, report, op_prefix=env.op_id("read", "cr")
    )
    strategy = str((rename or {}).get("rename_strategy") or "ONLY_TOP_LEVEL_RENAME")
    prefix = str((rename or {}).get("rename_prefix") or "")
    suffix = (rename or {}).get("rename_suffix")
    if rename is None or (not prefix and suffix is None):
        suffix = " - Copy"
    suffix = str(suffix or "")

    def name(value: Any, top: bool) -> str:
        text = str(value or "")
        if strategy == "NO_RENAME" or (strategy == "ONLY_TOP_LEVEL_RENAME" and not top):
            return text
        return f"{prefix}{text}{suffix}"

    def status(value: Any) -> str:
        if status_option == "INHERITED_FROM_SOURCE":
            return str(value) if value in LIVE else "PAUSED"
        return status_option

    ops: list[Operation] = []
    pieces: dict[str, list[tuple[str, str, str]]] = {}
    unreadable: dict[str, list[str]] = {}
    results: dict[str, dict[str, Any]] = {}
    source_account = act.removeprefix("act_")

    def op(op_id: str, edge: str, kind: OpKind, params: dict[str, Any]) -> None:
        ops.append(
            Operation(
                op_id=op_id,
                method="POST",
                path=f"{target_account_id}/{edge}",
                params=params,
                account_id=target_account_id,
                kind=kind,
            )
        )

    for source in sources:
        found = campaigns.items.get(source)
        if not found:
            error = campaigns.errors.get(source)
            results[source] = {
                "new_id": None,
                "objects": [],
                "failed": {source: error.reason if error else "unreadable"},
            }
            continue
        base = env.op_id("clone", source)
        plan: list[tuple[str, str, str]] = []
        pieces[source] = plan
        image_refs: dict[str, Ref] = {}
        creative_refs: dict[str, Ref] = {}
        used = {
            str(ad["creative"]["id"])
            for a in adsets.items.get(source, [])
            for ad in ads.items.get(str(a["id"]), [])
            if isinstance(ad.get("creative"), Mapping)
        }
        for creative_id in sorted(used):
            read_creative = creatives.items.get(creative_id)
            if not read_creative:
                continue
            node = read_creative[0]
            for image in sorted(_hashes(node)):
                if image not in image_refs:
                    image_op = f"{base}/img:{image}"
                    op(
                        image_op,
                        "adimages",
                        OpKind.CREATE_IMAGE,
                        {"copy_from": {"source_account_id": source_account, "hash": image}},
                    )
                    image_refs[image] = Ref(image_op, "$.images.*.hash")
            creative_op = f"{base}/cr:{creative_id}"
            op(creative_op, "adcreatives", OpKind.CREATE_CREATIVE, _replace_hashes(_strip(node), image_refs))
            creative_refs[creative_id] = Ref(creative_op)
            plan.append((creative_op, "adcreative", creative_id))
        campaign_op = f"{base}/c"
        params = _strip(found[0])
        params.update(name=name(params.get("name"), True), status=status(params.get("status")))
        params.setdefault("special_ad_categories", [])
        op(campaign_op, "campaigns", OpKind.CREATE_CAMPAIGN, params)
        plan.append((campaign_op, "campaign", source))
        for adset in reversed(adsets.items.get(source, [])):  # creation order
            adset_id = str(adset["id"])
            adset_op = f"{base}/s:{adset_id}"
            params = _strip(adset)
            params.update(
                name=name(params.get("name"), False),
                status=status(params.get("status")),
                campaign_id=Ref(campaign_op),
            )
            op(adset_op, "adsets", OpKind.CREATE_ADSET, params)
            plan.append((adset_op, "adset", adset_id))
            for ad in reversed(ads.items.get(adset_id, [])):
                ad_id = str(ad["id"])
                raw_creative = ad.get("creative")
                creative_id = str(raw_creative.get("id")) if isinstance(raw_creative, Mapping) else ""
                creative_ref = creative_refs.get(creative_id)
                params = _strip(ad)
                params.update(
                    name=name(params.get("name"), False),
                    status=status(params.get("status")),
                    adset_id=Ref(adset_op),
                    creative={"creative_id": creative_ref},
                )
                if creative_ref is None:  # its creative could not be read
                    unreadable.setdefault(source, []).append(ad_id)
                    continue
                ad_op = f"{base}/a:{ad_id}"
                op(ad_op, "ads", OpKind.CREATE_AD, params)
                plan.append((ad_op, "ad", ad_id))
    outcomes = await report.run(engine, ops, env.ctx) if ops else {}
    for source, plan in pieces.items():
        objects = []
        failed: dict[str, str] = {}
        for op_id, kind, source_id in plan:
            outcome = outcomes.get(op_id)
            new_id = (
                outcome.graph_id if outcome is not None and outcome.state is OutcomeState.SUCCEEDED else None
            )
            objects.append({"type": kind, "source_id": source_id, "copied_id": new_id})
            if new_id is None:
                failed[source_id] = (outcome.reason if outcome is not None else None) or "not run"
        for ad_id in unreadable.get(source, []):
            failed[ad_id] = "its creative could not be read"
        new_campaign = next((o["copied_id"] for o in objects if o["type"] == "campaign"), None)
        results[source] = {"mode": "clone", "new_id": new_campaign, "objects": objects, "failed": failed}
    return results
