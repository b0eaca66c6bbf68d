"""The files of a batch, read when it is sent: image uploads travel as multipart parts, never in plans.

An upload operation names its content by MD5 and path (:class:`~bulk_engine.protocol.images.Upload`); the
bytes are read here, right before the batch request that carries them (S003 §Batch Requests → Upload Binary
Data: "add all the binary items as multipart/mime attachments ... reference its binary items using the
attached_files property"). A file that cannot be read, or whose content no longer has the MD5 the job was
validated (and planned, and journaled) with, is refused before anything is sent: uploading other bytes
under that plan would make the journal lie about which image a creative uses.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import anyio.to_thread

from bulk_engine.planning.graph import Operation
from bulk_engine.protocol.images import SNIFF_BYTES, md5_hex, sniff

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
        try:
            content = await anyio.to_thread.run_sync(Path(upload.path).read_bytes)
        except OSError as err:
            problems[op.op_id] = f"cannot read image file {upload.path}: {err.strerror or type(err).__name__}"
            continue
        if md5_hex(content) != upload.md5:
            problems[op.op_id] = (
                f"image file {upload.path} changed since the job was validated (MD5 {upload.md5} expected): "
                "not uploaded; run the job again to upload the new content"
            )
            continue
        info = sniff(content[:SNIFF_BYTES])
        content_type = f"image/{info.format}" if info is not None else "application/octet-stream"
        parts[upload.part] = FilePart(upload.filename, content, content_type)
    return parts, problems
