"""Cross-account clone: read a campaign tree in one ad account and re-create it in another, remapping ids.

``/copies`` only copies within an ad account, so a clone reads the source tree (campaign, its live ad sets and
ads, the ads' creatives) and creates it again in the target account as one dependency-linked job:

1. images the creatives use (``image_hash`` anywhere in a creative, asset-feed image hashes) are copied with
   ``POST /act_<target>/adimages copy_from={"source_account_id", "hash"}`` (S003 §Ad Account Ad Images: image
   libraries are per account) and the creatives reference the copy (``{result=…:$.images.*.hash}``, the
   same content hash); a creative's Facebook-hosted ``image_url`` is dropped in favour of its copied hash (S003
   §Ad Account Ad Creatives: "Do not use image URLs returned by Facebook");
2. videos: "The video_id must be associated with the ad account" (S003 §Video and Carousel Ads) and the seeds
   document no cross-account video copy. ``video_map`` ({source video id: video id in the target account})
   remaps them explicitly; any other video is read (``GET <VIDEO_ID>?fields=source,title``: the URL of its
   file [inference: Graph's Video node has ``source``; S003 shows only the ``source`` parameter]) and uploaded
   to the target with ``file_url`` (S003 §Ad Videos → Creating), found by its idempotency key before any
   re-send and waited for until ``ready`` (:mod:`bulk_engine.operations.video_flow`). A creative whose video
   can be neither mapped nor copied is not cloned — it and the ads using it end ``skipped`` with the reason
   (never silently dropped);
3. each creative once (shared creatives stay shared), then the campaign, its ad sets (``campaign_id`` →
   the new campaign) and its ads (``adset_id`` / ``creative_id`` → the new ones).

``status_option`` and ``rename_options`` behave like ``/copies`` (default: PAUSED, top-level name + " - Copy").
Read-only and account-specific fields (ids, timestamps, effective status, Advantage+ state) are not copied;
``source_*_id`` provenance fields are not set (they name objects of the same account). The report maps every
source id to its clone.

With ``validate_only`` (dry run) the source tree is read and the plan reported (objects, images to copy,
videos to remap, what would be skipped) without any write: Graph cannot dry-run creates whose parents do not
exist yet.

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
from .video_flow import TaskVideos, upload_task_videos

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


def _feed_hashes(node: Mapping[str, Any]) -> set[str]:
    feed = node.get("asset_feed_spec")
    images = feed.get("images") if isinstance(feed, Mapping) else None
    return {str(i["hash"]) for i in images or [] if isinstance(i, Mapping) and isinstance(i.get("hash"), str)}


def _videos(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key == "video_id" and isinstance(item, str | int) and str(item):
                found.add(str(item))
            else:
                found |= _videos(item)
    elif isinstance(value, list):
        for item in value:
            found |= _videos(item)
    return found


def _remap(value: Any, images: Mapping[str, Ref], videos: Mapping[str, str], key: str = "") -> Any:
    """Creative params with image hashes → copied-image refs and video ids → the target's videos."""
    if isinstance(value, Mapping):
        return {k: _remap(v, images, videos, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_remap(v, images, videos) for v in value]
    if key in ("image_hash", "hash") and isinstance(value, str) and value in images:
        return images[value]
    if key == "video_id" and str(value) in videos:
        return videos[str(value)]
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
    video_map: Mapping[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Clone each source campaign into ``target_account_id``; returns ``{source: {new_id, objects, failed}}``
    (with ``validate_only``: the plan, nothing written)."""
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
    results: dict[str, dict[str, Any]] = {}
    assets: dict[str, dict[str, Any]] = {}
    source_account = act.removeprefix("act_")
    videos = {str(k): str(v) for k, v in (video_map or {}).items()}
    copied, video_ids, video_problems = await _copy_videos(
        engine, env, report, creatives.items, videos, target_account_id
    )
    videos.update(video_ids)
    skipped: dict[str, str] = {}  # op id → reason (not sent)

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

    def skip(op_id: str, kind: OpKind, reason: str) -> None:
        skipped[op_id] = reason
        if not env.ctx.validate_only:
            env.ctx.skip(op_id, target_account_id, kind.value, reason)

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
        not_cloned: dict[str, str] = {}  # creative id → why its ads cannot be cloned
        used_assets: dict[str, Any] = {"images": [], "videos": {}, "unmapped_videos": []}
        assets[source] = used_assets
        used = {
            str(ad["creative"]["id"])
            for a in adsets.items.get(source, [])
            for ad in ads.items.get(str(a["id"]), [])
            if isinstance(ad.get("creative"), Mapping)
        }
        for creative_id in sorted(used):
            creative_op = f"{base}/cr:{creative_id}"
            read_creative = creatives.items.get(creative_id)
            if not read_creative:
                error = creatives.errors.get(creative_id)
                reason = f"creative {creative_id} could not be read" + (f": {error.reason}" if error else "")
                not_cloned[creative_id] = reason
                continue
            node = read_creative[0]
            missing = sorted(v for v in _videos(node) if v not in videos)
            if missing:
                why = "; ".join(video_problems[v] for v in missing if v in video_problems)
                reason = (
                    f"creative {creative_id} uses video {', '.join(missing)} of {act}, which could not be copied "
                    f"to {target_account_id}" + (f" ({why})" if why else "") + "; upload it to "
                    f"{target_account_id}/advideos and map it in video_map"
                )
                used_assets["unmapped_videos"].extend(
                    v for v in missing if v not in used_assets["unmapped_videos"]
                )
                skip(creative_op, OpKind.CREATE_CREATIVE, reason)
                plan.append((creative_op, "adcreative", creative_id))
                not_cloned[creative_id] = f"its creative {creative_id} was not cloned (unmapped video)"
                continue
            for image in sorted(_hashes(node) | _feed_hashes(node)):
                if image not in image_refs:
                    image_op = f"{base}/img:{image}"
                    op(
                        image_op,
                        "adimages",
                        OpKind.CREATE_IMAGE,
                        {"copy_from": {"source_account_id": source_account, "hash": image}},
                    )
                    image_refs[image] = Ref(image_op, "$.images.*.hash")
                    used_assets["images"].append(image)
            used_assets["videos"].update({v: videos[v] for v in _videos(node)})
            params = _strip(node)
            if params.get("image_hash"):
                params.pop("image_url", None)  # Facebook-hosted; the copied hash is the same image
            op(creative_op, "adcreatives", OpKind.CREATE_CREATIVE, _remap(params, image_refs, videos))
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
                ad_op = f"{base}/a:{ad_id}"
                plan.append((ad_op, "ad", ad_id))
                raw_creative = ad.get("creative")
                creative_id = str(raw_creative.get("id")) if isinstance(raw_creative, Mapping) else ""
                creative_ref = creative_refs.get(creative_id)
                if creative_ref is None:
                    skip(ad_op, OpKind.CREATE_AD, not_cloned.get(creative_id, "it has no readable creative"))
                    continue
                params = _strip(ad)
                params.update(
                    name=name(params.get("name"), False),
                    status=status(params.get("status")),
                    adset_id=Ref(adset_op),
                    creative={"creative_id": creative_ref},
                )
                op(ad_op, "ads", OpKind.CREATE_AD, params)
    if env.ctx.validate_only:
        planned = {o.op_id for o in ops}
        for source, plan in pieces.items():
            results[source] = {
                "mode": "clone",
                "dry_run": True,
                "new_id": None,
                "objects": [
                    {
                        "type": kind,
                        "source_id": sid,
                        "planned": op_id in planned,
                        "reason": skipped.get(op_id),
                    }
                    for op_id, kind, sid in plan
                ],
                "assets": assets[source],
                "writes": sum(1 for o in ops if o.op_id.startswith(env.op_id("clone", source) + "/")),
            }
        return results
    outcomes = await report.run(engine, ops, env.ctx) if ops else {}
    if copied is not None:  # after the task's own engine jobs, whose numbering it must not shift
        copied.fold_into(report)
    for local in env.ctx.skipped:  # left when nothing was run: fold the local skips in here
        report.add(local)
        outcomes[local.op_id] = local
    env.ctx.skipped.clear()
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
        new_campaign = next((o["copied_id"] for o in objects if o["type"] == "campaign"), None)
        results[source] = {
            "mode": "clone",
            "new_id": new_campaign,
            "objects": objects,
            "failed": failed,
            "assets": assets[source],
        }
    return results


async def _copy_videos(
    engine: EngineLike,
    env: TaskEnv,
    report: TaskReport,
    creatives: Mapping[str, list[dict[str, Any]]],
    mapped: Mapping[str, str],
    target_account_id: str,
) -> tuple[TaskVideos | None, dict[str, str], dict[str, str]]:
    """Upload to the target, by ``file_url``, every video the creatives use that ``video_map`` does not map.

    Returns the uploads (folded into the report by the caller, last), the target id of each source video
    copied (a dry run reads the URLs, uploads nothing and stands a placeholder in) and why each other one
    could not be copied."""
    needed = sorted(
        {v for nodes in creatives.values() for node in nodes[:1] for v in _videos(node)} - set(mapped)
    )
    if not needed:
        return None, {}, {}
    read = await read_nodes(
        engine, needed, "source,title", env.account_id, report, op_prefix=env.op_id("read", "vid")
    )
    urls: dict[str, str] = {}
    names: dict[str, str] = {}
    problems: dict[str, str] = {}
    for video_id in needed:
        node = (read.items.get(video_id) or [{}])[0]
        url = node.get("source")
        if isinstance(url, str) and url.lower().startswith(("http://", "https://")):
            urls[video_id] = url
            names[video_id] = str(node.get("title") or f"video {video_id}")
        else:
            error = read.errors.get(video_id)
            problems[video_id] = (
                f"its source URL could not be read: {error.reason if error else 'none given'}"
            )
    if env.ctx.validate_only or not urls:
        return (
            None,
            {v: f"<video {v} uploaded to {target_account_id} from its source URL>" for v in urls},
            problems,
        )
    target = TaskEnv(env.key, target_account_id, env.base_dir, env.ctx)
    videos = await upload_task_videos(engine, target, {}, urls, names)
    ids: dict[str, str] = {}
    for video_id, result in videos.results.items():
        if result.video_id is None:
            problems[video_id] = result.reason or "the upload failed"
        else:
            ids[video_id] = result.video_id
    return videos, ids, problems
