"""Ad images as Graph sees them: what counts as an image file, its hash, and the upload an operation carries.

Why one module: the job-file rules (reject a bad file before any call), the simulator (answer a bad upload
with the documented error) and the engine (content-addressed uploads) must agree on the same facts:

* **The hash is the content's MD5** (32 hex digits, as in S003 §Ad Account Ad Images ``copy_from`` example
  ``"hash":"02bee5277ec507b6fd0f9b9ff2f22d9c"``): identical bytes have one hash, so an upload is
  content-addressed — sending the same bytes again yields the same hash, and ``GET act_X/adimages?hashes=
  [...]`` (S003 §Ad Account Ad Images → Reading, ``hashes: list<string>``) tells whether they are in an
  account's library already.
* **At most 8 MB** (S003 §Ad Account Ad Creatives: "Images cannot exceed 8 MB"; ``image_file``: "Not to
  exceed 8MB in size").
* **An image is a file whose header says so**: PNG, JPEG, GIF, BMP or WebP, read from the first bytes only
  (:func:`sniff`). The seeds list only code 100 "Invalid parameter" among the ``adimages`` errors, so every
  bad file maps to 100 with the message of :func:`image_problem` (the rule ids are shared with job files).

:class:`Upload` is what an image-upload :class:`~bulk_engine.planning.graph.Operation` carries instead of the
bytes: the MD5, the size, the library name and the local path the engine reads when it sends the request
(multipart part ``attached_files``, S003 §Batch Requests → Upload Binary Data). Plans, journals and reports
therefore hold hashes and paths, never image bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass
from typing import Final

__all__ = [
    "IMAGE_HASH_PATH",
    "MAX_IMAGE_BYTES",
    "ImageInfo",
    "Upload",
    "decode_b64",
    "image_problem",
    "md5_hex",
    "sniff",
]

MAX_IMAGE_BYTES: Final = 8 * 1024 * 1024
"""S003 §Ad Account Ad Creatives (``image_url`` / ``image_file``): images cannot exceed 8 MB."""

IMAGE_HASH_PATH: Final = "$.images.*.hash"
"""Where an ``adimages`` answer holds the hash (S003 §Asynchronous and Batch Requests → Create Ads:
``{result=create_adimage:$.images.*.hash}``)."""

SNIFF_BYTES: Final = 64 * 1024
"""How much of a file :func:`sniff` may need (a JPEG's frame header can follow large EXIF segments)."""


@dataclass(frozen=True, slots=True)
class ImageInfo:
    format: str  # "png", "jpeg", "gif", "bmp", "webp"
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Upload:
    """The content an image upload sends, by identity: MD5, size, library name and where to read it.

    ``path`` is an absolute local path read at send time and sent as a multipart part (its MD5 is checked
    again then: a file changed since the job was validated is refused, never sent under the old hash).
    ``path=None``: the Base64 text travels in the operation's ``bytes`` parameter (S003 §Ad Account Ad
    Images → Creating, ``bytes``: "Base64 UTF-8 string").
    """

    md5: str
    size: int
    filename: str
    path: str | None = None

    @property
    def part(self) -> str:
        """The multipart part name, unique per content (``attached_files`` names it)."""
        return f"img_{self.md5}"

    @property
    def wire_bytes(self) -> int:
        """Bytes this upload adds to a request body: the file, or its Base64 text."""
        return self.size if self.path is not None else 4 * -(-self.size // 3)


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def decode_b64(text: str) -> bytes | None:
    """The bytes of a Base64 text (standard alphabet, whitespace ignored), or ``None`` if it is not Base64."""
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def sniff(head: bytes) -> ImageInfo | None:
    """Format and size from the first bytes of a file (up to :data:`SNIFF_BYTES`); ``None``: not an image."""
    try:
        if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
            width, height = struct.unpack(">II", head[16:24])
            return _info("png", width, height)
        if head[:6] in (b"GIF87a", b"GIF89a"):
            width, height = struct.unpack("<HH", head[6:10])
            return _info("gif", width, height)
        if head.startswith(b"\xff\xd8"):
            return _jpeg(head)
        if head.startswith(b"BM") and len(head) >= 26:
            width, height = struct.unpack("<ii", head[18:26])
            return _info("bmp", width, abs(height))
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            return _webp(head)
    except struct.error:
        return None
    return None


def _info(fmt: str, width: int, height: int) -> ImageInfo | None:
    return ImageInfo(fmt, width, height) if width > 0 and height > 0 else None


def _jpeg(head: bytes) -> ImageInfo | None:
    i = 2
    while i + 9 < len(head):
        if head[i] != 0xFF:
            return None
        marker = head[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length field
            i += 2
            continue
        (length,) = struct.unpack(">H", head[i + 2 : i + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a start-of-frame segment
            height, width = struct.unpack(">HH", head[i + 5 : i + 9])
            return _info("jpeg", width, height)
        i += 2 + length
    return None


def _webp(head: bytes) -> ImageInfo | None:
    chunk = head[12:16]
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", head[26:30])
        return _info("webp", width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L":
        bits = int.from_bytes(head[21:25], "little")
        return _info("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return _info("webp", width, height)
    return None


def image_problem(size: int, head: bytes) -> tuple[str, str] | None:
    """``(rule id, message)`` when content of ``size`` bytes starting with ``head`` cannot be an ad image."""
    if size == 0:
        return "image.empty", "the image file is empty"
    if size > MAX_IMAGE_BYTES:
        return "image.too_large", f"image files must be 8 MB or smaller ({size:,} bytes)"
    if sniff(head) is None:
        return "image.not_image", "not an image file (PNG, JPEG, GIF, BMP or WebP)"
    return None
