"""Ads from a spreadsheet: a create task's ``ads_csv:`` — one CSV row per ad, grouped into trees (issue 15.5).

Why: the bulk import people know from Ads Manager is a sheet with one row per ad; rows that share a campaign
name form one campaign, rows that share (campaign, ad set) one ad set. The settings a sheet does not carry
(objective, budgets, targeting…) come from templates in the job file; a few per-row columns override them::

    ads_csv:
      file: ads.csv                  # relative to the job file; media paths in it: relative to the CSV
      page_id: "2000000001"          # the Page of every creative (a page_id column overrides it)
      campaign: {objective: OUTCOME_TRAFFIC, special_ad_categories: []}
      ad_set: {billing_event: IMPRESSIONS, optimization_goal: LINK_CLICKS, daily_budget: 1500,
               targeting: {geo_locations: {countries: [US]}}}
      ad: {status: PAUSED}           # optional, AdSpec fields; creative: optional AdCreativeSpec fields
      ignore_columns: [Notes]        # any other unknown column is an error (a typo must not drop a field)

Columns (:data:`COLUMNS`) are matched case-insensitively with spaces and punctuation as ``_``, so Ads
Manager's names (``Campaign Name``, ``Ad Set Name``, ``Body``, ``Title``, ``Website URL``, ``Call to
Action``…, :data:`ALIASES`) and the engine's snake_case names both work. Each row becomes an ad whose
creative is an ``object_story_spec`` (S003 §Ad Account Ad Creatives): ``link_data`` {link, message = primary
text, name = headline, description, call_to_action {type}, image} or, with a video, ``video_data``
{video_id, message, title, link_description, call_to_action {type, value {link}}, image = thumbnail}
(S003 §Video and Carousel Ads). Image files and URLs become entries of the task's ``images`` map
(:mod:`.assets`: one upload per distinct content, the library looked up first), video files and URLs of
its ``videos`` map (:mod:`.videos`); ``image_hash`` and ``video_id`` name media already in the account.

Every problem is found before any call, at the CSV's ``file:line`` with the column, the value and the rule
(Graph's code where the rule mirrors one): ``ads_csv.column`` (unknown, duplicate or missing column),
``ads_csv.row`` (a cell under no column), ``ads_csv.required`` (an empty name, link or required setting),
``ads_csv.duplicate_ad`` (the same ad name twice in one ad set), ``ads_csv.conflict`` (two rows of one
campaign or ad set disagree on its settings — both lines named), ``ads_csv.link`` and ``ads_csv.cta``
(100/1373054 "No Call To Action Type was parseable"), ``ads_csv.cents``, ``ads_csv.countries``,
``ads_csv.media``, ``ads_csv.page_id``, ``ads_csv.template``, the image and video file rules of
:mod:`.assets` and :mod:`.videos`, and every create rule of :mod:`.rules` run on the trees (located at the
row, or at the template when the value came from it). Reading the file is :mod:`.ads_csv_rows`; the
operations are built by :mod:`.create` (:meth:`CsvTree.ops`).

Op ids are derived from names, not row positions — ``<task>/csv:<h(campaign)>``, ``…/s:<h(ad set)>``,
``…/a:<h(ad)>`` (``h`` = 16 hex of SHA-256) — so the same sheet always gives the same idempotency keys, and
a row added or moved later does not re-key (and duplicate) the others.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from pydantic import BaseModel, Field, ValidationError

from bulk_engine.planning.graph import Operation, OpKind
from bulk_engine.protocol.refs import Ref

from .assets import ImageSpec, LocalImage
from .base import Issue, TaskEnv
from .schema_words import schema_message
from .specs import AdCreativeSpec, AdSetSpec, AdSpec, CampaignSpec, job_model_config
from .videos import LocalVideo, VideoSpec

__all__ = [
    "ALIASES",
    "COLUMNS",
    "CTA_TYPES",
    "NAME_COLUMNS",
    "RESERVED",
    "AdsCsvSpec",
    "CsvAd",
    "CsvAdSet",
    "CsvCampaign",
    "CsvTree",
    "normalize",
    "template_issues",
]

PathParts = tuple[str | int, ...]


class AdsCsvSpec(BaseModel):
    """``ads_csv:`` of a create task: the sheet, the Page, and the templates its rows start from."""

    model_config = job_model_config("AdsCsv")

    file: str = Field(min_length=1, description="The CSV, relative to the job file (media paths: to the CSV)")
    page_id: str | None = Field(None, pattern=r"^\d+$", description="Page of every creative (or a column)")
    campaign: dict[str, Any] = Field(
        default_factory=dict, description="Campaign fields of every campaign (not name / ad_sets / repeat)"
    )
    ad_set: dict[str, Any] = Field(
        default_factory=dict, description="Ad set fields of every ad set (not name)"
    )
    ad: dict[str, Any] = Field(default_factory=dict, description="Ad fields of every ad (e.g. status)")
    creative: dict[str, Any] = Field(
        default_factory=dict, description="Creative fields of every creative (e.g. instagram_user_id)"
    )
    ignore_columns: list[str] = Field(default_factory=list, description="Columns to read past (e.g. Notes)")


# --- columns ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    """``level`` is the object the column belongs to; ``field`` the Graph field it sets (``None``: a
    creative column, placed where the row's story needs it by :mod:`.ads_csv_rows`); ``kind`` how the cell
    is read (``enum`` upper-cased, ``cents`` a whole number, ``countries`` a list of codes)."""

    level: str
    field: str | None = None
    kind: str = "text"


_C, _S, _A = "campaign", "ad_set", "ad"
COLUMNS: Final[dict[str, Column]] = {
    "campaign_name": Column(_C, "name"),
    "campaign_objective": Column(_C, "objective", "enum"),
    "campaign_status": Column(_C, "status", "enum"),
    "campaign_daily_budget": Column(_C, "daily_budget", "cents"),
    "campaign_lifetime_budget": Column(_C, "lifetime_budget", "cents"),
    "campaign_bid_strategy": Column(_C, "bid_strategy", "enum"),
    "ad_set_name": Column(_S, "name"),
    "ad_set_status": Column(_S, "status", "enum"),
    "ad_set_daily_budget": Column(_S, "daily_budget", "cents"),
    "ad_set_lifetime_budget": Column(_S, "lifetime_budget", "cents"),
    "optimization_goal": Column(_S, "optimization_goal", "enum"),
    "billing_event": Column(_S, "billing_event", "enum"),
    "bid_amount": Column(_S, "bid_amount", "cents"),
    "start_time": Column(_S, "start_time"),
    "end_time": Column(_S, "end_time"),
    "countries": Column(_S, "targeting", "countries"),
    "ad_name": Column(_A, "name"),
    "ad_status": Column(_A, "status", "enum"),
    **{
        name: Column(_A)
        for name in (
            "page_id",
            "image_file",
            "image_url",
            "image_hash",
            "video_file",
            "video_url",
            "video_id",
            "primary_text",
            "headline",
            "description",
            "link",
            "call_to_action",
            "url_tags",
        )
    },
}
ALIASES: Final = {
    "campaign": "campaign_name",
    "adset_name": "ad_set_name",
    "ad_set_run_status": "ad_set_status",
    "adset_status": "ad_set_status",
    "adset_run_status": "ad_set_status",
    "adset_daily_budget": "ad_set_daily_budget",
    "adset_lifetime_budget": "ad_set_lifetime_budget",
    "ad_set_time_start": "start_time",
    "ad_set_time_stop": "end_time",
    "image": "image_file",
    "image_file_name": "image_file",
    "video": "video_file",
    "video_file_name": "video_file",
    "body": "primary_text",
    "message": "primary_text",
    "title": "headline",
    "link_description": "description",
    "website_url": "link",
    "call_to_action_type": "call_to_action",
    "cta": "call_to_action",
    "page": "page_id",
}
NAME_COLUMNS: Final = {_C: "campaign_name", _S: "ad_set_name", _A: "ad_name"}
# Template keys the rows set themselves
RESERVED: Final = {
    _C: frozenset({"name", "ad_sets", "ad_set_matrix", "repeat"}),
    _S: frozenset({"name", "ads"}),
    _A: frozenset({"name", "creative", "creative_id", "creative_spec"}),
    "creative": frozenset(
        {"name", "object_story_spec", "object_story_id", "object_id", "image", "image_hash", "image_url"}
    ),
}
# The least each model needs, so a template can be type-checked on its own
_MODELS: Final[dict[str, tuple[type[BaseModel], dict[str, Any]]]] = {
    _C: (CampaignSpec, {"name": "-", "objective": "OUTCOME_TRAFFIC", "special_ad_categories": []}),
    _S: (AdSetSpec, {"name": "-", "billing_event": "IMPRESSIONS"}),
    _A: (AdSpec, {"name": "-"}),
    "creative": (AdCreativeSpec, {}),
}
CTA_TYPES: Final = frozenset(
    {
        # in S003's and S000-S002's examples
        *("LEARN_MORE", "SHOP_NOW", "ADD_TO_CART", "APPLY_NOW", "BOOK_TRAVEL", "GET_DIRECTIONS", "SUBSCRIBE"),
        *("USE_MOBILE_APP", "WATCH_MORE", "MESSAGE_PAGE", "WHATSAPP_MESSAGE", "INSTAGRAM_MESSAGE"),
        # Ads Manager's other common buttons (AdCreativeLinkDataCallToAction type)
        *("BOOK_NOW", "BUY_NOW", "BUY_TICKETS", "CALL_NOW", "CONTACT_US", "DONATE_NOW", "DOWNLOAD"),
        *("GET_OFFER", "GET_QUOTE", "GET_SHOWTIMES", "GET_STARTED", "INSTALL_MOBILE_APP", "LISTEN_NOW"),
        *("NO_BUTTON", "ORDER_NOW", "PLAY_GAME", "REQUEST_TIME", "SEE_MENU", "SEND_UPDATES", "SIGN_UP"),
        *("USE_APP", "WATCH_VIDEO", "INQUIRE_NOW", "EVENT_RSVP", "OPEN_LINK"),
    }
)


def normalize(header: str) -> str:
    """``Call to Action`` → ``call_to_action`` → the canonical column name (aliases resolved)."""
    name = re.sub(r"[^a-z0-9]+", "_", header.lower()).strip("_")
    return ALIASES.get(name, name)


def template_issues(spec: AdsCsvSpec) -> Iterator[Issue]:
    """The templates checked on their own (paths ``ads_csv.<level>.<field>``, located in the job file)."""
    for level, (model, least) in _MODELS.items():
        template: dict[str, Any] = getattr(spec, level)
        for key in sorted(RESERVED[level] & set(template)):
            yield Issue(
                ("ads_csv", level, key),
                f"set by the CSV rows, not the {level} template",
                template[key],
                "ads_csv.template",
            )
        given = {k: v for k, v in template.items() if k not in RESERVED[level]}
        try:
            model.model_validate({**least, **given})
        except ValidationError as err:
            for error in err.errors(include_url=False):
                loc = tuple(error["loc"])
                if loc and loc[0] in given:
                    yield Issue(
                        ("ads_csv", level, *loc),
                        schema_message(error),
                        error.get("input"),
                        f"schema.{error['type']}",
                    )


# --- the trees ----------------------------------------------------------------------------------------------
Origin = dict[PathParts, tuple[str, int]]  # field path in the object's params → (column, line)


@dataclass
class CsvAd:
    key: str  # op-id path under the task: csv:<h>/s:<h>/a:<h>
    line: int
    name: str
    spec: AdSpec
    origin: Origin


@dataclass
class CsvAdSet:
    key: str
    line: int
    name: str
    spec: AdSetSpec  # its ``ads`` are the specs of ``ads``
    ads: list[CsvAd]
    origin: Origin


@dataclass
class CsvCampaign:
    key: str
    line: int
    name: str
    spec: CampaignSpec  # its ``ad_sets`` are the specs of ``ad_sets`` (so the create rules see the tree)
    ad_sets: list[CsvAdSet]
    origin: Origin


@dataclass
class CsvTree:
    """What a sheet describes: the trees, the images its rows name, and every problem found reading it."""

    file: str
    templates: AdsCsvSpec
    headers: dict[str, str] = field(default_factory=dict)  # column → the header as written
    rows: int = 0
    campaigns: list[CsvCampaign] = field(default_factory=list)
    images: dict[str, ImageSpec] = field(default_factory=dict)
    local: dict[str, LocalImage] = field(default_factory=dict)
    videos: dict[str, VideoSpec] = field(default_factory=dict)
    local_videos: dict[str, LocalVideo] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)

    def media_files(self) -> list[str]:
        """The local files the rows name (the job's fingerprint covers their content)."""
        specs: list[ImageSpec | VideoSpec] = [*self.images.values(), *self.videos.values()]
        return [spec.file for spec in specs if spec.file is not None]

    def counts(self) -> dict[str, int]:
        adsets = [s for c in self.campaigns for s in c.ad_sets]
        return {
            "rows": self.rows,
            "campaigns": len(self.campaigns),
            "ad_sets": len(adsets),
            "ads": sum(len(s.ads) for s in adsets),
        }

    def op_counts(self) -> dict[str, int]:
        """Creates per operation kind (progress estimates; the images are counted with the task's)."""
        counts = self.counts()
        return {
            OpKind.CREATE_CAMPAIGN.value: counts["campaigns"],
            OpKind.CREATE_ADSET.value: counts["ad_sets"],
            OpKind.CREATE_CREATIVE.value: counts["ads"],
            OpKind.CREATE_AD.value: counts["ads"],
        }

    def ops(
        self,
        env: TaskEnv,
        make: Callable[[str, str, OpKind, dict[str, Any]], Operation],
        adset_params: Callable[[CampaignSpec, AdSetSpec], dict[str, Any]],
        ad_ops: Callable[[str, AdSpec, str], Iterator[Operation]],
        dry_run_skip: str,
    ) -> Iterator[Operation]:
        """The trees as operations, parents first, op ids ``<task>/csv:<h>/s:<h>/a:<h>``; the create task
        builds each one (``make(op_id, edge, kind, params)``, ``ad_ops(ad op id, ad, ad set op id)``: the
        creative and the ad) so a sheet's objects are sent exactly like a job file's. In a dry run an ad set
        is skipped with ``dry_run_skip`` (its campaign gets no id from ``validate_only``)."""
        for campaign in self.campaigns:
            cid = env.op_id(campaign.key)
            yield make(cid, "campaigns", OpKind.CREATE_CAMPAIGN, campaign.spec.to_params())
            for adset in campaign.ad_sets:
                sid = env.op_id(adset.key)
                if env.ctx.validate_only:
                    env.ctx.skip(sid, env.account_id, OpKind.CREATE_ADSET.value, dry_run_skip)
                else:
                    params = {**adset_params(campaign.spec, adset.spec), "campaign_id": Ref(cid)}
                    yield make(sid, "adsets", OpKind.CREATE_ADSET, params)
                for ad in adset.ads:
                    yield from ad_ops(env.op_id(ad.key), ad.spec, sid)

    def summary(self, op_id: Callable[[str], str]) -> dict[str, Any]:
        """For the task report: the counts, and each row's ad op id (the report names ads by row)."""
        by_line = {str(a.line): op_id(a.key) for c in self.campaigns for s in c.ad_sets for a in s.ads}
        return {"file": self.file, **self.counts(), "ads_by_line": by_line}

    def located_issues(self, check: Callable[[CampaignSpec], Iterable[Issue]]) -> Iterator[Issue]:
        """``check`` (the create rules of one campaign tree) for every campaign, each issue moved to the row
        (or the template) its value came from; a template's issue is said once, with how often it applies."""
        seen: dict[tuple[PathParts, str], list[Any]] = {}
        for campaign in self.campaigns:
            for found in check(campaign.spec):
                if (
                    found.rule == "name.placeholder"
                ):  # sheet names are literal text: braces are no placeholders
                    continue
                issue, where = self._locate(campaign, found)
                if where is None:
                    yield issue
                    continue
                entry = seen.setdefault((issue.path, issue.rule), [issue, where, 0])
                entry[2] += 1
        for issue, where, count in seen.values():
            more = f", and {count - 1} more of the sheet" if count > 1 else ""
            yield dataclasses.replace(issue, message=f"{issue.message} (for {where}{more})")

    def _locate(self, campaign: CsvCampaign, issue: Issue) -> tuple[Issue, str | None]:
        """The issue at the row its value came from, or (with which object it is about) at the template."""
        node: CsvCampaign | CsvAdSet | CsvAd = campaign
        level, rest = _C, issue.path
        if rest[:1] == ("ad_sets",) and len(rest) > 1 and isinstance(rest[1], int):
            node, level, rest = campaign.ad_sets[rest[1]], _S, rest[2:]
            if rest[:1] == ("ads",) and len(rest) > 1 and isinstance(rest[1], int):
                node, level, rest = node.ads[rest[1]], _A, rest[2:]
        for n in range(len(rest), 0, -1):
            source = node.origin.get(rest[:n])
            if source is not None:
                column, line = source
                here = ("ads_csv", self.headers[column])
                return dataclasses.replace(issue, path=here, file=self.file, line=line), None
        template, tail = (_A, rest)
        if level == _A and rest[:1] == ("creative_spec",):
            template, tail = "creative", rest[1:]
        elif level != _A:
            template = level
        where = f"{level.replace('_', ' ')} {node.name!r}, {self.file}:{node.line}"
        if tail and tail[0] in getattr(self.templates, template):
            return dataclasses.replace(issue, path=("ads_csv", template, *tail)), where
        message = f"{level.replace('_', ' ')} {node.name!r}: {issue.message}"
        at_row = dataclasses.replace(
            issue, path=("ads_csv", *rest), file=self.file, line=node.line, message=message
        )
        return at_row, None
