"""The video upload state machine on hostile or unlucky answers (operations/video_flow.py), driven without a
server: each step's operation is built, then answered with a chosen outcome."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio

from bulk_engine.operations.video_flow import MAX_ATTEMPTS, VideoItem
from bulk_engine.operations.videos import LocalVideo
from bulk_engine.protocol.errors import GraphError
from bulk_engine.results import Outcome, OutcomeState

SIZE = 10_000


def item(tmp_path: Path) -> VideoItem:
    path = tmp_path / "v.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(SIZE - 12))
    local = LocalVideo("m" * 32, SIZE, "v.mp4", path=str(path))
    return VideoItem(
        "m" * 32, ["v"], "v.mp4", "act_1", "t/vid:m", "be:aaaaaaaa.bbbbbbbbbbbb", local=local, chunked=True
    )


def answer(video: VideoItem, result: Any = None, *, error: int | None = None, unknown: bool = False) -> str:
    """Build the item's next op, answer it, and return the op id."""
    op = anyio.run(video.next_op, 0.0)
    assert op is not None
    state = OutcomeState.SUCCEEDED if error is None and not unknown else OutcomeState.FAILED
    graph_error = GraphError(code=error, message=f"(#{error})") if error is not None else None
    outcome = Outcome(
        op.op_id, state, "act_1", op.kind.value, result=result, error=graph_error, unknown=unknown
    )
    video.advance(outcome, 0.0, fresh=True)
    return op.op_id


def started(video: VideoItem, session: str = "S1") -> None:
    assert answer(video, {"data": []}).endswith("/find")
    answer(video, {"video_id": "V1", "upload_session_id": session, "start_offset": "0", "end_offset": "4000"})


def test_a_server_that_never_advances_the_offsets_ends_the_session_and_finally_the_video(
    tmp_path: Path,
) -> None:
    video = item(tmp_path)
    started(video)
    sessions = 1
    for _ in range(500):
        if video.step == "done":
            break
        if video.step == "send":
            sessions += 1
            answer(
                video,
                {
                    "video_id": "V",
                    "upload_session_id": f"S{sessions}",
                    "start_offset": "0",
                    "end_offset": "4000",
                },
            )
            continue
        answer(video, {"start_offset": "0", "end_offset": "4000"})  # "send the first chunk again", for ever
    assert video.step == "done" and video.result is not None and video.result.video_id is None
    assert sessions == MAX_ATTEMPTS and "chunks" in (video.result.reason or "")


def test_junk_offsets_restart_the_session_instead_of_sending_bytes_outside_the_file(tmp_path: Path) -> None:
    video = item(tmp_path)
    started(video)
    answer(video, {"start_offset": "4000", "end_offset": str(SIZE * 3)})  # past the end of the file
    assert video.step == "send" and video.attempt == 2


def test_a_lost_finish_is_looked_up_before_it_is_sent_again_and_a_closed_session_starts_over(
    tmp_path: Path,
) -> None:
    video = item(tmp_path)
    started(video)
    answer(video, {"start_offset": "4000", "end_offset": "8000"})
    answer(video, {"start_offset": "8000", "end_offset": str(SIZE)})
    answer(video, {"start_offset": str(SIZE), "end_offset": str(SIZE)})
    assert video.step == "finish"
    assert answer(video, unknown=True).endswith("/s1/finish.0")  # a 5xx: the video may exist
    assert answer(video, {"data": []}).endswith("/s1/finish.find.1")  # looked up first: not there
    assert answer(video, error=6001).endswith("/s1/finish.1")  # the session is closed
    assert answer(video, {"data": []}).endswith("/s1/finish.find.2")
    assert video.step == "send" and video.attempt == 2  # no video and no session: upload it again


def test_a_lost_finish_found_by_its_key_is_used_and_a_refused_format_fails_with_its_error(
    tmp_path: Path,
) -> None:
    video = item(tmp_path)
    started(video)
    video.step = "finish"
    answer(video, unknown=True)
    found = {"data": [{"id": "V1", "name": f"v.mp4 [{video.key}]"}, {"id": "X", "name": "someone else's"}]}
    answer(video, found)
    assert video.step == "poll" and video.video_id == "V1"
    other = item(tmp_path)
    started(other)
    other.step = "finish"
    answer(other, error=352)
    assert other.result is not None and other.result.error is not None and other.result.error.code == 352
