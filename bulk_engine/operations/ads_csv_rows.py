"""Reading an ``ads_csv`` sheet into trees: the header, each row's cells, the groups, the specs.

Why a module of its own: :mod:`.ads_csv` says what a sheet may hold (columns, templates, the tree and where
an issue belongs); this module walks the file once, row by row, and turns cells into campaign / ad set / ad
specs, recording every problem at its ``file:line`` and column (the rule ids are listed in :mod:`.ads_csv`).

Groups: the first row of a campaign (ad set) fixes the settings its cells give; a later row of the same
group may leave a cell empty or repeat the value, but a different value is ``ads_csv.conflict`` naming both
lines. Image files are inspected (read, sized, sniffed, MD5) once per distinct path, relative to the CSV's
folder, and become ``images`` entries keyed ``csv:<path>`` (URLs ``csv:<url>``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from bulk_engine.protocol.catalog import CTA_APPS
from bulk_engine.protocol.videos import VIDEO_CODES

from .ads_csv import (
    COLUMNS,
    CTA_TYPES,
    NAME_COLUMNS,
    RESERVED,
    AdsCsvSpec,
    CsvAd,
    CsvAdSet,
    CsvCampaign,
    CsvTree,
    Origin,
    PathParts,
    normalize,
)
from .assets import ImageSpec, LocalImage, inspect_image
from .base import Issue, format_path
from .csvinput import CsvError, csv_issue, is_file, iter_cells
from .schema_words import schema_message
from .specs import AdSetSpec, AdSpec, CampaignSpec
from .videos import LocalVideo, VideoSpec, inspect_video

__all__ = ["read_ads_csv"]

_C, _S, _A = NAME_COLUMNS  # the levels: campaign, ad_set, ad
_HASH = re.compile(r"[0-9a-f]{32}")
_DIGITS = re.compile(r"\d+")
_COUNTRY = re.compile(r"[A-Z]{2}")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_IMAGE_COLUMNS: Final = ("image_file", "image_url", "image_hash")
_VIDEO_COLUMNS: Final = ("video_file", "video_url", "video_id")
_CTA = (100, 1373054)  # S003 §Error Codes: "No Call To Action Type was parseable"
_INVALID = (100, None)  # "Invalid parameter": what Graph answers a bad link or image URL

# reason → (rule, message, Graph code/subcode it mirrors)
_SAY: Final[dict[str, tuple[str, str, tuple[int, int | None] | None]]] = {
    "empty": ("ads_csv.column", "the CSV is empty: it needs a header row and one row per ad", None),
    "unknown": (
        "ads_csv.column",
        "unknown column {text!r}; the columns are {known} (Ads Manager's names too: Campaign Name, Body, "
        "Title, Website URL…) - or name it in ignore_columns",
        None,
    ),
    "twice": ("ads_csv.column", "columns {first!r} and {text!r} both mean {name}", None),
    "no_column": ("ads_csv.column", "the CSV has no {name} column (rows name campaign, ad set and ad)", None),
    "stray": ("ads_csv.row", "a value under no column (the header names no column there)", None),
    "no_name": ("ads_csv.required", "{name} is empty: every row names its campaign, ad set and ad", None),
    "no_link": (
        "ads_csv.required",
        "a link ad needs the URL it opens (object_story_spec.link_data.link)",
        None,
    ),
    "video_link": (
        "ads_csv.required",
        "a video ad's link goes in its call to action: fill call_to_action",
        None,
    ),
    "missing": (
        "ads_csv.required",
        "{level} {name!r} has no {field}: set ads_csv.{lvl}.{field}{where}",
        None,
    ),
    "duplicate": (
        "ads_csv.duplicate_ad",
        "ad set {adset!r} of campaign {campaign!r} already has an ad of this name (line {first})",
        None,
    ),
    "conflict": (
        "ads_csv.conflict",
        "{level} {name!r} has {setting} {before!r} on line {first}: the rows of one {level} must agree "
        "(or leave the cell empty)",
        None,
    ),
    "cents": (
        "ads_csv.cents",
        "must be a whole number of cents (minor currency unit) like every amount of a job file: "
        "Ads Manager's 20.00 is 2000",
        None,
    ),
    "countries": ("ads_csv.countries", "must be two-letter country codes (ISO 3166), e.g. US, CA", None),
    "cta": ("ads_csv.cta", "unknown call to action type; one of {known}", _CTA),
    "link": ("ads_csv.link", "a link must be an http(s) URL with a host", _INVALID),
    "image_url": ("image.url", "an image URL must be http or https", _INVALID),
    "video_url": ("video.url", "a video URL must be http or https", (VIDEO_CODES["video.url"], None)),
    "two_media": ("ads_csv.media", "one of {names} per row (this row fills {filled})", None),
    "image_hash": ("ads_csv.media", "an image hash is 32 hex digits (the MD5 of the image)", None),
    "url_as_file": ("ads_csv.media", "a URL in a {kind} file column: put it in a {kind}_url column", None),
    "no_page": (
        "ads_csv.page_id",
        "no Page: set ads_csv.page_id in the job file or fill a page_id column",
        None,
    ),
    "page": ("ads_csv.page_id", "a Page id is a number", None),
    "video_id": ("ads_csv.media", "a video id is a number", None),
}


@dataclass
class _Group:
    """A campaign or ad set while rows arrive: its first line and settings (with the line each came from)."""

    line: int
    values: dict[str, tuple[Any, str, int]] = field(default_factory=dict)  # column → (parsed, cell, line)
    children: dict[str, _Group] = field(default_factory=dict)
    ads: dict[str, CsvAd | int] = field(default_factory=dict)  # name → the ad, or the line of a broken row


def _key(kind: str, name: str) -> str:
    return f"{kind}:{hashlib.sha256(name.encode()).hexdigest()[:16]}"


def _words(level: str) -> str:
    return level.replace("_", " ")


def read_ads_csv(spec: AdsCsvSpec, base_dir: Path) -> CsvTree:
    """Read and check the sheet (every problem in ``tree.issues``) and build its trees."""
    path = Path(spec.file) if Path(spec.file).is_absolute() else base_dir / spec.file
    return _Reader(spec, path, base_dir).read()


class _Reader:
    def __init__(self, spec: AdsCsvSpec, path: Path, base_dir: Path) -> None:
        self.spec, self.path, self.base_dir = spec, path, base_dir
        self.tree = CsvTree(str(path), spec)
        self.columns: dict[str, int] = {}  # column → cell index
        self.ignored: set[int] = set()  # cells of ignore_columns
        self.header_seen = False
        self.campaigns: dict[str, _Group] = {}
        self.inspected: dict[str, bool] = {}  # media key → usable (each file inspected once)

    def say(self, line: int, column: str | None, reason: str, value: Any = None, **words: Any) -> None:
        rule, text, graph = _SAY[reason]
        code, subcode = graph or (None, None)
        header = self.tree.headers.get(column, column) if column else None
        self.tree.issues.append(
            Issue(
                ("ads_csv", header) if header else ("ads_csv",),
                text.format(**words),
                value,
                rule,
                code,
                subcode,
                file=self.tree.file,
                line=line,
                has_value=value is not None,
            )
        )

    def read(self) -> CsvTree:
        if not is_file(self.path):
            missing = Issue(
                ("ads_csv", "file"), f"CSV file not found: {self.path}", self.spec.file, "csv.missing"
            )
            self.tree.issues.append(missing)
            return self.tree
        try:
            for line, cells in iter_cells(self.path):
                if self.header_seen:
                    self.tree.rows += 1
                    self._row(line, cells)
                    continue
                self.header_seen = True
                if not self._header(line, cells):
                    return self.tree
        except (CsvError, OSError) as err:
            self.tree.issues.append(csv_issue(err, self.path, "ads_csv"))
            return self.tree
        if not self.header_seen:
            self.say(1, None, "empty")
        self._build()
        return self.tree

    def _header(self, line: int, cells: list[str]) -> bool:
        ignored = {normalize(name) for name in self.spec.ignore_columns}
        problems = len(self.tree.issues)
        for i, text in enumerate(cells):
            name = normalize(text)
            if name in ignored:
                self.ignored.add(i)
            if not name or name in ignored:  # a value under an unnamed header is refused row by row
                continue
            self.tree.headers.setdefault(name, text)
            if name not in COLUMNS:
                self.say(line, None, "unknown", text, text=text, known=", ".join(COLUMNS))
            elif name in self.columns:
                self.say(line, None, "twice", text, first=cells[self.columns[name]], text=text, name=name)
            else:
                self.columns[name] = i
        for name in NAME_COLUMNS.values():
            if name not in self.columns:
                self.say(line, None, "no_column", name=name)
        return len(self.tree.issues) == problems

    def _row(self, line: int, cells: list[str]) -> None:
        named = set(self.columns.values()) | self.ignored
        stray = [cell for i, cell in enumerate(cells) if cell and i not in named]
        if stray:
            self.say(line, None, "stray", stray[0])
        raw = {name: cells[i] for name, i in self.columns.items() if i < len(cells) and cells[i]}
        values: dict[str, Any] = {}
        for name, cell in raw.items():
            parsed = self._parse(line, name, cell)
            if parsed is not None:
                values[name] = parsed
        names = [raw.get(NAME_COLUMNS[level], "") for level in (_C, _S, _A)]
        for level, name in zip((_C, _S, _A), names, strict=True):
            if not name:
                self.say(line, NAME_COLUMNS[level], "no_name", name=NAME_COLUMNS[level])
        if not all(names):
            return
        campaign = self.campaigns.setdefault(names[0], _Group(line))
        self._settings(campaign, _C, names[0], line, values, raw)
        adset = campaign.children.setdefault(names[1], _Group(line))
        self._settings(adset, _S, names[1], line, values, raw)
        earlier = adset.ads.get(names[2])
        if earlier is not None:
            first = earlier if isinstance(earlier, int) else earlier.line
            self.say(line, "ad_name", "duplicate", names[2], adset=names[1], campaign=names[0], first=first)
            return
        ad = self._ad(line, names, values)
        adset.ads[names[2]] = ad if ad is not None else line

    def _parse(self, line: int, name: str, cell: str) -> Any:
        kind = COLUMNS[name].kind
        if kind == "enum":
            return cell.upper().replace(" ", "_")
        if kind == "cents":
            if _DIGITS.fullmatch(cell):
                return int(cell)
            self.say(line, name, "cents", cell)
            return None
        if kind == "countries":
            codes = [c for c in re.split(r"[\s,;]+", cell.upper()) if c]
            if codes and all(_COUNTRY.fullmatch(c) for c in codes):
                return codes
            self.say(line, name, "countries", cell)
            return None
        return cell

    def _settings(
        self,
        group: _Group,
        level: str,
        name: str,
        line: int,
        values: Mapping[str, Any],
        raw: Mapping[str, str],
    ) -> None:
        """Take a row's campaign (ad set) columns; a value that differs from an earlier row's is an error."""
        for column, value in values.items():
            if COLUMNS[column].level != level or column == NAME_COLUMNS[level]:
                continue
            earlier = group.values.get(column)
            if earlier is None:
                group.values[column] = (value, raw[column], line)
            elif earlier[0] != value:
                words = {"level": _words(level), "name": name, "setting": column}
                self.say(line, column, "conflict", raw[column], before=earlier[1], first=earlier[2], **words)

    # --- one ad and its creative ------------------------------------------------------------------------------
    def _ad(self, line: int, names: list[str], values: Mapping[str, Any]) -> CsvAd | None:
        before = len(self.tree.issues)
        creative, origin = self._creative(line, values)
        if len(self.tree.issues) > before:
            return None
        data: dict[str, Any] = {**self.spec.ad, "name": names[2]}
        origin[("name",)] = ("ad_name", line)
        if "ad_status" in values:
            data["status"] = values["ad_status"]
            origin[("status",)] = ("ad_status", line)
        data["creative_spec"] = {**self.spec.creative, "name": names[2], **creative}
        spec = self._validate(AdSpec, data, origin, line, _A, names[2])
        if not isinstance(spec, AdSpec):
            return None
        key = f"{_key('csv', names[0])}/{_key('s', names[1])}/{_key('a', names[2])}"
        return CsvAd(key, line, names[2], spec, origin)

    def _creative(self, line: int, values: Mapping[str, Any]) -> tuple[dict[str, Any], Origin]:
        """The creative's ``object_story_spec`` (``link_data``, or ``video_data`` with a video) from the
        row's cells, and which column each field came from. Problems go to ``tree.issues``."""
        page = values.get("page_id") or self.spec.page_id
        if page is None:
            self.say(line, None, "no_page")
        elif not _DIGITS.fullmatch(page):
            self.say(line, "page_id", "page", page)
        images = [c for c in _IMAGE_COLUMNS if c in values]
        videos = [c for c in _VIDEO_COLUMNS if c in values]
        for group, found in ((_IMAGE_COLUMNS, images), (_VIDEO_COLUMNS, videos)):
            if len(found) > 1:
                words = {"names": ", ".join(group), "filled": " and ".join(found)}
                self.say(line, found[1], "two_media", values[found[1]], **words)
        cta = values.get("call_to_action")
        if cta is not None:
            cta = cta.upper().replace(" ", "_").replace("-", "_")
            if cta not in CTA_TYPES:
                self.say(
                    line,
                    "call_to_action",
                    "cta",
                    values["call_to_action"],
                    known=", ".join(sorted(CTA_TYPES)),
                )
        link = values.get("link")
        if link is not None and _bad_link(link, geo=cta == "GET_DIRECTIONS"):
            self.say(line, "link", "link", link)
        story = "video_data" if videos else "link_data"
        base: PathParts = ("creative_spec", "object_story_spec", story)
        data: dict[str, Any] = {}
        origin: Origin = {}

        def put(key: str, column: str, value: Any) -> None:
            data[key] = value
            origin[(*base, key)] = (column, line)

        texts = {"primary_text": "message", "headline": "name", "description": "description"}
        if videos:  # S003 §Video and Carousel Ads: video_data's own names
            texts.update(headline="title", description="link_description")
        for column, key in texts.items():
            if column in values:
                put(key, column, values[column])
        for found in (images, videos):  # a video's image is its thumbnail (video_data.image_hash / image_url)
            if found:
                kind, source = found[0].split("_")
                field_name = {"hash": "image_hash", "id": "video_id"}.get(source, kind)
                put(field_name, found[0], self._media(line, found[0], kind, source, values[found[0]]))
        if videos and link is not None and cta is None:
            self.say(line, "link", "video_link", link)
        elif not videos and link is None:
            self.say(line, "link", "no_link")
        elif not videos:
            put("link", "link", link)
        if cta is not None:
            value: dict[str, Any] = {"link": link} if videos and link else {}
            if cta in CTA_APPS:  # click-to-message buttons open their app (seeds 000-002)
                value["app_destination"] = CTA_APPS[cta]
            put("call_to_action", "call_to_action", {"type": cta, **({"value": value} if value else {})})
        creative: dict[str, Any] = {"object_story_spec": {"page_id": page, story: data}}
        if "page_id" in values:
            origin[("creative_spec", "object_story_spec", "page_id")] = ("page_id", line)
        if "url_tags" in values:
            creative["url_tags"] = values["url_tags"]
            origin[("creative_spec", "url_tags")] = ("url_tags", line)
        return creative, origin

    def _media(self, line: int, column: str, kind: str, source: str, cell: str) -> str | None:
        """What a media cell puts in the creative: an ``images`` / ``videos`` key (a file inspected once per
        path), or the ``image_hash`` / ``video_id`` as given; ``None`` when the cell is refused."""
        if source in ("hash", "id"):
            if (_HASH if source == "hash" else _DIGITS).fullmatch(cell.lower()):
                return cell.lower()
            self.say(line, column, column, cell)
            return None
        if source == "url":
            if _bad_link(cell):
                self.say(line, column, column, cell)
                return None
            key = f"csv:{cell}"
            if kind == "image":
                self.tree.images[key] = ImageSpec(url=cell)
            else:
                self.tree.videos[key] = VideoSpec(url=cell)
            return key
        if _SCHEME.match(cell):
            self.say(line, column, "url_as_file", cell, kind=kind)
            return None
        file = str(Path(cell) if Path(cell).is_absolute() else Path(self.spec.file).parent / cell)
        key = f"csv:{Path(file).as_posix()}"
        if key not in self.inspected:
            found = self._inspect(kind, key, file)
            self.inspected[key] = not isinstance(found, Issue)
            if isinstance(found, Issue):
                where = ("ads_csv", self.tree.headers[column])
                self.tree.issues.append(
                    Issue(where, found.message, cell, found.rule, found.code, file=self.tree.file, line=line)
                )
        return key if self.inspected[key] else None

    def _inspect(self, kind: str, key: str, file: str) -> Issue | None:
        """Open, size, sniff and hash a local image or video (:mod:`.assets`, :mod:`.videos`)."""
        if kind == "image":
            image = ImageSpec(file=file)
            found_image = inspect_image(key, image, self.base_dir)
            if isinstance(found_image, LocalImage):
                self.tree.images[key], self.tree.local[key] = image, found_image
            return found_image if isinstance(found_image, Issue) else None
        video = VideoSpec(file=file)
        found_video = inspect_video(key, video, self.base_dir)
        if isinstance(found_video, LocalVideo):
            self.tree.videos[key], self.tree.local_videos[key] = video, found_video
        return found_video if isinstance(found_video, Issue) else None

    # --- groups → specs ------------------------------------------------------------------------------------
    def _build(self) -> None:
        for cname, group in self.campaigns.items():
            adsets: list[CsvAdSet] = []
            for sname, sgroup in group.children.items():
                ads = [ad for ad in sgroup.ads.values() if isinstance(ad, CsvAd)]
                spec, origin = self._group_spec(AdSetSpec, _S, sname, sgroup, {"ads": [a.spec for a in ads]})
                if isinstance(spec, AdSetSpec):
                    key = f"{_key('csv', cname)}/{_key('s', sname)}"
                    adsets.append(CsvAdSet(key, sgroup.line, sname, spec, ads, origin))
            children = {"ad_sets": [s.spec for s in adsets]}
            spec, origin = self._group_spec(CampaignSpec, _C, cname, group, children)
            if isinstance(spec, CampaignSpec):
                self.tree.campaigns.append(
                    CsvCampaign(_key("csv", cname), group.line, cname, spec, adsets, origin)
                )

    def _group_spec(
        self, model: type[BaseModel], level: str, name: str, group: _Group, children: dict[str, Any]
    ) -> tuple[BaseModel | None, Origin]:
        template: dict[str, Any] = getattr(self.spec, level)
        data: dict[str, Any] = {k: v for k, v in template.items() if k not in RESERVED[level]}
        origin: Origin = {("name",): (NAME_COLUMNS[level], group.line)}
        for column, (value, _, line) in group.values.items():
            target = COLUMNS[column].field
            assert target is not None
            if COLUMNS[column].kind == "countries":  # replaces the template's geo_locations
                value = {**(data.get("targeting") or {}), "geo_locations": {"countries": value}}
            data[target] = value
            origin[(target,)] = (column, line)
        data.update(children, name=name)
        return self._validate(model, data, origin, group.line, level, name), origin

    def _validate(
        self, model: type[BaseModel], data: dict[str, Any], origin: Origin, line: int, level: str, name: str
    ) -> BaseModel | None:
        """``model`` from ``data``; each pydantic error at the cell its value came from, a missing setting
        at the group's first row (a template's own errors are reported once, by ``template_issues``)."""
        try:
            return model.model_validate(data)
        except ValidationError as err:
            template: dict[str, Any] = getattr(self.spec, level)
            for error in err.errors(include_url=False):
                loc = tuple(error["loc"])
                source = origin.get(loc[:1])
                rule = f"schema.{error['type']}"
                if source is not None:
                    problem = Issue(
                        ("ads_csv", self.tree.headers[source[0]]),
                        schema_message(error),
                        error.get("input"),
                        rule,
                        file=self.tree.file,
                        line=source[1],
                    )
                elif error["type"] == "missing":
                    columns = [c for c, col in COLUMNS.items() if col.level == level and col.field == loc[0]]
                    words = {"level": _words(level), "name": name, "field": loc[0], "lvl": level}
                    more = (
                        f" in the job file or fill a {columns[0]} column" if columns else " in the job file"
                    )
                    self.say(line, NAME_COLUMNS[level], "missing", name, where=more, **words)
                    continue
                elif loc[:1] and loc[0] in template:
                    continue
                else:
                    problem = Issue(
                        ("ads_csv", *loc),
                        f"{_words(level)} {name!r}: {format_path(loc)} {schema_message(error)}",
                        None,
                        rule,
                        file=self.tree.file,
                        line=line,
                        has_value=False,
                    )
                self.tree.issues.append(problem)
            return None


def _bad_link(link: str, *, geo: bool = False) -> bool:
    """True unless ``link`` is an http(s) URL with a host (``fbgeo://`` too for GET_DIRECTIONS, S003 §Call to
    Action)."""
    if any(c.isspace() for c in link):
        return True
    parts = urlsplit(link)
    if geo and parts.scheme == "fbgeo":
        return False
    return parts.scheme.lower() not in ("http", "https") or not parts.netloc
