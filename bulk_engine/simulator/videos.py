"""Ad videos by chunked, resumable upload: ``POST act_X/advideos`` with ``upload_phase=start|transfer|finish|
cancel`` (S003 §Ad Account Ad Videos → Creating: ``file_size``, ``upload_session_id``, ``start_offset``,
``end_offset``, ``video_file_chunk``; the return type's ``upload_session_id``, ``video_id``, ``start_offset``,
``end_offset``, ``success``). Without ``upload_phase`` the edge keeps its ``file_url`` / ``source`` forms
(``objects.create_video``).

* ``start`` (``file_size``) opens a session: ``{video_id, upload_session_id, start_offset: "0", end_offset}``;
  the server decides each chunk (``end_offset`` = start + ``SimulatorConfig.video_chunk_bytes``, capped at the
  size), so a client must send what the answer says, as the seeds describe.
* ``transfer`` (``upload_session_id``, ``start_offset``, ``video_file_chunk`` as a multipart file) appends the
  chunk and answers the next ``{start_offset, end_offset}`` (equal to each other and to the size when done). A
  ``start_offset`` the session does not expect — a chunk sent twice after a lost answer — is answered with the
  offsets the session *does* expect and stores nothing (the seeds leave this open; resuming from the server's
  offsets is how a client recovers, so the simulator makes that possible).
* ``finish`` checks the bytes and creates the video: ``{success: true}``; it then reads
  ``status.video_status = processing`` until ``SimulatorConfig.video_processing_s`` (virtual seconds) have
  passed, then ``ready``.

Errors (S003 §Ad Account Ad Videos → Error Codes): 382 "too small" (a ``file_size`` under
``min_video_bytes``), 352 "format that we don't support" (the bytes are not MP4/MOV, WebM/MKV or AVI), 6001
"There was a problem uploading your video" (an unknown or finished session, a chunk of the wrong size, finish
before every byte arrived), 100 for a missing parameter.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .context import CallContext, check_account_access
from .errors import GraphAPIError, invalid_param
from .routing import RouteTable
from .status import iso_time
from .store import AD_ACCOUNT, VIDEO, Node

if TYPE_CHECKING:
    from .graph import GraphCore

__all__ = ["refresh_video", "routes"]

routes = RouteTable()


@dataclass
class _Session:
    account_id: str
    video_id: str
    size: int
    title: str
    received: bytearray = field(default_factory=bytearray)
    done: bool = False


_SESSIONS: weakref.WeakKeyDictionary[GraphCore, dict[str, _Session]] = weakref.WeakKeyDictionary()


def _error(code: int, message: str) -> GraphAPIError:
    return GraphAPIError(code=code, message=f"(#{code}) {message}")


def _is_video(head: bytes) -> bool:
    return (
        head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free")  # MP4 / QuickTime
        or head.startswith(b"\x1a\x45\xdf\xa3")  # WebM / Matroska (EBML)
        or (head[:4] == b"RIFF" and head[8:12] == b"AVI ")
    )


@routes.add("POST", AD_ACCOUNT, "advideos")
def create_video(ctx: CallContext, node: Node | None) -> Any:
    check_account_access(node)
    assert node is not None
    phase = ctx.params.str("upload_phase")
    if phase is None:
        from .objects import create_video as plain  # file_url / source (objects imports this package)

        return plain(ctx, node)
    sessions = _SESSIONS.setdefault(ctx.core, {})
    if phase == "start":
        return _start(ctx, node, sessions)
    session_id = ctx.params.str("upload_session_id")
    if session_id is None:
        raise invalid_param("Param upload_session_id is required", "upload_session_id")
    session = sessions.get(session_id)
    if session is None or session.done or session.account_id != node.id:
        raise _error(6001, "There was a problem uploading your video. Please try again.")
    if phase == "transfer":
        return _transfer(ctx, session)
    if phase == "finish":
        return _finish(ctx, node, session)
    if phase == "cancel":
        session.done = True
        return {"success": True}
    raise invalid_param("Param upload_phase must be one of {start, transfer, finish, cancel}", "upload_phase")


def _offsets(ctx: CallContext, session: _Session) -> dict[str, str]:
    start = len(session.received)
    end = min(session.size, start + ctx.config.video_chunk_bytes)
    return {"start_offset": str(start), "end_offset": str(end)}


def _start(ctx: CallContext, node: Node, sessions: dict[str, _Session]) -> Any:
    size = ctx.params.int("file_size")
    if size is None or size <= 0:
        raise invalid_param("Param file_size must be a positive integer", "file_size")
    if size < ctx.config.min_video_bytes:
        raise _error(
            382, "The video file you tried to upload is too small. Please try again with a larger file."
        )
    video_id = ctx.store.new_id()
    session_id = ctx.store.new_id()
    title = ctx.params.str("title") or ctx.params.str("name") or ""
    sessions[session_id] = _Session(node.id, video_id, size, title)
    return {"video_id": video_id, "upload_session_id": session_id, **_offsets(ctx, sessions[session_id])}


def _transfer(ctx: CallContext, session: _Session) -> Any:
    start = ctx.params.int("start_offset")
    chunk = ctx.request.files.get("video_file_chunk")
    if chunk is None and ctx.params.has("video_file_chunk"):
        chunk = str(ctx.params.str("video_file_chunk")).encode()
    if start is None or chunk is None:
        raise invalid_param("Params start_offset and video_file_chunk are required", "video_file_chunk")
    expected = _offsets(ctx, session)
    if start != len(session.received):  # resend of a chunk already stored, or a gap: say where to go on
        return expected
    if len(chunk) != int(expected["end_offset"]) - start:
        raise _error(6001, "There was a problem uploading your video. Please try again.")
    session.received += bytes(chunk)
    return _offsets(ctx, session)


def _finish(ctx: CallContext, node: Node, session: _Session) -> Any:
    if len(session.received) != session.size:
        raise _error(6001, "There was a problem uploading your video. Please try again.")
    if not _is_video(bytes(session.received[:16])):
        session.done = True
        raise _error(352, "The video file you selected is in a format that we don't support.")
    session.done = True
    title = ctx.params.str("title") or ctx.params.str("name") or session.title
    delay = ctx.config.video_processing_s
    ctx.store.add(
        VIDEO,
        {
            "title": title,
            "name": title,
            "description": ctx.params.str("description") or "",
            "source": f"https://video.example/{session.video_id}.mp4",
            "picture": f"https://scontent.example/{session.video_id}.jpg",
            "status": {"video_status": "processing", "processing_progress": 0}
            if delay > 0
            else {"video_status": "ready", "processing_progress": 100},
            "ready_at": ctx.now + delay,
            "account_id": node.id.removeprefix("act_"),
            "created_time": iso_time(ctx.now),
        },
        now=ctx.now,
        account_id=node.id,
        node_id=session.video_id,
    )
    return {"success": True}


def refresh_video(ctx: CallContext, video: Node) -> None:
    """A processing video becomes ``ready`` once its processing time has passed (on the virtual clock)."""
    ready_at = video.data.get("ready_at")
    if isinstance(ready_at, int | float) and ctx.now >= ready_at:
        video.data["status"] = {"video_status": "ready", "processing_progress": 100}
        del video.data["ready_at"]
