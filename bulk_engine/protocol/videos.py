"""Ad videos as Graph sees them: what counts as a video file, its limits, the codes Graph answers, and the
``advideos`` answers the engine reads.

Why one module: the job-file rules (refuse a bad file before any call), the simulator (answer a bad upload
with the documented error) and the engine (upload, reconcile, wait for processing) must agree on the same
facts (S003 §Ad Videos → Creating; §FB Video Ads → Video Specifications, Step 3):

* **A video is a file whose container header says so** (:func:`sniff_video`): MP4 / QuickTime / 3GP
  (an ISO-BMFF box — ``ftyp``, ``moov``, ``mdat``, ``wide``, ``free``, ``skip`` — at offset 4), WebM /
  Matroska (the EBML magic), AVI (``RIFF…AVI ``), FLV, ASF/WMV and MPEG program streams. Graph's
  answer for anything else is 352 "The video file you selected is in a format that we don't support."
* **Size**: "Up to 10 GB recommended" (§Video Specifications → Maximum File Size), so a larger file is
  refused locally; an empty file is 382 "too small".
* **Status**: ``GET <VIDEO_ID>?fields=status`` answers ``status.video_status`` — ``ready``, ``processing``,
  ``expired`` or ``error`` (§FB Video Ads → Step 3); only ``ready`` may be used by a creative.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

__all__ = [
    "MAX_VIDEO_BYTES",
    "SNIFF_VIDEO_BYTES",
    "VIDEO_CODES",
    "VideoStatus",
    "sniff_video",
    "video_problem",
    "video_status",
]

MAX_VIDEO_BYTES: Final = 10 * 1024**3
"""S003 §FB Video Ads → Video Specifications: "Maximum File Size: Up to 10 GB recommended"."""

SNIFF_VIDEO_BYTES: Final = 16
"""How much of a file :func:`sniff_video` reads."""

VIDEO_CODES: Final[Mapping[str, int]] = {
    "video.source": 100,
    "video.url": 389,  # "Unable to fetch video file from URL." (http and https only: §FB Video Ads, file_url)
    "video.missing": 100,
    "video.unreadable": 100,
    "video.bytes_b64": 100,
    "video.empty": 382,  # "The video file you tried to upload is too small."
    "video.too_large": 351,  # "There was a problem with your video file. Please try again with another file"
    "video.not_video": 352,  # "The video file you selected is in a format that we don't support."
}
"""The Graph code each local video rule mirrors (S003 §Ad Videos → Creating, Error Codes)."""

_ISO_BOXES: Final = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")

VideoStatus = Literal["ready", "processing", "expired", "error", "unknown"]


def sniff_video(head: bytes) -> str | None:
    """The container named by the first :data:`SNIFF_VIDEO_BYTES` bytes, or ``None``: not a video."""
    if head[4:8] in _ISO_BOXES:
        return "mov" if head[8:10] == b"qt" else "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head.startswith(b"FLV\x01"):
        return "flv"
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return "wmv"
    if head.startswith(b"\x00\x00\x01\xba"):
        return "mpeg"
    return None


def video_problem(size: int, head: bytes) -> tuple[str, str] | None:
    """``(rule id, message)`` when content of ``size`` bytes starting with ``head`` cannot be an ad video."""
    if size == 0:
        return "video.empty", "the video file is empty"
    if size > MAX_VIDEO_BYTES:
        return "video.too_large", f"video files must be 10 GB or smaller ({size:,} bytes)"
    if sniff_video(head) is None:
        return (
            "video.not_video",
            "not a video file (MP4, MOV, WebM, MKV, AVI, FLV, WMV or MPEG): Graph answers 352 "
            '"The video file you selected is in a format that we don\'t support"',
        )
    return None


def video_status(answer: Any) -> VideoStatus:
    """``status.video_status`` of a ``GET <VIDEO_ID>?fields=status`` answer (``unknown`` when it has none)."""
    status = answer.get("status") if isinstance(answer, Mapping) else None
    value = status.get("video_status") if isinstance(status, Mapping) else None
    for known in ("ready", "processing", "expired", "error"):
        if value == known:
            return known
    return "unknown"
