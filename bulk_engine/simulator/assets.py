"""The ad image library: ``POST act_X/adimages`` by ``bytes``, by multipart file (plain or batch
``attached_files``) or by ``copy_from`` (S003 §Ad Account Ad Images → Creating; §Batch Requests → Upload
Binary Data).

Answer: ``{"images": {"<name>": {hash, url, url_128, url_256, url_256_height, url_256_width, height, width,
name}}}`` — the documented return type. The hash is the MD5 of the decoded content
(:mod:`bulk_engine.protocol.images`), so identical bytes get one hash and uploading them again answers the
image already in the library (nothing is stored twice). ``bytes`` is Base64 and is decoded before hashing.

Keys of the ``images`` map (the seeds do not show one): ``bytes`` for a ``bytes`` upload (or its ``name``
parameter when given), the multipart part name for a file (the name ``attached_files`` uses), the source
image's name for ``copy_from``. The library name of a file upload is its multipart *filename*.

Bad files (the seeds list only code 100 "Invalid parameter" for this edge, so each is a 100 blaming the
parameter, with the rule's message): empty, larger than 8 MB, not an image (PNG/JPEG/GIF/BMP/WebP header),
``bytes`` that is not Base64. ``SimulatorConfig.check_image_content=False`` accepts any non-empty content
(for clients that upload placeholders). The image's ``width``/``height`` are read from its header.
"""

from __future__ import annotations

from typing import Any

from bulk_engine.protocol.images import SNIFF_BYTES, decode_b64, image_problem, md5_hex, sniff

from .context import CallContext, check_account_access
from .errors import invalid_param
from .routing import RouteTable
from .status import iso_time
from .store import AD_ACCOUNT, IMAGE, Node
from .validation import image_node_id

__all__ = ["UploadedFile", "add_image", "routes"]

routes = RouteTable()


class UploadedFile(bytes):
    """A multipart file part's content, remembering the part's ``filename`` (the image's library name)."""

    filename: str | None

    def __new__(cls, content: bytes, filename: str | None = None) -> UploadedFile:
        item = super().__new__(cls, content)
        item.filename = filename
        return item


@routes.add("POST", AD_ACCOUNT, "adimages")
def create_image(ctx: CallContext, node: Node | None) -> Any:
    check_account_access(node)
    assert node is not None
    images: dict[str, Any] = {}
    sources: list[tuple[str, str, bytes, str]] = []  # (answer key, library name, content, blamed param)
    for part, content in ctx.request.files.items():
        sources.append((part, getattr(content, "filename", None) or part, bytes(content), part))
    if ctx.params.has("bytes"):
        decoded = decode_b64(str(ctx.params.str("bytes") or ""))
        if decoded is None:
            raise invalid_param("Param bytes must be a Base64 encoded image", "bytes")
        name = ctx.params.str("name") or "bytes"
        sources.append((name, name, decoded, "bytes"))
    if ctx.params.has("copy_from"):
        source = _image_to_copy(ctx, ctx.params.json("copy_from"))
        name = str(source.get("name") or source.get("hash"))
        image = add_image(ctx, node, name, digest=str(source.get("hash")), like=source)
        images[name] = _image_answer(image, name)
    if not sources and not images:
        raise invalid_param("An image file, bytes or copy_from is required", "bytes")
    for key, name, content, blamed in sources:
        found = image_problem(len(content), content[:SNIFF_BYTES])
        if found is not None and (ctx.config.check_image_content or found[0] != "image.not_image"):
            raise invalid_param(f"Invalid image {name!r}: {found[1]}", blamed)
        images[key] = _image_answer(add_image(ctx, node, name, content), key)
    return {"images": images}


def _image_to_copy(ctx: CallContext, copy_from: Any) -> Node:
    if not isinstance(copy_from, dict) or not copy_from.get("hash") or not copy_from.get("source_account_id"):
        raise invalid_param(
            'Param copy_from must be {"source_account_id": "<SOURCE_ACCOUNT_ID>", "hash": "<HASH>"}',
            "copy_from",
        )
    source_account = "act_" + str(copy_from["source_account_id"]).removeprefix("act_")
    if ctx.store.get(source_account) is None:
        raise invalid_param(f"Unknown source ad account {source_account}", "copy_from")
    image = ctx.store.get(image_node_id(source_account, str(copy_from["hash"])))
    if image is None or image.get("status") == "DELETED":
        raise invalid_param(
            f"Image with hash {copy_from['hash']} is not in the image library of ad account {source_account}",
            "copy_from",
        )
    return image


def add_image(
    ctx: CallContext,
    account: Node,
    name: str,
    content: bytes = b"",
    *,
    digest: str | None = None,
    url: str | None = None,
    like: Node | None = None,
) -> Node:
    """Store an image in ``account``'s library (idempotent per hash) and return its node.

    ``digest`` stands for content the simulator never sees (``copy_from`` of ``like``, a creative's
    ``image_url``); otherwise the hash is the content's MD5 and the size is read from its header.
    """
    digest = digest or md5_hex(content)
    node_id = image_node_id(account.id, digest)
    existing = ctx.store.get(node_id)
    if existing is not None and existing.get("status") != "DELETED":
        return existing
    info = sniff(content[:SNIFF_BYTES]) if content else None
    width = info.width if info else int(like.get("width") or 1080) if like else 1080
    height = info.height if info else int(like.get("height") or 1080) if like else 1080
    base = f"https://scontent.example/{digest}"
    return ctx.store.add(
        IMAGE,
        {
            "hash": digest,
            "name": name,
            "url": f"{base}.jpg",
            "url_128": f"{base}_128.jpg",
            "url_256": f"{base}_256.jpg",
            "url_256_width": "256",
            "url_256_height": str(max(1, round(256 * height / width))),
            "width": width,
            "height": height,
            "status": "ACTIVE",
            "account_id": account.id.removeprefix("act_"),
            "created_time": iso_time(ctx.now),
            **({"original_url": url} if url else {}),
        },
        now=ctx.now,
        account_id=account.id,
        node_id=node_id,
    )


def _image_answer(image: Node, name: str) -> dict[str, Any]:
    keys = ("hash", "url", "url_128", "url_256", "url_256_height", "url_256_width", "height", "width")
    answer: dict[str, Any] = {key: image.get(key) for key in keys if image.get(key) is not None}
    answer["name"] = name
    return answer
