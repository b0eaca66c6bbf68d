"""Create: campaign → ad sets → ads trees (and shared creatives) compiled to linked operations.

A :class:`CreateTask` holds shared creatives (by key) and campaigns; each campaign holds explicit ad sets (with
their ads) and/or an :class:`~bulk_engine.operations.specs.AdSetMatrix` (audiences × creatives), and may be
repeated. Compilation is lazy (a generator, parents before children) and op ids are deterministic:

=====================================  =================================================================
``<task>/cr:<key>``                    a shared creative
``<task>/c<i>`` (``c<i>.<n>``)         campaign ``i`` (its ``n``-th repeat, 1-based, when ``repeat`` > 1)
``<campaign op>/s<j>``                 explicit ad set ``j``; its ads ``…/s<j>/a<k>`` (inline creative
                                       ``…/a<k>/cr``)
``<campaign op>/m<a>``                 matrix ad set of audience ``a``; its ads ``…/m<a>/a<c>`` (creative c)
=====================================  =================================================================

Children reference their parents with :class:`~bulk_engine.protocol.refs.Ref`, so the engine keeps a tree in
one batch when it fits and substitutes real ids across batches.

Images (``images:`` key → file / URL / Base64, used by creatives as ``image: <key>``): see
:mod:`bulk_engine.operations.assets`. A task with local images reads the account's library first (by MD5)
and uploads only what is missing, as ``<task>/img:<md5>`` operations the creatives reference.

Dry run (``CompileContext.validate_only``): every create is sent with ``execution_options=["validate_only"]``
(S003 §Ad Account …: "will not perform the mutation but will run through the validation rules"). Such a call
answers ``{"success": true}`` and no id, so objects whose parent is created by the same job are checked
locally only and reported ``skipped``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr

from bulk_engine.planning.graph import Operation, OpKind
from bulk_engine.protocol.refs import Ref, iter_refs
from bulk_engine.results import Outcome, OutcomeState

from .ads_csv import AdsCsvSpec, CsvTree, template_issues
from .ads_csv_rows import read_ads_csv
from .assets import (
    ImagePlan,
    ImageSpec,
    LocalImage,
    creative_image_keys,
    found_hashes,
    image_source_issues,
    inspect_image,
    inspect_local,
    lookup_ops,
    plan_images,
    resolve_images,
)
from .base import EngineLike, Issue, TaskEnv
from .rules import PLACEMENT_KEYS, RULES, ad_rules, adset_rules, campaign_rules, creative_rules
from .specs import (
    AdCreativeSpec,
    AdSetMatrix,
    AdSetSpec,
    AdSpec,
    CampaignSpec,
    job_model_config,
    name_issues,
    render_name,
)
from .task import TaskBase, TaskReport
from .video_flow import CHUNKED_OVER_BYTES, TaskVideos, upload_task_videos
from .videos import (
    LocalVideo,
    VideoSpec,
    creative_video_keys,
    estimate_video_ops,
    inspect_video,
    resolve_videos,
    video_source_issues,
)

__all__ = ["CreateTask", "adset_params", "matrix_adset_params"]

_SUCCEEDED = OutcomeState.SUCCEEDED

VALIDATE_ONLY = ["validate_only"]
DRY_RUN_SKIP = "dry run: its parent is created by this job, so it was checked locally only (validate_only)"
DRY_RUN_UPLOAD = (
    "dry run: Graph has no validate_only for image uploads; checked locally (file, size, format) only"
)
DRY_RUN_IMAGE = "dry run: its image is uploaded by this job, so it was checked locally only"


def _advantage_targeting(targeting: Any) -> Any:
    if not isinstance(targeting, Mapping):
        return targeting
    automation = targeting.get("targeting_automation")
    merged = dict(automation) if isinstance(automation, Mapping) else {}
    merged["advantage_audience"] = 1
    return {**targeting, "targeting_automation": merged}


def adset_params(campaign: CampaignSpec, adset: AdSetSpec) -> dict[str, Any]:
    """The Graph params of an explicit ad set (without ``campaign_id`` and without placeholders rendered)."""
    params = adset.to_params()
    if campaign.advantage_plus and "targeting" in params:
        params["targeting"] = _advantage_targeting(params["targeting"])
    return params


def matrix_adset_params(campaign: CampaignSpec, matrix: AdSetMatrix, audience_index: int) -> dict[str, Any]:
    """Template + audience overrides (targeting, budgets, bid, promoted object)."""
    audience = matrix.audiences[audience_index]
    params = {**matrix.template.to_params(), **audience.overrides()}
    if campaign.advantage_plus and "targeting" in params:
        params["targeting"] = _advantage_targeting(params["targeting"])
    return params


class CreateTask(TaskBase):
    """Create campaigns, ad sets, creatives and ads (S003 §Basic Ad Creation; seeds 000–002 for messaging)."""

    model_config = job_model_config("CreateTask")

    type: Literal["create"]
    creatives: dict[str, AdCreativeSpec] = Field(
        default_factory=dict, description="Creatives shared by ads (referenced by key)"
    )
    campaigns: list[CampaignSpec] = Field(default_factory=list)
    images: dict[str, ImageSpec] = Field(
        default_factory=dict,
        description="Images creatives use by key (`image: <key>`): a local file, a URL or Base64 bytes",
    )
    videos: dict[str, VideoSpec] = Field(
        default_factory=dict,
        description="Videos creatives use by key (`video: <key>` → video_id): a local file, a URL or Base64",
    )
    ads_csv: AdsCsvSpec | None = Field(None, description="Ads from a CSV: one row per ad, grouped by name")
    video_chunk_threshold: int = Field(
        CHUNKED_OVER_BYTES,
        ge=1,
        description="Local videos larger than this many bytes are sent by chunked upload (start, transfer, "
        "finish); smaller ones as one `source` part in a batch",
    )

    _local: dict[str, LocalImage] | None = PrivateAttr(None)  # found by input_issues, reused by compile
    _csv: CsvTree | None = PrivateAttr(None)  # the ads_csv sheet read by input_issues (operations/ads_csv.py)
    # the job's top-level ``images`` (JobSpec shares them; this task's own keys win) and their identities
    _job_images: dict[str, ImageSpec] = PrivateAttr(default_factory=dict)
    _job_local: dict[str, LocalImage] = PrivateAttr(default_factory=dict)
    # the same for videos (operations/videos.py); ``_video_ids``: key → library id (or why it has none), set
    # by execute once the videos are uploaded and processed, read while the creates are compiled
    _local_videos: dict[str, LocalVideo] | None = PrivateAttr(None)
    _job_videos: dict[str, VideoSpec] = PrivateAttr(default_factory=dict)
    _job_local_videos: dict[str, LocalVideo] = PrivateAttr(default_factory=dict)
    _videos_done: TaskVideos | None = PrivateAttr(None)
    _dropped: dict[str, str] = PrivateAttr(default_factory=dict)  # creative op id → why it was not created

    def share_images(self, images: dict[str, ImageSpec], local: dict[str, LocalImage] | None = None) -> None:
        """Use the job's top-level images (``local``: their identities, once the job inspected the files)."""
        self._job_images = images
        if local is not None:
            self._job_local = local

    def all_images(self) -> dict[str, ImageSpec]:
        return {**self._job_images, **self.images, **(self._csv.images if self._csv else {})}

    def share_videos(self, videos: dict[str, VideoSpec], local: dict[str, LocalVideo] | None = None) -> None:
        """Use the job's top-level videos (``local``: their identities, once the job inspected the files)."""
        self._job_videos = videos
        if local is not None:
            self._job_local_videos = local

    def all_videos(self) -> dict[str, VideoSpec]:
        return {**self._job_videos, **self.videos, **(self._csv.videos if self._csv else {})}

    def local_videos(self, base_dir: Path) -> dict[str, LocalVideo]:
        """Identities of the task's local videos (the job's and its own; its own keys win)."""
        if self._local_videos is None:
            for _ in self._video_input_issues(base_dir):
                pass
        assert self._local_videos is not None
        local = {k: v for k, v in self._job_local_videos.items() if k not in self.videos}
        local.update(self._local_videos)
        local.update(self._csv.local_videos if self._csv else {})
        return local

    # --- validation ----------------------------------------------------------------------------------------
    def rule_issues(self) -> Iterator[Issue]:
        if not self.campaigns and not self.creatives and self.ads_csv is None:
            yield Issue(("campaigns",), "a create task needs campaigns or creatives", [], "create.empty")
        yield from template_issues(self.ads_csv) if self.ads_csv is not None else ()
        for key, image in self.images.items():
            yield from image_source_issues(key, image)
        for key, video in self.videos.items():
            yield from video_source_issues(key, video)
        for key, creative in self.creatives.items():
            yield from (found.prefixed(("creatives", key)) for found in self._image_key_issues(creative))
            for found in creative_rules(creative.to_params()):
                yield found.prefixed(("creatives", key))
        for i, campaign in enumerate(self.campaigns):
            yield from (found.prefixed(("campaigns", i)) for found in self._campaign_issues(campaign))

    def _campaign_issues(self, campaign: CampaignSpec) -> Iterator[Issue]:
        cparams = campaign.to_params()
        yield from campaign_rules(cparams, advantage_plus=campaign.advantage_plus)
        yield from name_issues(campaign.name, frozenset({"n"}), ("name",))
        for j, adset in enumerate(campaign.ad_sets):
            params = adset_params(campaign, adset)
            here: tuple[str | int, ...] = ("ad_sets", j)
            yield from (f.prefixed(here) for f in adset_rules(params, cparams))
            yield from (f.prefixed(here) for f in self._advantage_issues(campaign, params))
            yield from name_issues(adset.name, frozenset({"n", "campaign"}), (*here, "name"))
            for k, ad in enumerate(adset.ads):
                yield from (f.prefixed((*here, "ads", k)) for f in self._ad_issues(ad, params, cparams))
        matrix = campaign.ad_set_matrix
        if matrix is not None:
            yield from (
                f.prefixed(("ad_set_matrix",)) for f in self._matrix_issues(campaign, matrix, cparams)
            )

    def _advantage_issues(self, campaign: CampaignSpec, params: Mapping[str, Any]) -> Iterator[Issue]:
        if not campaign.advantage_plus:
            return
        targeting = params.get("targeting")
        if isinstance(targeting, Mapping):
            for key in PLACEMENT_KEYS:
                if targeting.get(key) not in (None, [], {}):
                    rule = RULES["advantage.placement"]
                    yield Issue(
                        ("targeting", key),
                        "Advantage+ placement (advantage_placement_state) needs no placement targeting or "
                        "exclusions in any ad set",
                        targeting[key],
                        "advantage.placement",
                        rule.code,
                        rule.subcode,
                    )

    def _ad_issues(
        self, ad: AdSpec, adset: Mapping[str, Any], campaign: Mapping[str, Any]
    ) -> Iterator[Issue]:
        given = [k for k in ("creative", "creative_id", "creative_spec") if getattr(ad, k) is not None]
        if len(given) != 1:
            rule = RULES["ad.creative.required"]
            yield Issue(
                ("creative",),
                "an ad needs exactly one of creative (a key of the task's creatives), creative_id or creative_spec"
                + (f" - got {', '.join(given)}" if given else ""),
                None,
                "ad.creative.required",
                rule.code,
                rule.subcode,
                has_value=False,
            )
        creative: dict[str, Any] | None = None
        path: tuple[str | int, ...] = ("creative",)
        if ad.creative is not None:
            spec = self.creatives.get(ad.creative)
            if spec is None:
                yield Issue(
                    ("creative",),
                    f"unknown creative key; the task defines {sorted(self.creatives) or 'none'}",
                    ad.creative,
                    "create.creative_key",
                )
            else:
                creative = spec.to_params()
        elif ad.creative_spec is not None:
            creative = ad.creative_spec.to_params()
            path = ("creative_spec",)
            yield from (f.prefixed(path) for f in self._image_key_issues(ad.creative_spec))
            yield from (f.prefixed(path) for f in creative_rules(creative))
        yield from name_issues(ad.name, frozenset({"n", "campaign", "ad_set"}), ("name",))
        # creative ↔ ad set issues point at the ad's creative field
        for found in ad_rules(ad.to_params(), adset, campaign, creative, creative_path=()):
            yield found if found.path and found.path[0] in ad.to_params() else found.prefixed(path)

    def _matrix_issues(
        self, campaign: CampaignSpec, matrix: AdSetMatrix, cparams: Mapping[str, Any]
    ) -> Iterator[Issue]:
        yield from name_issues(
            matrix.template.name, frozenset({"n", "campaign", "audience"}), ("template", "name")
        )
        yield from name_issues(
            matrix.ad_name, frozenset({"n", "campaign", "ad_set", "audience", "creative"}), ("ad_name",)
        )
        for c, key in enumerate(matrix.creatives):
            if key not in self.creatives:
                yield Issue(
                    ("creatives", c),
                    f"unknown creative key; the task defines {sorted(self.creatives) or 'none'}",
                    key,
                    "create.creative_key",
                )
        for a, audience in enumerate(matrix.audiences):
            params = matrix_adset_params(campaign, matrix, a)
            overrides = set(audience.overrides())
            for found in [*adset_rules(params, cparams), *self._advantage_issues(campaign, params)]:
                head = found.path[0] if found.path else None
                prefix: tuple[str | int, ...] = ("audiences", a) if head in overrides else ("template",)
                yield found.prefixed(prefix)
            ad = {"status": matrix.ad_status, **matrix.ad_params}
            for c, key in enumerate(matrix.creatives):
                creative = self.creatives.get(key)
                if creative is None:
                    continue
                for found in ad_rules(ad, params, cparams, creative.to_params(), creative_path=()):
                    if found.path and found.path[0] in ad:
                        yield found.prefixed(("ad_params",))
                    else:
                        yield found.prefixed(("creatives", c))

    def _image_key_issues(self, creative: AdCreativeSpec) -> Iterator[Issue]:
        images = self.all_images()
        params = creative.to_params()
        for path, key in creative_image_keys(params):
            if not isinstance(key, str) or key not in images:
                yield Issue(
                    path,
                    f"unknown image key; the job and the task define {sorted(images) or 'no images'}",
                    key,
                    "create.image_key",
                )
        videos = self.all_videos()
        for path, key in creative_video_keys(params):
            if not isinstance(key, str) or key not in videos:
                yield Issue(
                    path,
                    f"unknown video key; the job and the task define {sorted(videos) or 'no videos'}",
                    key,
                    "create.video_key",
                )

    def input_issues(self, base_dir: Path) -> Iterator[Issue]:
        """Every local image is opened, sized and sniffed (and its MD5 computed) before any call."""
        found, self._local = inspect_local(self.images, inspect_image, base_dir)
        yield from found
        yield from self._video_input_issues(base_dir)
        if self.ads_csv is not None:  # the sheet's rows, then the create rules on the trees they make
            self._csv = read_ads_csv(self.ads_csv, base_dir)
            yield from self._csv.issues
            yield from self._csv.located_issues(self._campaign_issues)

    def _video_input_issues(self, base_dir: Path) -> Iterator[Issue]:
        """Every local video is opened, sized, sniffed and hashed before any call."""
        found, self._local_videos = inspect_local(self.videos, inspect_video, base_dir)
        yield from found

    def input_files(self) -> list[str]:
        files = [spec.file for spec in self.images.values() if spec.file is not None]
        files += [spec.file for spec in self.videos.values() if spec.file is not None]
        sheet = [self.ads_csv.file, *(self._csv.media_files() if self._csv else ())] if self.ads_csv else []
        return files + sheet

    @property
    def needs_reads(self) -> bool:
        """Local images: the account's library is read (by MD5) before uploading what it lacks. Videos: they
        are uploaded (and processed) before the creatives that use them (operations/video_flow.py)."""
        local_images = any(spec.url is None for spec in self.all_images().values())
        return self.ads_csv is not None or bool(self.all_videos()) or local_images  # a sheet may name media

    def image_plan(self, env: TaskEnv, reused: frozenset[str] = frozenset()) -> ImagePlan:
        self._read_inputs(env)
        assert self._local is not None
        images = self.all_images()
        local = {k: v for k, v in self._job_local.items() if k not in self.images}  # the task's keys win
        local.update(self._local)
        local.update(self._csv.local if self._csv else {})
        plan = plan_images(images, local, env.account_id, env.op_id(""))
        plan.reused = reused
        return plan

    async def execute(self, engine: EngineLike, env: TaskEnv) -> TaskReport:
        """Look the local images up in the account's library, then upload what is missing and create."""
        if not self.needs_reads:
            return await super().execute(engine, env)
        report = TaskReport.for_env(env, "create")
        self._read_inputs(env)
        videos = await self._upload_videos(engine, env) if self.all_videos() else None
        self._videos_done, self._dropped = videos, {}
        plan = self.image_plan(env)
        lookups = lookup_ops(plan)
        outcomes = await report.run(engine, lookups, env.ctx) if lookups else {}
        plan.reused = frozenset(found_hashes(outcomes, lookups))
        report.details["images"] = plan.counts()
        await report.run(engine, self._compile(env, plan), env.ctx)
        uploads = [o for o in report.outcomes if o.kind == OpKind.CREATE_IMAGE.value]
        report.details["images"]["upload_failures"] = sum(1 for o in uploads if o.state is not _SUCCEEDED)
        if videos is not None:
            videos.fold_into(report)
        if self._csv is not None:
            report.details["ads_csv"] = self._csv.summary(env.op_id)
        return report

    async def _upload_videos(self, engine: EngineLike, env: TaskEnv) -> TaskVideos:
        """Every video the task uses, uploaded (or found by its key) and processed (operations/video_flow.py)."""
        specs = self.all_videos()
        urls = {key: spec.url for key, spec in specs.items() if spec.url is not None}
        names = {key: spec.library_name for key, spec in specs.items() if spec.library_name}
        local = self.local_videos(env.base_dir)
        return await upload_task_videos(engine, env, local, urls, names, self.video_chunk_threshold)

    # --- compile -------------------------------------------------------------------------------------------
    def _read_inputs(self, env: TaskEnv) -> None:
        """The local files (and the ads_csv sheet) read once, if the job was not checked with its inputs."""
        if self._local is None:
            for _ in self.input_issues(env.base_dir):
                pass

    def compile(self, env: TaskEnv) -> Iterator[Operation]:
        self._read_inputs(env)
        return self._compile(env, self.image_plan(env) if self.all_images() else None)

    def _creative(
        self, env: TaskEnv, op_id: str, spec: AdCreativeSpec, plan: ImagePlan | None
    ) -> Iterator[Operation]:
        params = spec.to_params()
        if plan is not None:
            params = resolve_images(params, plan.resolve)
            if env.ctx.validate_only and any(True for _ in iter_refs(params)):
                env.ctx.skip(op_id, env.account_id, OpKind.CREATE_CREATIVE.value, DRY_RUN_IMAGE)
                return
        if any(True for _ in creative_video_keys(params)):
            with_videos = self._resolve_videos(env, op_id, params)
            if with_videos is None:
                return
            params = with_videos
        yield self._op(env, op_id, "adcreatives", OpKind.CREATE_CREATIVE, params)

    def _resolve_videos(self, env: TaskEnv, op_id: str, params: dict[str, Any]) -> dict[str, Any] | None:
        """``video: <key>`` → the video's id (a placeholder in a plan preview, compiled without the flow);
        ``None``: a video it uses has no id, so the creative is not created (its outcome says why)."""
        if self._videos_done is None:
            return resolve_videos(params, lambda key: f"<video_id of videos.{key}>")
        found = self._videos_done.resolve(params, op_id, env.account_id)
        if isinstance(found, Outcome):
            env.ctx.skipped.append(found)
            self._dropped[op_id] = found.reason or ""
            return None
        return found

    def _creative_dropped(self, env: TaskEnv, ad_id: str, creative_op: str | None) -> bool:
        """An ad whose creative was not created (its video has no id) is skipped with the reason."""
        reason = self._dropped.get(creative_op) if creative_op is not None else None
        if reason is None:
            return False
        env.ctx.skip(ad_id, env.account_id, OpKind.CREATE_AD.value, f"its creative was not created: {reason}")
        return True

    def _compile(self, env: TaskEnv, plan: ImagePlan | None) -> Iterator[Operation]:
        dry = env.ctx.validate_only
        act = env.account_id
        for upload in plan.uploads() if plan is not None else ():
            if dry:
                env.ctx.skip(upload.op_id, act, OpKind.CREATE_IMAGE.value, DRY_RUN_UPLOAD)
            else:
                yield upload
        for key, creative in self.creatives.items():
            yield from self._creative(env, env.op_id(f"cr:{key}"), creative, plan)
        if self._csv is not None:  # the ads_csv trees (operations/ads_csv.py), built like the campaigns below
            ad_ops = lambda aid, ad, sid: self._ad_ops(env, aid, ad, sid, {}, plan)  # noqa: E731
            yield from self._csv.ops(env, lambda *op: self._op(env, *op), adset_params, ad_ops, DRY_RUN_SKIP)
        for i, campaign in enumerate(self.campaigns):
            cparams = campaign.to_params()
            for n in range(1, campaign.repeat + 1):
                cid = env.op_id(f"c{i}" if campaign.repeat == 1 else f"c{i}.{n}")
                cname = render_name(campaign.name, {"n": n})
                yield self._op(env, cid, "campaigns", OpKind.CREATE_CAMPAIGN, {**cparams, "name": cname})
                names = {"n": n, "campaign": cname}
                for j, adset in enumerate(campaign.ad_sets):
                    sid = f"{cid}/s{j}"
                    sname = render_name(adset.name, names)
                    params = {**adset_params(campaign, adset), "name": sname, "campaign_id": Ref(cid)}
                    if dry:
                        env.ctx.skip(sid, act, OpKind.CREATE_ADSET.value, DRY_RUN_SKIP)
                    else:
                        yield self._op(env, sid, "adsets", OpKind.CREATE_ADSET, params)
                    for k, ad in enumerate(adset.ads):
                        yield from self._ad_ops(env, f"{sid}/a{k}", ad, sid, {**names, "ad_set": sname}, plan)
                matrix = campaign.ad_set_matrix
                if matrix is None:
                    continue
                for a, audience in enumerate(matrix.audiences):
                    sid = f"{cid}/m{a}"
                    anames = {**names, "audience": audience.name}
                    sname = render_name(matrix.template.name, anames)
                    params = {
                        **matrix_adset_params(campaign, matrix, a),
                        "name": sname,
                        "campaign_id": Ref(cid),
                    }
                    if dry:
                        env.ctx.skip(sid, act, OpKind.CREATE_ADSET.value, DRY_RUN_SKIP)
                    else:
                        yield self._op(env, sid, "adsets", OpKind.CREATE_ADSET, params)
                    for c, key in enumerate(matrix.creatives):
                        aid = f"{sid}/a{c}"
                        name = render_name(matrix.ad_name, {**anames, "ad_set": sname, "creative": key})
                        ad_params = {
                            **matrix.ad_params,
                            "name": name,
                            "status": matrix.ad_status,
                            "adset_id": Ref(sid),
                            "creative": {"creative_id": Ref(env.op_id(f"cr:{key}"))},
                        }
                        if self._creative_dropped(env, aid, env.op_id(f"cr:{key}")):
                            continue
                        if dry:
                            env.ctx.skip(aid, act, OpKind.CREATE_AD.value, DRY_RUN_SKIP)
                        else:
                            yield self._op(env, aid, "ads", OpKind.CREATE_AD, ad_params)

    def _ad_ops(
        self, env: TaskEnv, aid: str, ad: AdSpec, sid: str, names: dict[str, Any], plan: ImagePlan | None
    ) -> Iterator[Operation]:
        creative: dict[str, Any]
        crid: str | None = None
        if ad.creative_spec is not None:
            crid = f"{aid}/cr"
            yield from self._creative(env, crid, ad.creative_spec, plan)
            creative = {"creative_id": Ref(crid)}
        elif ad.creative is not None:
            crid = env.op_id(f"cr:{ad.creative}")
            creative = {"creative_id": Ref(crid)}
        else:
            creative = {"creative_id": ad.creative_id}
        if self._creative_dropped(env, aid, crid):
            return
        if env.ctx.validate_only:
            env.ctx.skip(aid, env.account_id, OpKind.CREATE_AD.value, DRY_RUN_SKIP)
            return
        params = {
            **ad.to_params(),
            "name": render_name(ad.name, names),
            "adset_id": Ref(sid),
            "creative": creative,
        }
        yield self._op(env, aid, "ads", OpKind.CREATE_AD, params)

    def _op(self, env: TaskEnv, op_id: str, edge: str, kind: OpKind, params: dict[str, Any]) -> Operation:
        if env.ctx.validate_only:
            params = {**params, "execution_options": VALIDATE_ONLY}
        return Operation(
            op_id=op_id,
            method="POST",
            path=f"{env.account_id}/{edge}",
            params=params,
            account_id=env.account_id,
            kind=kind,
        )

    def estimate(self, env: TaskEnv) -> dict[str, int]:
        self._read_inputs(env)
        counts = {
            OpKind.CREATE_IMAGE.value: len({i.md5 for i in self.image_plan(env).local.values()})
            if self.all_images()
            else 0,
            OpKind.CREATE_CREATIVE.value: len(self.creatives),
            OpKind.CREATE_CAMPAIGN.value: 0,
            OpKind.CREATE_ADSET.value: 0,
            OpKind.CREATE_AD.value: 0,
        }
        for campaign in self.campaigns:
            adsets = len(campaign.ad_sets)
            ads = sum(len(s.ads) for s in campaign.ad_sets)
            inline = sum(1 for s in campaign.ad_sets for ad in s.ads if ad.creative_spec is not None)
            if campaign.ad_set_matrix is not None:
                adsets += len(campaign.ad_set_matrix.audiences)
                ads += len(campaign.ad_set_matrix.audiences) * len(campaign.ad_set_matrix.creatives)
            counts[OpKind.CREATE_CAMPAIGN.value] += campaign.repeat
            counts[OpKind.CREATE_ADSET.value] += adsets * campaign.repeat
            counts[OpKind.CREATE_AD.value] += ads * campaign.repeat
            counts[OpKind.CREATE_CREATIVE.value] += inline * campaign.repeat
        for kind, n in (self._csv.op_counts() if self._csv is not None else {}).items():
            counts[kind] += n
        if self.all_images():  # the library lookups by hash (reads, 50 hashes each) before the uploads
            lookups = len(lookup_ops(self.image_plan(env)))
            counts[OpKind.READ.value] = counts.get(OpKind.READ.value, 0) + lookups
        if specs := self.all_videos():  # the video flow's lookups, uploads and status polls
            urls = {key: spec.url for key, spec in specs.items() if spec.url is not None}
            local = self.local_videos(env.base_dir)
            flow = estimate_video_ops(local, urls, self.video_chunk_threshold, env.ctx.validate_only)
            for kind, n in flow.items():
                counts[kind] = counts.get(kind, 0) + n
        return {k: v for k, v in counts.items() if v}
