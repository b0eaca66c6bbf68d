"""Creative videos in job files: a ``videos:`` map (key → file, URL or Base64) that creatives use by key.

Why: a bulk launch starts from a folder of videos, not from video ids (issue 15). Shaped exactly like
``images`` (:mod:`bulk_engine.operations.assets`): a create task's (or the job's) ``videos`` maps a key to one
source — ``{file: PATH}`` (relative to the job file), ``{url: URL}`` or ``{bytes_b64: ...}``, with an optional
library ``name`` (``title`` is accepted as its synonym, the parameter Graph also takes) — and a creative says
``video: <key>`` where Graph wants a ``video_id``:

==================================================  =================================================
where ``video: <key>`` stands                       becomes
==================================================  =================================================
``object_story_spec.video_data``                    ``video_id`` (S003 §Video and Carousel Ads)
``link_data.child_attachments[i]`` (carousel)       ``video_id`` (S003 §Carousel: a card's video)
``asset_feed_spec.videos[i]``                       ``video_id`` (S003 §Asset Feed Spec: videos)
==================================================  =================================================

Every video becomes an id of the account's video library before the creatives that use it are created: a URL
is uploaded with ``file_url`` (Graph fetches it), a file or Base64 with ``source`` or, over the chunk
threshold, by chunked upload (:mod:`bulk_engine.operations.video_flow`).

Rules (before any call, ``file:line`` like every other rule; each mirrors the Graph code of S003 §Ad Videos
→ Creating, Error Codes, :data:`~bulk_engine.protocol.videos.VIDEO_CODES`): ``video.source`` (exactly one of
file / url / bytes_b64), ``video.url`` (http or https: 389), ``video.missing``, ``video.unreadable``,
``video.empty`` (382), ``video.too_large`` (over 10 GB), ``video.not_video`` (the header is no video
container: 352), ``video.bytes_b64`` (not Base64), ``create.video_key`` (a creative names a key the task and
the job do not define).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, Field

from bulk_engine.planning.graph import OpKind
from bulk_engine.protocol.images import decode_b64, md5_hex
from bulk_engine.protocol.videos import MAX_VIDEO_BYTES, SNIFF_VIDEO_BYTES, VIDEO_CODES, video_problem

from .assets import copy_path
from .base import Issue
from .specs import job_model_config

__all__ = [
    "LocalVideo",
    "VideoSpec",
    "creative_video_keys",
    "estimate_video_ops",
    "file_md5",
    "inspect_video",
    "resolve_videos",
    "video_source_issues",
]

PathParts = tuple[str | int, ...]
_READ_CHUNK: Final = 1024 * 1024


class VideoSpec(BaseModel):
    """One video of a ``videos`` map: exactly one of ``file``, ``url`` or ``bytes_b64``."""

    model_config = job_model_config("Video")

    file: str | None = Field(None, min_length=1, description="Local video file, relative to the job file")
    url: str | None = Field(None, description="Public http(s) URL Graph fetches the video from (file_url)")
    bytes_b64: str | None = Field(None, description="The video's bytes, Base64 (small videos only)")
    name: str | None = Field(None, min_length=1, max_length=200, description="Name in the video library")
    title: str | None = Field(None, min_length=1, max_length=200, description="Synonym of name")

    def sources(self) -> list[str]:
        return [k for k in ("file", "url", "bytes_b64") if getattr(self, k) is not None]

    @property
    def library_name(self) -> str | None:
        return self.name or self.title


@dataclass(frozen=True)
class LocalVideo:
    """What the engine needs to upload a video: its content's MD5 and size, its library name, and where the
    bytes are (``path``, an absolute local path; or ``b64``, Base64 given in the job file)."""

    md5: str
    size: int
    name: str
    path: str | None = None
    b64: str | None = None


def _issue(rule: str, path: PathParts, message: str, value: Any = None, *, has_value: bool = True) -> Issue:
    return Issue(path, message, value, rule, VIDEO_CODES.get(rule, 100), has_value=has_value)


def video_source_issues(key: str, spec: VideoSpec, where: str = "videos") -> Iterator[Issue]:
    """Problems decidable from the job itself: the source, the URL, Base64 content."""
    here: PathParts = (where, key)
    given = spec.sources()
    if len(given) != 1:
        yield _issue(
            "video.source",
            here,
            "a video needs exactly one of file, url or bytes_b64"
            + (f" - got {', '.join(given)}" if given else ""),
            has_value=False,
        )
        return
    if spec.name is not None and spec.title is not None and spec.name != spec.title:
        yield _issue(
            "video.source", (*here, "title"), "title is a synonym of name: give one of them", spec.title
        )
    if spec.url is not None and not spec.url.lower().startswith(("http://", "https://")):
        yield _issue(
            "video.url",
            (*here, "url"),
            'a video URL must be http or https (Graph answers 389 "Unable to fetch video file from URL")',
            spec.url,
        )
    if spec.bytes_b64 is not None:
        data = decode_b64(spec.bytes_b64)
        if data is None:
            yield _issue("video.bytes_b64", (*here, "bytes_b64"), "not Base64 text", spec.bytes_b64)
            return
        found = video_problem(len(data), data[:SNIFF_VIDEO_BYTES])
        if found is not None:
            yield _issue(found[0], (*here, "bytes_b64"), found[1], spec.bytes_b64)


def file_md5(path: Path) -> str:
    """The MD5 of a file, read in 1 MB pieces (a video may be gigabytes)."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as stream:
        for piece in iter(lambda: stream.read(_READ_CHUNK), b""):
            digest.update(piece)
    return digest.hexdigest()


def inspect_video(
    key: str, spec: VideoSpec, base_dir: Path, where: str = "videos"
) -> LocalVideo | Issue | None:
    """The upload identity of a local video, or the issue that keeps it from being uploaded (``None``: a URL
    video, or a source problem :func:`video_source_issues` reports)."""
    if len(spec.sources()) != 1 or spec.url is not None:
        return None
    if spec.bytes_b64 is not None:
        data = decode_b64(spec.bytes_b64)
        if data is None or video_problem(len(data), data[:SNIFF_VIDEO_BYTES]) is not None:
            return None
        return LocalVideo(md5_hex(data), len(data), spec.library_name or key, b64=spec.bytes_b64)
    assert spec.file is not None
    here: PathParts = (where, key, "file")
    path = Path(spec.file) if Path(spec.file).is_absolute() else base_dir / spec.file
    try:
        if not path.is_file():
            return _issue("video.missing", here, f"video file not found: {path}", spec.file)
        size = path.stat().st_size
        if size > MAX_VIDEO_BYTES:  # refused without reading it
            found = video_problem(size, b"")
            assert found is not None
            return _issue(found[0], here, found[1], spec.file)
        with path.open("rb") as stream:
            head = stream.read(SNIFF_VIDEO_BYTES)
        found = video_problem(size, head)
        if found is not None:
            return _issue(found[0], here, found[1], spec.file)
        md5 = file_md5(path)
    except (OSError, ValueError) as err:
        reason = getattr(err, "strerror", None) or type(err).__name__
        return _issue("video.unreadable", here, f"cannot read video file {path}: {reason}", spec.file)
    name = spec.library_name or os.path.basename(spec.file)
    return LocalVideo(md5, size, name, path=str(path.resolve()))


# --- where creatives name videos --------------------------------------------------------------------------------
_SLOTS: Final[tuple[tuple[PathParts, bool], ...]] = (
    (("object_story_spec", "video_data"), False),
    (("object_story_spec", "link_data", "child_attachments"), True),
    (("asset_feed_spec", "videos"), True),
)


def _containers(params: Mapping[str, Any]) -> Iterator[tuple[PathParts, Mapping[str, Any]]]:
    for path, many in _SLOTS:
        node: Any = params
        for part in path:
            node = node.get(part) if isinstance(node, Mapping) else None
        if many and isinstance(node, list):
            for i, item in enumerate(node):
                if isinstance(item, Mapping):
                    yield (*path, i), item
        elif not many and isinstance(node, Mapping):
            yield path, node


def creative_video_keys(params: Mapping[str, Any]) -> Iterator[tuple[PathParts, Any]]:
    """``(path of the video field, key)`` for every ``video: <key>`` of a creative's params."""
    for path, node in _containers(params):
        if "video" in node:
            yield (*path, "video"), node["video"]


def resolve_videos(params: Mapping[str, Any], resolve: Callable[[str], Any]) -> dict[str, Any]:
    """``params`` with every ``video: <key>`` replaced by ``video_id: resolve(key)`` (an id, or a reference
    to the upload); the spec itself is never mutated."""
    out = dict(params)
    if not any(True for _ in creative_video_keys(params)):
        return out
    for path, _ in list(_containers(out)):
        node = copy_path(out, path)
        key = node.pop("video", None)
        if key is not None:
            node["video_id"] = resolve(str(key))
    return out


ESTIMATED_CHUNK_BYTES: Final = 4 * 1024 * 1024
"""For progress only: the chunk a server is expected to ask for (the simulator's; Graph's ``end_offset`` decides,
S003 gives no size)."""


def estimate_video_ops(
    local: Mapping[str, LocalVideo], urls: Mapping[str, str], chunked_over: int, dry_run: bool
) -> dict[str, int]:
    """Expected operations of the flow per kind, for progress: per distinct video a lookup by key and one
    status poll (``read``; more polls while Graph processes it) and its upload (``create_other``: one
    ``file_url`` / ``source``, or start + a transfer per :data:`ESTIMATED_CHUNK_BYTES` + finish). A dry run
    sends nothing: one skipped upload per video."""
    sizes = {video.md5: video.size for video in local.values()}
    distinct = len(sizes) + len(set(urls.values()))
    if dry_run:
        return {OpKind.CREATE_OTHER.value: distinct} if distinct else {}
    uploads = len(set(urls.values())) + sum(
        2 + math.ceil(size / ESTIMATED_CHUNK_BYTES) if size > chunked_over else 1 for size in sizes.values()
    )
    return {OpKind.READ.value: 2 * distinct, OpKind.CREATE_OTHER.value: uploads} if distinct else {}
