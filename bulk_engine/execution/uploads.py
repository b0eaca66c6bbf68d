"""The files of a batch, read when it is sent: image uploads travel as multipart parts, never in plans.

An upload operation names its content by MD5 and path (:class:`~bulk_engine.protocol.images.Upload`); the
bytes are read here, right before the batch request that carries them (S003 §Batch Requests → Upload Binary
Data: "add all the binary items as multipart/mime attachments ... reference its binary items using the
attached_files property"). A file that cannot be read, or whose content no longer has the MD5 the job was
validated (and planned, and journaled) with, is refused before anything is sent: uploading other bytes
under that plan would make the journal lie about which image a creative uses.

Videos (S003 §Ad Videos → Creating) use the same :class:`~bulk_engine.protocol.images.Upload`: a ``source``
upload sends the whole file; a chunked ``upload_phase=transfer`` sends ``video_file_chunk``, the ``size``
bytes of the file from the operation's ``start_offset`` — the upload's MD5 is that chunk's, checked the same
way. Either is read here, when its batch is sent, never planned as bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import anyio.to_thread

from bulk_engine.planning.graph import Operation
from bulk_engine.protocol.images import SNIFF_BYTES, Upload, md5_hex, sniff
from bulk_engine.protocol.videos import SNIFF_VIDEO_BYTES, sniff_video

from .transport import FilePart

__all__ = ["read_parts"]


async def read_parts(ops: Iterable[Operation]) -> tuple[dict[str, FilePart], dict[str, str]]:
    """``(parts by name, reasons by op id)``: the multipart parts of ``ops``' uploads, and why an upload
    cannot be sent (unreadable, or changed since the job was validated)."""
    parts: dict[str, FilePart] = {}
    problems: dict[str, str] = {}
    for op in ops:
        upload = op.upload
        if upload is None or upload.path is None or upload.part in parts:
            continue
        what = "video" if _is_video(op) else "image"
        offset = _chunk_offset(op)
        try:
            content = await anyio.to_thread.run_sync(_read, upload, offset)
        except OSError as err:
            problems[op.op_id] = (
                f"cannot read {what} file {upload.path}: {err.strerror or type(err).__name__}"
            )
            continue
        if md5_hex(content) != upload.md5:
            piece = "" if offset is None else f" (bytes {offset}-{offset + upload.size})"
            problems[op.op_id] = (
                f"{what} file {upload.path}{piece} changed since the job was validated (MD5 {upload.md5} "
                "expected): not uploaded; run the job again to upload the new content"
            )
            continue
        parts[upload.part] = FilePart(upload.filename, content, _content_type(content, what, offset))
    return parts, problems


def _is_video(op: Operation) -> bool:
    last = op.path_parts[-1]
    return isinstance(last, str) and last.rstrip("/").endswith("/advideos")


def _chunk_offset(op: Operation) -> int | None:
    """Where a chunked transfer's bytes start (``None``: the upload sends the whole file)."""
    if not _is_video(op) or op.params.get("upload_phase") != "transfer":
        return None
    try:
        return max(0, int(op.params.get("start_offset") or 0))
    except (TypeError, ValueError):
        return 0


def _read(upload: Upload, offset: int | None) -> bytes:
    assert upload.path is not None
    if offset is None:
        return Path(upload.path).read_bytes()
    with open(upload.path, "rb") as stream:
        stream.seek(offset)
        return stream.read(upload.size)


def _content_type(content: bytes, what: str, offset: int | None) -> str:
    if what == "image":
        info = sniff(content[:SNIFF_BYTES])
        return f"image/{info.format}" if info is not None else "application/octet-stream"
    container = sniff_video(content[:SNIFF_VIDEO_BYTES]) if offset is None else None
    return f"video/{container}" if container is not None else "application/octet-stream"
