"""Ad videos: ``POST act_X/advideos`` by ``file_url``, by ``source`` (a multipart file, plain or a batch's
``attached_files``) or by chunked, resumable upload with ``upload_phase=start|transfer|finish|cancel`` (S003 §Ad
Account Ad Videos → Creating: ``file_size``, ``upload_session_id``, ``start_offset``, ``end_offset``,
``video_file_chunk``; the return type's ``id``, ``upload_session_id``, ``video_id``, ``start_offset``,
``end_offset``, ``success``).

* ``file_url`` (http or https, else 389 "Unable to fetch video file from URL.") or ``source`` (its header must
  be a video container's, else 352) answers ``{"id": VIDEO_ID}``. In a batch, the one file the entry's
  ``attached_files`` names is the ``source`` (or the ``video_file_chunk`` of a transfer) whatever its part name.

* ``start`` (``file_size``) opens a session: ``{video_id, upload_session_id, start_offset: "0", end_offset}``;
  the server decides each chunk (``end_offset`` = start + ``SimulatorConfig.video_chunk_bytes``, capped at the
  size), so a client must send what the answer says, as the seeds describe.
* ``transfer`` (``upload_session_id``, ``start_offset``, ``video_file_chunk`` as a multipart file) appends the
  chunk and answers the next ``{start_offset, end_offset}`` (equal to each other and to the size when done). A
  ``start_offset`` the session does not expect — a chunk sent twice after a lost answer — is answered with the
  offsets the session *does* expect and stores nothing (the seeds leave this open; resuming from the server's
  offsets is how a client recovers, so the simulator makes that possible).
* ``finish`` checks the bytes and creates the video: ``{success: true}``.

Every new video (any form) reads ``status.video_status = processing`` until ``SimulatorConfig.video_processing_s``
(virtual seconds) have passed, then ``ready`` (S003 §FB Video Ads → Step 3: ``GET <VIDEO_ID>?fields=status``);
``SimulatorConfig.video_error_titles`` makes a video whose title contains one of them end in ``error``. A
video's ``source`` field reads a URL of its file [inference: Graph's Video node has it; S003 shows only the
``source`` parameter], which ``file_url`` accepts, so another account can copy it.

Errors (S003 §Ad Account Ad Videos → Error Codes): 382 "too small" (a ``file_size`` under
``min_video_bytes``), 352 "format that we don't support" (the bytes are not MP4/MOV, WebM/MKV or AVI), 6001
"There was a problem uploading your video" (an unknown or finished session, a chunk of the wrong size, finish
before every byte arrived), 100 for a missing parameter.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bulk_engine.protocol.videos import SNIFF_VIDEO_BYTES, sniff_video

from .context import CallContext, check_account_access
from .errors import GraphAPIError, invalid_param
from .render import on_read
from .routing import RouteTable
from .status import iso_time
from .store import AD_ACCOUNT, VIDEO, Node

if TYPE_CHECKING:
    from .graph import GraphCore

__all__ = ["forget_upload_sessions", "refresh_video", "routes", "upload_log"]

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
_LOG: weakref.WeakKeyDictionary[GraphCore, list[dict[str, Any]]] = weakref.WeakKeyDictionary()


def upload_log(core: GraphCore) -> list[dict[str, Any]]:
    """Every ``advideos`` POST that reached a handler, in order: ``{phase, session, start_offset, bytes,
    title}`` (the call log keeps no parameters; tests count transfers and finishes with this)."""
    return _LOG.setdefault(core, [])


def forget_upload_sessions(core: GraphCore) -> None:
    """Drop every open chunked-upload session (they expire on Graph): a later phase answers 6001."""
    _SESSIONS.pop(core, None)


def _error(code: int, message: str) -> GraphAPIError:
    return GraphAPIError(code=code, message=f"(#{code}) {message}")


def _is_video(head: bytes) -> bool:
    return sniff_video(head[:SNIFF_VIDEO_BYTES]) is not None


def _not_supported() -> GraphAPIError:
    return _error(352, "The video file you selected is in a format that we don't support.")


def _file(ctx: CallContext, name: str) -> bytes | None:
    """The multipart file ``name`` — or, in a batch entry, the one file its ``attached_files`` names."""
    files = ctx.request.files
    if name in files:
        return bytes(files[name])
    if len(files) == 1:
        return bytes(next(iter(files.values())))
    return None


@routes.add("POST", AD_ACCOUNT, "advideos")
def create_video(ctx: CallContext, node: Node | None) -> Any:
    check_account_access(node)
    assert node is not None
    phase = ctx.params.str("upload_phase")
    chunk = _file(ctx, "video_file_chunk" if phase == "transfer" else "source")
    upload_log(ctx.core).append(
        {
            "phase": phase or ("url" if ctx.params.has("file_url") else "source"),
            "session": ctx.params.str("upload_session_id"),
            "start_offset": ctx.params.int("start_offset"),
            "bytes": len(chunk) if chunk is not None else 0,
            "title": ctx.params.str("title"),
        }
    )
    if phase is None:  # the file_url / source forms
        return _plain(ctx, node)
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
    chunk = _file(ctx, "video_file_chunk")
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
    if not _is_video(bytes(session.received[:SNIFF_VIDEO_BYTES])):
        session.done = True
        raise _not_supported()
    session.done = True
    title = ctx.params.str("title") or ctx.params.str("name") or session.title
    _add_video(ctx, node, session.video_id, title, size=session.size, phase="chunked")
    return {"success": True}


def _plain(ctx: CallContext, node: Node) -> Any:
    """S003 §Ad Videos (Creating): a video from ``file_url`` or an uploaded ``source`` → ``{"id": …}``."""
    file_url = ctx.params.str("file_url")
    uploaded = _file(ctx, "source")
    if uploaded is None and ctx.params.has("source"):
        uploaded = str(ctx.params.str("source")).encode()
    if file_url is None and uploaded is None:
        raise invalid_param("A video file (source) or file_url is required", "source")
    if file_url is not None and not file_url.startswith(("http://", "https://")):
        raise _error(389, "Unable to fetch video file from URL.")
    if uploaded is not None:
        if len(uploaded) < ctx.config.min_video_bytes:
            raise _error(
                382, "The video file you tried to upload is too small. Please try again with a larger file."
            )
        if not _is_video(uploaded[:SNIFF_VIDEO_BYTES]):
            raise _not_supported()
    video_id = ctx.store.new_id()
    title = ctx.params.str("title") or ctx.params.str("name") or ""
    size = len(uploaded) if uploaded is not None else None
    _add_video(
        ctx, node, video_id, title, size=size, file_url=file_url, phase="source" if uploaded else "url"
    )
    return {"id": video_id}


def _add_video(
    ctx: CallContext,
    node: Node,
    video_id: str,
    title: str,
    *,
    size: int | None,
    phase: str,
    file_url: str | None = None,
) -> None:
    delay = ctx.config.video_processing_s
    failing = any(word in title for word in ctx.config.video_error_titles)
    ctx.store.add(
        VIDEO,
        {
            "title": title,
            "name": ctx.params.str("name") or title,
            "description": ctx.params.str("description") or "",
            "source": f"https://video.example/{video_id}.mp4",
            "picture": f"https://scontent.example/{video_id}.jpg",
            "status": {"video_status": "processing", "processing_progress": 0}
            if delay > 0 or failing
            else {"video_status": "ready", "processing_progress": 100},
            "ready_at": ctx.now + delay,
            "account_id": node.id.removeprefix("act_"),
            "created_time": iso_time(ctx.now),
            "uploaded_as": phase,  # how it came (not a Graph field: never rendered)
            "failing": failing,
            **({"file_url": file_url} if file_url else {}),
            **({"file_size": size} if size is not None else {}),
        },
        now=ctx.now,
        account_id=node.id,
        node_id=video_id,
    )


@on_read(VIDEO)
def refresh_video(ctx: CallContext, video: Node) -> None:
    """A processing video becomes ``ready`` (or ``error``, for a failing one) once its processing time has
    passed on the virtual clock; ``ready_time`` remembers when (tests compare creatives with it)."""
    ready_at = video.data.get("ready_at")
    if isinstance(ready_at, int | float) and ctx.now >= ready_at:
        if video.data.get("failing"):
            video.data["status"] = {"video_status": "error", "processing_progress": 100}
        else:
            video.data["status"] = {"video_status": "ready", "processing_progress": 100}
        video.data["ready_time"] = ready_at
        del video.data["ready_at"]
