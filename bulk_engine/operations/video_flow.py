"""Videos uploaded, reconciled and processed before the creatives that use them (issue 15, S003 §Ad Videos).

Each distinct video of a task (by content MD5, or by URL) becomes one id of the account's video library, in
rounds: every round is one engine job holding at most one operation per unfinished video, and its answers
decide the next round. What is sent (S003 §Ad Videos → Creating, §FB Video Ads):

* a URL: ``POST act_X/advideos`` with ``file_url`` (Graph fetches it);
* a file up to ``chunked_over`` bytes: ``source``, a multipart part inside an ordinary batch (``attached_files``);
* a larger file: ``upload_phase=start`` (``file_size``) → ``transfer`` (``upload_session_id``, ``start_offset``,
  ``video_file_chunk``: exactly the bytes between the ``start_offset`` and ``end_offset`` the server answered)
  → ``finish``.

Exactly-once: every video carries an idempotency key in its ``name``/``title`` (``"teaser.mp4 [be:…]"``,
from the job id, the account and the content), and the account's library is searched for it
(``GET act_X/advideos?filtering=[{name CONTAIN key}]``) before anything that could create a video is sent —
first, and again before each re-send after an unknown outcome (a lost answer, a 5xx after the server
committed a ``finish``). Found → that video is used, nothing is uploaded again. A transfer creates nothing and
is simply sent again after an unknown outcome; a session the server no longer knows (6001) is restarted.

Resume: op ids name their place in the flow (``<task>/vid:<md5>/s1/t4194304.0``, ``…/s1/finish.find.0``), so a
resumed run takes the same decisions from the journal (its reads and the transfers that succeeded are
answered from it: the session id and the offset reached survive) and continues where the killed one stopped;
a path that diverges gets fresh ids, whose lookups ask the server again.

Processing: a video is used once ``GET <VIDEO_ID>?fields=status`` reads ``status.video_status = ready``
(§FB Video Ads → Step 3); ``error``/``expired`` fail its creatives with that status. Between polls (backoff
:data:`FIRST_POLL_S` doubling to :data:`MAX_POLL_S`) nothing is in flight: the wait is logged with its reason
and ETA and shown as the engine shows its own (a ``Waiting`` event to its observer), and an engine that offers
``offer_wait`` (the Airflow operator) may break off so the task defers.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

import anyio.to_thread

from bulk_engine.execution.clock import Clock, SystemClock
from bulk_engine.execution.events import Waiting
from bulk_engine.persistence.keys import KeyScheme
from bulk_engine.planning.graph import Operation, OpKind
from bulk_engine.protocol.errors import GraphError
from bulk_engine.protocol.images import Upload, decode_b64, md5_hex
from bulk_engine.protocol.videos import video_status
from bulk_engine.results import Outcome, OutcomeState
from bulk_engine.wording import duration

from .base import EngineLike, TaskEnv
from .task import TaskReport
from .videos import LocalVideo, creative_video_keys, resolve_videos

__all__ = [
    "CHUNKED_OVER_BYTES",
    "DRY_RUN_VIDEO",
    "TaskVideos",
    "VideoItem",
    "VideoResult",
    "WaitHost",
    "engine_clock",
    "run_videos",
    "upload_task_videos",
]

logger = logging.getLogger("bulk_engine.videos")

CHUNKED_OVER_BYTES: Final = 8 * 1024 * 1024
"""Files larger than this go by chunked upload: S003 gives no size, and a ``source`` part travels inside an
ordinary batch request, which should stay well below the engine's ``max_upload_bytes`` (32 MB)."""
FIRST_POLL_S: Final = 5.0
MAX_POLL_S: Final = 300.0
MAX_PROCESSING_S: Final = 6 * 3600.0
MAX_ATTEMPTS: Final = 3  # sends (or chunked sessions) of one video after unknown outcomes
MAX_RESENDS: Final = 4  # of one chunk or one finish
DEFINITE_CODES: Final = frozenset({351, 352, 382, 389, 6000, 222, 190, 200, 10})
"""Refusals that prove the video cannot be uploaded as given (S003 §Ad Videos → Error Codes; 190/200/10:
token and permissions). Any other failure of a create may hide a video that was made: it is looked up."""
_LOOKUP_LIMIT: Final = 25


class WaitHost(Protocol):
    """An engine that may take over a long wait (the Airflow operator defers instead of sleeping)."""

    async def offer_wait(self, account_id: str, seconds: float, reason: str) -> None: ...


def engine_clock(engine: Any) -> Clock:
    """The clock the engine paces with (a wrapper's inner engine's), so waits follow a scaled clock."""
    for candidate in (engine, getattr(engine, "engine", None)):
        clock = getattr(candidate, "clock", None)
        if clock is not None and callable(getattr(clock, "sleep", None)):
            found: Clock = clock
            return found
    return SystemClock()


@dataclass(frozen=True)
class VideoResult:
    """A video's end: its library id (``ready``), or why it has none (the Graph error when there is one)."""

    video_id: str | None
    error: GraphError | None = None
    reason: str | None = None
    reused: bool = False


@dataclass
class VideoItem:
    """One distinct video of a task in one account and where its upload stands."""

    ident: str  # the content's MD5, or "u" + the URL's MD5
    keys: list[str]
    name: str
    account_id: str
    base: str  # op-id prefix: <task>/vid:<ident>
    key: str  # idempotency key carried in name/title
    local: LocalVideo | None = None
    url: str | None = None
    chunked: bool = False
    step: str = "find"  # find | send | transfer | finish | poll | done
    attempt: int = 1
    resends: int = 0
    session: str | None = None
    video_id: str | None = None
    offsets: tuple[int, int] = (0, 0)
    transfers: int = 0  # chunks sent in this session (an op id's place; bounds a server that never ends)
    session_closed: bool = False  # a finish was refused as if the session had ended: restart unless found
    polls: int = 0
    due: float = 0.0
    waited: float = 0.0
    found: bool = False
    result: VideoResult | None = None
    last_error: GraphError | None = field(default=None, repr=False)
    # ops that failed on the way (an unknown outcome, a chunk sent again): completed once the video is made
    recovered: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.name[:200]} [{self.key}]"

    @property
    def path(self) -> str:
        assert self.local is not None and self.local.path is not None
        return self.local.path

    # --- the next operation -----------------------------------------------------------------------------
    def _op(self, suffix: str, method: Any, path: str, params: dict[str, Any], **kw: Any) -> Operation:
        kind = OpKind.READ if method == "GET" else OpKind.CREATE_OTHER
        return Operation(
            op_id=f"{self.base}/{suffix}",
            method=method,
            path=path,
            params=params,
            account_id=self.account_id,
            kind=kind,
            **kw,
        )

    def _find(self, suffix: str) -> Operation:
        flt = [{"field": "name", "operator": "CONTAIN", "value": self.key}]
        params = {"fields": "id,name,title,status", "filtering": flt, "limit": _LOOKUP_LIMIT}
        return self._op(suffix, "GET", f"{self.account_id}/advideos", params)

    async def next_op(self, now: float) -> Operation | None:
        """The operation this round sends for the video (``None``: it waits, or it is done)."""
        edge = f"{self.account_id}/advideos"
        named = {"name": self.title, "title": self.title}
        if self.step == "find":
            return self._find("find" if self.attempt == 1 else f"send{self.attempt}.find")
        if self.step == "send" and self.url is not None:
            return self._op(f"url.{self.attempt}", "POST", edge, {"file_url": self.url, **named})
        if self.step == "send" and not self.chunked:
            assert self.local is not None
            upload = Upload(self.local.md5, self.local.size, self.name, self.path)
            return self._op(f"src.{self.attempt}", "POST", edge, named, upload=upload)
        session = f"s{self.attempt}"
        if self.step == "send":
            assert self.local is not None
            params = {"upload_phase": "start", "file_size": self.local.size, **named}
            return self._op(f"{session}/start", "POST", edge, params)
        if self.step == "transfer":
            start, end = self.offsets
            md5 = await anyio.to_thread.run_sync(_range_md5, self.path, start, end - start)
            upload = Upload(md5, end - start, self.name, self.path)
            params = {"upload_phase": "transfer", "upload_session_id": self.session, "start_offset": start}
            return self._op(f"{session}/t{self.transfers}@{start}", "POST", edge, params, upload=upload)
        if self.step == "finish.find":
            return self._find(f"{session}/finish.find.{self.resends}")
        if self.step == "finish":
            params = {"upload_phase": "finish", "upload_session_id": self.session, **named}
            return self._op(f"{session}/finish.{self.resends}", "POST", edge, params)
        if self.step == "poll" and now >= self.due:
            return self._op(
                f"v{self.video_id}/status.{self.polls}", "GET", str(self.video_id), {"fields": "status"}
            )
        return None

    # --- the answer -------------------------------------------------------------------------------------
    def advance(self, outcome: Outcome | None, now: float, fresh: bool) -> None:
        """Move on from ``outcome`` (``None``: the run was stopped before it answered)."""
        if outcome is None:
            self._end(
                None, "the run was stopped before the video was uploaded: run the job again to finish it"
            )
            return
        ok = outcome.state is OutcomeState.SUCCEEDED
        answer: Any = outcome.result if isinstance(outcome.result, Mapping) else {}
        step = self.step
        if not ok:
            self.last_error = outcome.error or self.last_error
            self.recovered.append(outcome.op_id)
        if step in ("find", "finish.find"):
            self._after_find(ok, answer, outcome)
        elif step == "send":
            self._after_send(ok, answer, outcome)
        elif step == "transfer":
            self._after_transfer(ok, answer, outcome)
        elif step == "finish":
            self._after_finish(ok, answer, outcome)
        elif step == "poll":
            self._after_poll(ok, answer, outcome, now, fresh)

    def _after_find(self, ok: bool, answer: Mapping[str, Any], outcome: Outcome) -> None:
        if not ok:
            self._end(outcome.error, f"cannot look the video up by its key {self.key}: {outcome.reason}")
            return
        found = [
            item
            for item in answer.get("data") or ()
            if isinstance(item, Mapping)
            and item.get("id")
            and any(f"[{self.key}]" in str(item.get(k) or "") for k in ("name", "title"))
        ]
        if found:
            oldest = min(found, key=lambda item: (len(str(item["id"])), str(item["id"])))
            if len(found) > 1:
                logger.warning(
                    "video %s: %d videos carry key %s; using the oldest", self.keys, len(found), self.key
                )
            self.found = self.step == "find" and self.attempt == 1
            self._poll(str(oldest["id"]))
        elif self.step == "find":
            self.step = "send"
        elif self.session_closed:  # no video, and the session cannot be finished: upload it again
            self._retry_session(outcome, "the upload session was closed without making the video")
        else:  # nothing was made by the finish whose answer was lost: send it again
            self.step = "finish"

    def _after_send(self, ok: bool, answer: Mapping[str, Any], outcome: Outcome) -> None:
        if ok and not self.chunked and answer.get("id"):
            self._poll(str(answer["id"]))
        elif ok and self.chunked and answer.get("upload_session_id") and answer.get("video_id"):
            self.session = str(answer["upload_session_id"])
            self.video_id = str(answer["video_id"])
            self.resends = 0
            if not self._take_offsets(answer):
                self._retry_session(outcome, "the start answer has no usable offsets")
        elif ok and self.chunked:
            self._retry_session(outcome, "the start answer has no upload_session_id")
        elif self._definite(outcome):
            self._end(outcome.error, outcome.reason)
        elif self.chunked:  # a start creates nothing: start another session
            self._retry_session(outcome, outcome.reason)
        else:
            self._retry_send(outcome)

    def _after_transfer(self, ok: bool, answer: Mapping[str, Any], outcome: Outcome) -> None:
        self.transfers += 1
        assert self.local is not None
        if self.transfers > 8 + 4 * self.local.size // max(1, self.offsets[1] - self.offsets[0]):
            self._retry_session(
                outcome, f"the server asked for {self.transfers} chunks of a {self.local.size}-byte file"
            )
            return
        if ok:
            self.resends = 0
            if not self._take_offsets(answer):
                self._retry_session(outcome, "the transfer answer has no usable offsets")
            return
        code = outcome.error.code if outcome.error is not None else None
        if code == 6001 or self.resends + 1 >= MAX_RESENDS:  # the session is gone, or keeps failing
            self._retry_session(outcome, outcome.reason)
        elif self._definite(outcome):
            self._end(outcome.error, outcome.reason)
        else:  # a transfer creates nothing: send the same chunk again
            self.resends += 1

    def _after_finish(self, ok: bool, answer: Mapping[str, Any], outcome: Outcome) -> None:
        if ok and answer.get("success") is not False:
            assert self.video_id is not None
            self._poll(self.video_id)
        elif self._definite(outcome):
            self._end(outcome.error, outcome.reason)
        else:  # a finish that landed closes the session: look for the video before anything else
            self.resends += 1
            closed = outcome.error is not None and outcome.error.code == 6001
            self.session_closed = closed or self.resends >= MAX_RESENDS
            self.step = "finish.find"

    def _after_poll(
        self, ok: bool, answer: Mapping[str, Any], outcome: Outcome, now: float, fresh: bool
    ) -> None:
        self.polls += 1
        if not ok:
            if self.polls >= MAX_RESENDS:
                self._end(outcome.error, f"cannot read the status of video {self.video_id}: {outcome.reason}")
            return
        status = video_status(answer)
        if status == "ready":
            self.step = "done"
            self.result = VideoResult(self.video_id, reused=self.found)
        elif status in ("error", "expired"):
            detail = answer.get("status")
            self._end(
                None, f"video {self.video_id} was not processed: status.video_status={status} ({detail})"
            )
        elif self.waited >= MAX_PROCESSING_S:
            self._end(None, f"video {self.video_id} still processing after {duration(self.waited)}")
        else:  # processing (or a status Graph does not document): look again later
            delay = min(MAX_POLL_S, FIRST_POLL_S * 2 ** max(0, self.polls - 1)) if fresh else 0.0
            self.due = now + delay
            self.waited += delay

    # --- transitions ------------------------------------------------------------------------------------
    def _poll(self, video_id: str) -> None:
        self.video_id = video_id
        self.step = "poll"
        self.due = 0.0

    def _take_offsets(self, answer: Mapping[str, Any]) -> bool:
        try:
            start, end = int(answer["start_offset"]), int(answer["end_offset"])
        except (KeyError, TypeError, ValueError):
            return False
        assert self.local is not None
        size = self.local.size
        if start == end == size:
            self.step = "finish"
            self.resends = 0
            return True
        if not 0 <= start < end <= size:
            return False
        self.offsets = (start, end)
        self.step = "transfer"
        return True

    def _retry_session(self, outcome: Outcome, reason: str | None) -> None:
        if self.attempt >= MAX_ATTEMPTS:
            self._end(
                outcome.error or self.last_error, f"chunked upload failed {self.attempt} times: {reason}"
            )
            return
        logger.info("video %s: session %d ended (%s); starting a new one", self.keys, self.attempt, reason)
        self.attempt += 1
        self.step, self.session, self.resends, self.session_closed = "send", None, 0, False
        self.transfers = 0

    def _retry_send(self, outcome: Outcome) -> None:
        if self.attempt >= MAX_ATTEMPTS:
            self._end(outcome.error, f"upload failed {self.attempt} times: {outcome.reason}")
            return
        self.attempt += 1
        self.step = "find"  # it may have been made all the same: look before sending again

    def _definite(self, outcome: Outcome) -> bool:
        return not outcome.unknown and outcome.error is not None and outcome.error.code in DEFINITE_CODES

    def _end(self, error: GraphError | None, reason: str | None) -> None:
        self.step = "done"
        self.result = VideoResult(None, error, reason or "the video could not be uploaded")


def _range_md5(path: str, start: int, length: int) -> str:
    with open(path, "rb") as stream:
        stream.seek(start)
        return md5_hex(stream.read(length))


def b64_file(video: LocalVideo) -> LocalVideo:
    """A Base64 video as a local file (content-addressed, in the temp folder): multipart sends files."""
    if video.b64 is None:
        return video
    folder = Path(tempfile.gettempdir()) / "bulk-engine-videos"
    folder.mkdir(mode=0o700, exist_ok=True)
    target = folder / f"{video.md5}.bin"
    if not target.is_file():
        data = decode_b64(video.b64) or b""
        partial = target.with_suffix(".part")
        partial.write_bytes(data)
        partial.chmod(0o600)
        partial.replace(target)
    return LocalVideo(video.md5, video.size, video.name, path=str(target))


def plan_items(
    env: TaskEnv,
    local: Mapping[str, LocalVideo],
    urls: Mapping[str, str],
    names: Mapping[str, str],
    chunked_over: int,
) -> list[VideoItem]:
    """One item per distinct content (several keys, one upload) and per distinct URL."""
    scheme = KeyScheme(env.ctx.job_id or env.ctx.fingerprint or "bulk-engine")
    items: dict[str, VideoItem] = {}
    for key, video in sorted(local.items()):
        ident = video.md5
        if ident in items:
            items[ident].keys.append(key)
            continue
        video = b64_file(video)
        items[ident] = VideoItem(
            ident,
            [key],
            video.name,
            env.account_id,
            env.op_id(f"vid:{ident}"),
            scheme.key(f"video/{env.account_id}/{ident}"),
            local=video,
            chunked=video.size > chunked_over,
        )
    for key, url in sorted(urls.items()):
        ident = "u" + md5_hex(url.encode())
        if ident in items:
            items[ident].keys.append(key)
            continue
        name = names.get(key) or url.rsplit("/", 1)[-1][:100] or key
        base = env.op_id(f"vid:{ident}")
        items[ident] = VideoItem(
            ident, [key], name, env.account_id, base, scheme.key(f"video/{env.account_id}/{ident}"), url=url
        )
    return list(items.values())


async def run_videos(
    engine: EngineLike, env: TaskEnv, items: Sequence[VideoItem], report: TaskReport
) -> dict[str, VideoResult]:
    """Upload, reconcile and wait for every item (rounds of engine jobs in ``report``); results by job-file key."""
    clock = engine_clock(engine)
    offer: Callable[..., Any] | None = getattr(engine, "offer_wait", None)
    while True:
        open_items = [item for item in items if item.step != "done"]
        if not open_items:
            break
        now = clock.monotonic()
        ops: list[tuple[VideoItem, Operation]] = []
        for item in open_items:
            op = await item.next_op(now)
            if op is not None:
                ops.append((item, op))
        if ops:
            outcomes = await report.run(engine, [op for _, op in ops], env.ctx)
            replayed = report.results[-1].from_journal if report.results else 0
            fresh = replayed < len(ops)
            now = clock.monotonic()
            for item, op in ops:
                item.advance(outcomes.get(op.op_id), now, fresh)
            continue
        due = min(item.due for item in open_items)
        delay = max(0.0, due - now)
        waiting = [key for item in open_items for key in item.keys]
        reason = (
            f"{len(waiting)} video(s) still processing on Graph (status.video_status=processing): "
            f"{', '.join(waiting[:5])}{'…' if len(waiting) > 5 else ''}"
        )
        wall = delay / max(clock.scale, 1e-9)
        eta = time.strftime("%H:%M:%S UTC", time.gmtime(time.time() + wall))
        logger.info("%s; next check in %s (at %s)", reason, duration(wall), eta)
        _announce(engine, Waiting("account", env.account_id, None, reason, None, delay))
        if offer is not None and delay > 0:
            await offer(env.account_id, delay, reason)
        await clock.sleep(delay)
    for item in items:
        _complete_recovered(item, report)
    return {key: item.result or VideoResult(None) for item in items for key in item.keys}


def _announce(engine: Any, waiting: Waiting) -> None:
    """The wait as the engine's own waits are shown: a ``Waiting`` event to its observer (the CLI's live view
    and JSON log, the Airflow progress line), besides the log line."""
    for candidate in (engine, getattr(engine, "engine", None)):
        observer = getattr(candidate, "observer", None)
        if callable(observer):
            try:
                observer(waiting)
            except Exception:  # an observer must never break a job
                logger.exception("engine observer failed on Waiting")
            return


def _complete_recovered(item: VideoItem, report: TaskReport) -> None:
    """Ops of a video that is in the library now, which failed on the way (their outcome was unknown, or a
    chunk had to be sent again): ``succeeded``, saying which step did their work — not failures of the job."""
    video_id = item.result.video_id if item.result is not None else None
    if video_id is None:
        return
    for op_id in item.recovered:
        report.complete(
            op_id,
            {"video_id": video_id},
            f"its outcome was unknown or it was refused on the way; video {video_id} carrying key {item.key} "
            "was then made (or found by that key) by the steps after it, nothing twice",
        )


def counts(items: Sequence[VideoItem], results: Mapping[str, VideoResult]) -> dict[str, int]:
    """The report's ``details.videos``: keys, distinct uploads, reused (found by key), deduplicated, failed."""
    done = [item for item in items if item.result is not None and item.result.video_id]
    return {
        "keys": sum(len(item.keys) for item in items),
        "uploaded": sum(1 for item in done if not item.found),
        "reused": sum(1 for item in done if item.found),
        "deduplicated": sum(len(item.keys) - 1 for item in items),
        "chunked": sum(1 for item in items if item.chunked),
        "by_url": sum(1 for item in items if item.url is not None),
        "failed": sum(1 for r in results.values() if r.video_id is None),
        "processing_wait_s": math.ceil(max((item.waited for item in items), default=0.0)),
    }


DRY_RUN_VIDEO: Final = (
    "dry run: Graph has no validate_only for video uploads; checked locally (file, size, format) only"
)


@dataclass
class TaskVideos:
    """A create task's videos once the flow ran: the id (or the failure) of each key, and the rounds'
    engine jobs, folded into the task's report at the end (after its own jobs, whose numbering they must not
    shift: a resumed run must find its creates in the same engine jobs)."""

    items: list[VideoItem]
    results: dict[str, VideoResult]
    report: TaskReport
    dry_run: bool = False

    def resolve(self, params: dict[str, Any], op_id: str, account_id: str) -> dict[str, Any] | Outcome:
        """A creative's params with each ``video: <key>`` → ``video_id``, or the outcome of the creative when
        a video it uses has no id (failed with the video's error; skipped in a dry run)."""
        for _, key in creative_video_keys(params):
            result = self.results.get(str(key))
            if result is None or result.video_id is None:
                why = (result.reason if result is not None else None) or "not uploaded"
                state = OutcomeState.SKIPPED if self.dry_run else OutcomeState.FAILED
                error = result.error if result is not None else None
                kind = OpKind.CREATE_CREATIVE.value
                return Outcome(
                    op_id, state, account_id, kind, error=error, reason=f"its video {key!r} has no id: {why}"
                )
        return resolve_videos(params, lambda key: self.results[key].video_id)

    def fold_into(self, report: TaskReport) -> None:
        report.outcomes[:0] = self.report.outcomes
        report.results[:0] = self.report.results
        report.elapsed_s += self.report.elapsed_s
        report.details["videos"] = counts(self.items, self.results)


def _sub_report(env: TaskEnv) -> TaskReport:
    report = TaskReport.for_env(env, "create")
    if report.engine_job_prefix is not None:
        report.engine_job_prefix += "/videos"
    if report.engine_fingerprint is not None:
        report.engine_fingerprint += "/videos"
    return report


async def upload_task_videos(
    engine: EngineLike,
    env: TaskEnv,
    local: Mapping[str, LocalVideo],
    urls: Mapping[str, str],
    names: Mapping[str, str],
    chunked_over: int = CHUNKED_OVER_BYTES,
) -> TaskVideos:
    """Plan the task's videos and run the flow (a dry run sends nothing: every upload is skipped)."""
    items = plan_items(env, local, urls, names, chunked_over)
    report = _sub_report(env)
    if env.ctx.validate_only:
        for item in items:
            kind = OpKind.CREATE_OTHER.value
            report.add(Outcome(item.base, OutcomeState.SKIPPED, env.account_id, kind, reason=DRY_RUN_VIDEO))
            item.step, item.result = "done", VideoResult(None, reason=DRY_RUN_VIDEO)
        results = {key: VideoResult(None, reason=DRY_RUN_VIDEO) for item in items for key in item.keys}
        return TaskVideos(items, results, report, dry_run=True)
    return TaskVideos(items, await run_videos(engine, env, items, report), report)
