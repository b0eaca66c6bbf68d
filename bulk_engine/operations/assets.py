"""Creative images in job files: an ``images:`` map (key → file, URL or Base64) that creatives use by key.

Why: a bulk launch starts from a folder of images, not from hashes (issue 15). A create task's ``images``
maps a key to one source — ``{file: PATH}`` (relative to the job file), ``{url: URL}`` or ``{bytes_b64:
...}``, with an optional library ``name`` — and a creative says ``image: <key>`` where Graph wants an image:

==================================================  =========================  ==========================
where ``image: <key>`` stands                       uploaded (file, bytes)     ``url`` (never fetched)
==================================================  =========================  ==========================
the creative itself                                 ``image_hash``             ``image_url``
``object_story_spec.link_data``                     ``image_hash``             ``picture``
``link_data.child_attachments[i]`` (carousel)       ``image_hash``             ``picture``
``object_story_spec.photo_data``                    ``image_hash``             ``url``
``object_story_spec.video_data`` (thumbnail)        ``image_hash``             ``image_url``
``asset_feed_spec.images[i]``                       ``hash``                   ``url``
==================================================  =========================  ==========================

(S003 §Ad Account Ad Creatives: ``image_hash`` / ``image_url``; §Carousel: "Either ``picture`` or
``image_hash`` must be specified"; §Asset Feed Spec: "Images as ``url`` or ``hash``".) A ``url`` image is
passed to Graph as a URL — Graph saves it to the library itself ("Facebook saves the image from your URL to
your ad account's image library"); this engine never fetches it.

Uploads (S003 §Ad Account Ad Images → Creating; §Batch Requests → Upload Binary Data): one ``POST
act_X/adimages`` per distinct content per account (op id ``<task>/img:<md5>``), a file as a multipart part
named by ``attached_files``, Base64 as the ``bytes`` parameter. Creatives take the hash from the upload's
answer with ``{result=NAME:$.images.*.hash}`` — the reference the seed's batch example uses (§Asynchronous
and Batch Requests → Create Ads) — or, across batches, the same JSONPath resolved by the engine.

Dedupe: identical bytes under several keys are one upload; before uploading, the task asks the account's
library for the MD5s it computed (``GET act_X/adimages?hashes=[...]``, §Ad Account Ad Images → Reading,
``hashes: list<string>``; 50 per call) and uses the hashes found as they are (reused, not re-sent). The task
report's ``details.images`` says how many were uploaded, reused and deduplicated. The lookup is an engine
job of its own: with a journal, a resumed run gets the same answer from it and so plans the same uploads.

Rules (before any call, ``file:line`` like every other rule; Graph answers each of these with code 100
"Invalid parameter", the only error S003 lists for creating an image): ``image.source`` (exactly one of
file / url / bytes_b64), ``image.url`` (http or https), ``image.missing``, ``image.unreadable``,
``image.empty``, ``image.too_large`` (over 8 MB: "Images cannot exceed 8 MB"), ``image.not_image`` (the
header is not PNG/JPEG/GIF/BMP/WebP), ``image.bytes_b64`` (not Base64), ``create.image_key`` (a creative
names a key the task does not define).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from pydantic import BaseModel, Field

from bulk_engine.planning.graph import Operation, OpKind
from bulk_engine.protocol.images import (
    IMAGE_HASH_PATH,
    MAX_IMAGE_BYTES,
    SNIFF_BYTES,
    Upload,
    decode_b64,
    image_problem,
    md5_hex,
)
from bulk_engine.protocol.refs import Ref
from bulk_engine.results import Outcome, OutcomeState

from .base import Issue
from .specs import job_model_config

__all__ = [
    "ImagePlan",
    "ImageSpec",
    "LocalImage",
    "copy_path",
    "creative_image_keys",
    "found_hashes",
    "image_source_issues",
    "inspect_image",
    "inspect_local",
    "lookup_ops",
    "plan_images",
    "resolve_images",
]

GRAPH_CODE: Final = 100  # S003 §Ad Account Ad Images → Creating, Error Codes: "100 Invalid parameter"
LOOKUP_CHUNK: Final = 50
PathParts = tuple[str | int, ...]


class ImageSpec(BaseModel):
    """One image of a task's ``images`` map: exactly one of ``file``, ``url`` or ``bytes_b64``."""

    model_config = job_model_config("Image")

    file: str | None = Field(None, min_length=1, description="Local image file, relative to the job file")
    url: str | None = Field(None, description="Image URL passed to Graph (never fetched by the engine)")
    bytes_b64: str | None = Field(None, description="The image's bytes, Base64")
    name: str | None = Field(None, min_length=1, max_length=400, description="Name in the image library")

    def sources(self) -> list[str]:
        return [k for k in ("file", "url", "bytes_b64") if getattr(self, k) is not None]


@dataclass(frozen=True)
class LocalImage:
    """What the engine needs to upload an image: its content's MD5 and size, its name, and its path
    (``None`` for Base64 given in the job file, which travels as the ``bytes`` parameter)."""

    md5: str
    size: int
    name: str
    path: str | None = None
    b64: str | None = None

    def upload(self) -> Upload:
        return Upload(self.md5, self.size, self.name, self.path)


def _issue(rule: str, path: PathParts, message: str, value: Any = None, *, has_value: bool = True) -> Issue:
    return Issue(path, message, value, rule, GRAPH_CODE, has_value=has_value)


def image_source_issues(key: str, spec: ImageSpec) -> Iterator[Issue]:
    """Problems decidable from the job itself: the source, the URL, Base64 content."""
    here: PathParts = ("images", key)
    given = spec.sources()
    if len(given) != 1:
        yield _issue(
            "image.source",
            here,
            "an image needs exactly one of file, url or bytes_b64"
            + (f" - got {', '.join(given)}" if given else ""),
            has_value=False,
        )
        return
    if spec.url is not None and not spec.url.lower().startswith(("http://", "https://")):
        yield _issue("image.url", (*here, "url"), "an image URL must be http or https", spec.url)
    if spec.bytes_b64 is not None:
        data = decode_b64(spec.bytes_b64)
        if data is None:
            yield _issue("image.bytes_b64", (*here, "bytes_b64"), "not Base64 text", spec.bytes_b64)
            return
        found = image_problem(len(data), data[:SNIFF_BYTES])
        if found is not None:
            yield _issue(found[0], (*here, "bytes_b64"), found[1], spec.bytes_b64)


Spec = TypeVar("Spec")
Local = TypeVar("Local")


def inspect_local(
    specs: Mapping[str, Spec],
    inspect: Callable[[str, Spec, Path], Local | Issue | None] | None,
    base_dir: Path,
    sources: Callable[[str, Spec], Iterator[Issue]] | None = None,
) -> tuple[list[Issue], dict[str, Local]]:
    """A map of images or videos checked key by key: its ``sources`` issues, then (with ``inspect``) its local
    file opened, sized and sniffed. Returns the issues in that order and the identities of the local ones
    (the job's top-level maps, a create task's own, for images and videos alike)."""
    issues: list[Issue] = []
    local: dict[str, Local] = {}
    for key, spec in specs.items():
        if sources is not None:
            issues.extend(sources(key, spec))
        found = inspect(key, spec, base_dir) if inspect is not None else None
        if isinstance(found, Issue):
            issues.append(found)
        elif found is not None:
            local[key] = found
    return issues, local


def inspect_image(key: str, spec: ImageSpec, base_dir: Path) -> LocalImage | Issue | None:
    """The upload identity of a local image, or the issue that keeps it from being uploaded (``None``: a URL
    image, or a source problem :func:`image_source_issues` reports)."""
    if len(spec.sources()) != 1 or spec.url is not None:
        return None
    if spec.bytes_b64 is not None:
        data = decode_b64(spec.bytes_b64)
        if data is None or image_problem(len(data), data[:SNIFF_BYTES]) is not None:
            return None
        return LocalImage(md5_hex(data), len(data), spec.name or key, b64=spec.bytes_b64)
    assert spec.file is not None
    where: PathParts = ("images", key, "file")
    path = Path(spec.file) if Path(spec.file).is_absolute() else base_dir / spec.file
    try:
        if not path.is_file():
            return _issue("image.missing", where, f"image file not found: {path}", spec.file)
        size = path.stat().st_size
        if size > MAX_IMAGE_BYTES:  # refused without reading it
            found = image_problem(size, b"")
            assert found is not None
            return _issue(found[0], where, found[1], spec.file)
        data = path.read_bytes()
    except (OSError, ValueError) as err:
        reason = getattr(err, "strerror", None) or type(err).__name__
        return _issue("image.unreadable", where, f"cannot read image file {path}: {reason}", spec.file)
    found = image_problem(len(data), data[:SNIFF_BYTES])
    if found is not None:
        return _issue(found[0], where, found[1], spec.file)
    return LocalImage(
        md5_hex(data), len(data), spec.name or os.path.basename(spec.file), path=str(path.resolve())
    )


# --- where creatives name images ------------------------------------------------------------------------------
# (container path from the creative's params, "many" = a list of such objects) → (uploaded key, url key)
_SLOTS: Final[tuple[tuple[PathParts, bool, str, str], ...]] = (
    ((), False, "image_hash", "image_url"),
    (("object_story_spec", "link_data"), False, "image_hash", "picture"),
    (("object_story_spec", "link_data", "child_attachments"), True, "image_hash", "picture"),
    (("object_story_spec", "photo_data"), False, "image_hash", "url"),
    (("object_story_spec", "video_data"), False, "image_hash", "image_url"),
    (("asset_feed_spec", "images"), True, "hash", "url"),
)


def _containers(params: Mapping[str, Any]) -> Iterator[tuple[PathParts, Mapping[str, Any], str, str]]:
    for path, many, hash_key, url_key in _SLOTS:
        node: Any = params
        for part in path:
            node = node.get(part) if isinstance(node, Mapping) else None
        if many and isinstance(node, list):
            for i, item in enumerate(node):
                if isinstance(item, Mapping):
                    yield (*path, i), item, hash_key, url_key
        elif not many and isinstance(node, Mapping):
            yield path, node, hash_key, url_key


def creative_image_keys(params: Mapping[str, Any]) -> Iterator[tuple[PathParts, Any]]:
    """``(path of the image field, key)`` for every ``image: <key>`` of a creative's params."""
    for path, node, _, _ in _containers(params):
        if "image" in node:
            yield (*path, "image"), node["image"]


def resolve_images(params: Mapping[str, Any], resolve: Callable[[str], tuple[bool, Any]]) -> dict[str, Any]:
    """``params`` with every ``image: <key>`` replaced by the field Graph reads; ``resolve(key)`` answers
    ``(is_url, value)``: a URL, or a hash (literal or a :class:`Ref` to the upload)."""
    out = dict(params)
    if not any(True for _ in creative_image_keys(params)):
        return out
    for path, _, hash_key, url_key in list(_containers(out)):
        node = copy_path(out, path)
        key = node.pop("image", None)
        if key is None:
            continue
        is_url, value = resolve(str(key))
        node[url_key if is_url else hash_key] = value
    return out


def copy_path(root: dict[str, Any], path: PathParts) -> dict[str, Any]:
    """The container at ``path`` in ``root``, copied on the way down so the spec is never mutated."""
    node: Any = root
    for part in path:
        child = node[part]
        child = list(child) if isinstance(child, list) else dict(child)
        node[part] = child
        node = child
    found: dict[str, Any] = node  # the callers' paths end at an object
    return found


# --- the upload plan --------------------------------------------------------------------------------------------
@dataclass
class ImagePlan:
    """The images of one task in one account: what is uploaded by which op, what the library has already."""

    account_id: str
    local: dict[str, LocalImage]  # key → identity (file and Base64 images)
    urls: dict[str, str]  # key → URL
    reused: frozenset[str] = frozenset()  # MD5s found in the account's library
    op_prefix: str = ""

    def op_id(self, md5: str) -> str:
        return f"{self.op_prefix}img:{md5}"

    def uploads(self) -> list[Operation]:
        """One upload per distinct content not in the library yet (several keys, one upload)."""
        seen: dict[str, LocalImage] = {}
        for image in self.local.values():
            if image.md5 not in self.reused:
                seen.setdefault(image.md5, image)
        return [self._upload(image) for image in seen.values()]

    def _upload(self, image: LocalImage) -> Operation:
        params: dict[str, Any] = {}
        if image.b64 is not None:
            params = {"bytes": image.b64, "name": image.name}
        return Operation(
            op_id=self.op_id(image.md5),
            method="POST",
            path=f"{self.account_id}/adimages",
            params=params,
            account_id=self.account_id,
            kind=OpKind.CREATE_IMAGE,
            upload=image.upload(),
        )

    def resolve(self, key: str) -> tuple[bool, Any]:
        if key in self.urls:
            return True, self.urls[key]
        image = self.local[key]
        if image.md5 in self.reused:
            return False, image.md5
        return False, Ref(self.op_id(image.md5), IMAGE_HASH_PATH)

    def counts(self) -> dict[str, int]:
        distinct = {image.md5 for image in self.local.values()}
        return {
            "keys": len(self.local) + len(self.urls),
            "uploaded": len(distinct - self.reused),
            "reused": len(distinct & self.reused),
            "deduplicated": len(self.local) - len(distinct),
            "by_url": len(self.urls),
        }


def plan_images(
    images: Mapping[str, ImageSpec], local: Mapping[str, LocalImage], account_id: str, op_prefix: str
) -> ImagePlan:
    urls = {key: spec.url for key, spec in images.items() if spec.url is not None}
    return ImagePlan(account_id, dict(local), urls, op_prefix=op_prefix)


def lookup_ops(plan: ImagePlan) -> list[Operation]:
    """``GET act_X/adimages?hashes=[...]`` for the task's distinct contents, 50 hashes per call."""
    hashes = sorted({image.md5 for image in plan.local.values()})
    return [
        Operation(
            op_id=f"{plan.op_prefix}img-lookup/{n}",
            method="GET",
            path=f"{plan.account_id}/adimages",
            params={"hashes": chunk, "fields": "hash", "limit": len(chunk)},
            account_id=plan.account_id,
            kind=OpKind.READ,
        )
        for n, chunk in enumerate(_chunks(hashes, LOOKUP_CHUNK))
    ]


def found_hashes(outcomes: Mapping[str, Outcome], ops: Sequence[Operation]) -> set[str]:
    """The hashes the lookups found (a failed lookup finds nothing: its images are uploaded)."""
    found: set[str] = set()
    for op in ops:
        outcome = outcomes.get(op.op_id)
        if outcome is None or outcome.state is not OutcomeState.SUCCEEDED:
            continue
        asked = set(op.params.get("hashes", ()))
        data = outcome.result.get("data") if isinstance(outcome.result, Mapping) else None
        for item in data if isinstance(data, list) else ():
            if isinstance(item, Mapping) and item.get("hash") in asked:
                found.add(str(item["hash"]))
    return found


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
