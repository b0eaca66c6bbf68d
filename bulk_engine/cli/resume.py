"""``bulk-engine resume JOB_ID --journal PATH``: finish an interrupted job from its journal alone.

Why: the journal holds every planned operation, so the engine jobs it knows can be finished without the job
file, answering completed work from the journal; later tasks of the job file are finished by running the same
``bulk-engine run … --journal`` again (the command says so).

A task stopped while its videos were uploading (issue 15) is refused, naming ``run``: the video flow
(:mod:`bulk_engine.operations.video_flow`) plans one round at a time from the answers and the video files —
which chunk the server asks for next, whether a lost ``finish`` made the video, when processing ends — and
the creatives and ads that use the videos are planned only once they are ready, so none of that is in the
journal yet. Finishing the journaled round alone would exit 0 with the job's creatives never made. ``run``
with the same journal replays every round from it (the upload session and the offset reached survive) and
carries on. Once the flow had finished, resume replays it and reports its recovered ops as the run did
(:func:`complete_recovered_videos`).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from . import common
from .common import (
    EXIT_USAGE,
    TOKEN_ENV,
    UsageError,
    close_journal,
    engine_config,
    open_journal,
    report_paths,
    run_session,
    tuning_flags,
)
from .options import add_output_options

__all__ = [
    "complete_recovered_videos",
    "configure_resume",
    "resume_hint",
    "run_resume",
    "unfinished_video_tasks",
]

_ROUND = re.compile(r"(?P<task>.+)/videos/\d+")  # an engine job of a task's video flow (TaskVideos)
_VIDEO_OP = re.compile(r"(?P<base>.+/vid:u?[0-9a-f]{32})/.+")  # an op of one video's flow (VideoItem.base)
_POLL = re.compile(r"/v(?P<id>[^/]+)/status\.\d+")  # its status poll (VideoItem.next_op)


def configure_resume(parser: argparse.ArgumentParser) -> None:
    parser.description = f"Finish an interrupted job from its journal without repeating completed work (token from ${TOKEN_ENV})."
    parser.add_argument("job_id", metavar="JOB_ID", help="the job id printed by the interrupted run")
    parser.add_argument(
        "--journal",
        required=True,
        metavar="PATH|URL",
        help="the run's journal: a file or a postgresql:// URL",
    )
    add_output_options(parser)


def resume_hint(job_id: str, journal: str, args: argparse.Namespace) -> str:
    import shlex

    parts = [
        "bulk-engine",
        "resume",
        job_id,
        "--journal",
        str(journal),
        "--graph-url",
        args.graph_url,
    ]
    return " ".join(shlex.quote(p) for p in parts + tuning_flags(args))


def unfinished_video_tasks(job_id: str, targets: list[str]) -> list[str]:
    """Tasks of ``job_id`` whose video flow may not have finished: no engine job of the task started after
    its last video round (``targets`` in start order, as :func:`engine_job_ids` gives them)."""
    last_round: dict[str, int] = {}
    last_other: dict[str, int] = {}
    for index, target in enumerate(targets):
        rest = target[len(job_id) + 1 :] if target.startswith(f"{job_id}/") else ""
        found = _ROUND.fullmatch(rest)
        if found is not None:
            last_round[found["task"]] = index
        elif "/" in rest:
            last_other[rest.rsplit("/", 1)[0]] = index
    return [task for task, at in last_round.items() if last_other.get(task, -1) < at]


def complete_recovered_videos(result: Any) -> Any:
    """``result`` with each failed op of a video that the flow then made ``succeeded`` — what the run's report
    said (``video_flow._complete_recovered``; the journal keeps the op's own failure): a chunk whose outcome
    was unknown, sent again under the next op id; a ``finish`` whose answer was lost, the video then found by
    its key. A video counts as made when a status poll of its flow read ``ready``."""
    import dataclasses

    from bulk_engine.protocol.videos import video_status
    from bulk_engine.results import OutcomeState

    ready: dict[str, str] = {}
    for outcome in result.outcomes:
        found, poll = _VIDEO_OP.fullmatch(outcome.op_id), _POLL.search(outcome.op_id)
        if (
            found
            and poll
            and outcome.state is OutcomeState.SUCCEEDED
            and video_status(outcome.result) == "ready"
        ):
            ready[found["base"]] = poll["id"]
    outcomes = list(result.outcomes)
    for i, outcome in enumerate(outcomes):
        found = _VIDEO_OP.fullmatch(outcome.op_id)
        video_id = ready.get(found["base"]) if found else None
        if video_id is not None and outcome.state is OutcomeState.FAILED:
            outcomes[i] = dataclasses.replace(
                outcome,
                state=OutcomeState.SUCCEEDED,
                result={"video_id": video_id},
                error=None,
                reason=f"its outcome was unknown or it was refused on the way; video {video_id} was then made "
                "(or found by its key) by the steps after it, nothing twice",
            )
    if outcomes == list(result.outcomes):
        return result
    counts = {state.value: 0 for state in OutcomeState}
    for outcome in outcomes:
        counts[outcome.state.value] += 1
    return dataclasses.replace(result, outcomes=tuple(outcomes), counts=counts)


def _refuse_videos(job_id: str, tasks: list[str], journal: str) -> int:
    names = ", ".join(repr(t) for t in tasks)
    print(
        f"bulk-engine resume: job {job_id!r} was stopped while task(s) {names} uploaded videos; their next "
        "steps (the chunks the server asks for, the wait for processing, the creatives and ads that use the "
        "videos) are planned from the job file and its video files, which the journal does not hold. Run the "
        f"same command again: `bulk-engine run JOB_FILE --journal {journal}` — every round already done is "
        "answered from the journal (the upload session and the offset reached survive), nothing is sent "
        "twice. Nothing was sent by this command.",
        file=sys.stderr,
    )
    return EXIT_USAGE


def run_resume(args: argparse.Namespace) -> int:
    journal_class = common.journal_class(resume=True)
    if journal_class is None:
        print(
            "bulk-engine resume: not available yet — this version has no journal "
            "(bulk_engine.persistence.SqliteJournal and BulkEngine.resume). Run the job again with "
            "`bulk-engine run JOB_FILE`; check the last report first: operations that succeeded would be "
            "sent again.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    from bulk_engine.persistence import is_journal_url

    if not is_journal_url(args.journal) and not Path(args.journal).exists():
        raise UsageError(f"--journal: {args.journal} does not exist")
    config = engine_config(args)

    from bulk_engine.reporting import RunSession
    from bulk_engine.reporting.journaled import engine_job_ids, expected_kinds
    from bulk_engine.results import JobResult

    journal = open_journal(args.journal)
    try:
        targets = engine_job_ids(journal, args.job_id)
        if not targets:
            known = ", ".join(repr(j.split("/")[0]) for j in journal.job_ids()[:10]) or "none"
            raise UsageError(f"journal {journal.location} has no job {args.job_id!r} (jobs in it: {known})")
        videos = unfinished_video_tasks(args.job_id, targets)
        if videos:
            return _refuse_videos(args.job_id, videos, journal.location)
        session = RunSession(
            config=config,
            job_id=args.job_id,
            title=f"bulk-engine resume {args.job_id} → {config.graph_url}",
            log_format=args.log_format,
            time_scale=args.time_scale,
            expected=expected_kinds(journal, targets),
            reports=report_paths(args),
            meta={
                "graph_url": config.graph_url,
                "api_version": config.api_version,
                "journal": journal.location,
            },
            resume_hint=resume_hint(args.job_id, journal.location, args),
            engine_kwargs={"journal": journal},
        )

        async def work(engine: Any) -> Any:
            results = [await engine.resume(target) for target in targets]
            return complete_recovered_videos(JobResult.combine(args.job_id, results))

        code = run_session(session, work)
    finally:
        close_journal(journal)
    if len(targets) > 1 or targets[0] != args.job_id:
        print(
            f"bulk-engine resume: finished the {len(targets)} engine job(s) of {args.job_id} the journal holds; "
            "tasks of the job file that had not started yet are not in the journal: run the same "
            "`bulk-engine run JOB_FILE --journal PATH` command again to finish them (completed work is "
            "answered from the journal, not sent again).",
            file=sys.stderr,
        )
    return code
