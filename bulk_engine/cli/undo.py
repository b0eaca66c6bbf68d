"""``bulk-engine undo SOURCE``: build the inverse of a job and run it like ``bulk-engine run``.

Why a command of its own: taking a bulk change back must not need a hand-written job. SOURCE is the run's
JSON report, the undo file written next to it (``<report>.undo.json``, :func:`write_undo_file`, after every
``run`` with a ``--report`` that changed something), or the run's journal with ``--job JOB_ID`` (works for an
interrupted run too). Update and status jobs get their fields and statuses restored; what create and copy
jobs made is paused (``--created pause``, the default) or deleted (``--created delete``); a migration is
rolled back (a ``migrate`` task in ``mode: rollback``: copies paused or deleted as ``--created`` says, the
sources its switch-over paused re-activated), from its journal when known — so a run killed before its
report was written can be rolled back — else from its report. The inverse job
(:mod:`bulk_engine.operations.undo`) is written into a folder next to
SOURCE (``<source>.undo-job/``: ``undo.json`` and its CSVs, so it can be inspected, re-run or resumed) and run
through the same session as ``run``: read before write, objects someone changed since skipped and listed
(never overwritten), journaled under ``undo-<job id>`` (re-running the command resumes it), and undoable in
turn. ``--dry-run`` reads and reports the diff without writing (Graph's ``validate_only``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .common import EXIT_OK, TOKEN_ENV, UsageError, close_journal, say
from .options import account, add_output_options
from .run import run_run

__all__ = ["configure_undo", "run_undo"]


def configure_undo(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Undo a job: restore the fields and statuses an update or status job changed, pause or delete what a "
        "create or copy job made, roll a migration back, skipping (and listing) objects someone changed since. "
        "SOURCE is the job's "
        "JSON report, its undo file (<report>.undo.json) or "
        f"its journal with --job. Token from ${TOKEN_ENV}. Exit codes as for run."
    )
    parser.add_argument(
        "source",
        metavar="REPORT_OR_JOURNAL",
        help="a run report / undo file, or a journal",
    )
    parser.add_argument("--job", metavar="JOB_ID", help="with a journal: the job to undo")
    parser.add_argument(
        "--journal",
        metavar="PATH|URL",
        help="journal of the undo run itself (default: the SOURCE journal, when SOURCE is one)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="read the objects and report the diff (old → new) without writing (Graph validate_only)",
    )
    parser.add_argument(
        "--created",
        choices=("pause", "delete"),
        default="pause",
        help="what becomes of the campaigns, ad sets and ads a create or copy job made (the top of each tree: "
        "its children follow), and of a migration's Advantage+ copies: pause (default) or delete (status "
        "DELETED, which cannot be reversed)",
    )
    parser.add_argument("--account", type=account, metavar="act_…", help="default ad account")
    add_output_options(parser)


def _document(args: argparse.Namespace) -> tuple[dict[str, Any], Path]:
    """The undo document of SOURCE and the folder the inverse job goes in."""
    from bulk_engine.errors import JournalError
    from bulk_engine.operations.undo import undo_document, undo_from_journal
    from bulk_engine.persistence import is_journal_url, open_journal

    source = str(args.source)
    if not is_journal_url(source) and not Path(source).is_file():
        raise UsageError(f"{source}: no such file")
    if is_journal_url(source) or _is_sqlite(Path(source)):
        if not args.job:
            raise UsageError("a journal needs --job JOB_ID: the job to undo")
        try:
            journal = open_journal(source)
        except (JournalError, OSError) as err:
            raise UsageError(f"{source}: {err}") from None
        # a migration's rollback reads this journal: the undo run's own, or (dry run: no journal) the file
        target = "" if not args.dry_run else (None if is_journal_url(source) else str(Path(source).resolve()))
        try:
            doc = undo_from_journal(journal, args.job, target=target)
        finally:
            close_journal(journal)
        if args.journal is None and not args.dry_run:
            args.journal = source  # the undo is journaled where the job was
        folder = (Path.cwd() if is_journal_url(source) else Path(source).parent) / f"undo-{args.job}"
        return doc, folder
    try:
        data = json.loads(Path(source).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UsageError(f"{source}: not a report or undo file ({err})") from None
    if not isinstance(data, dict) or not ("undo_version" in data or "tasks" in data):
        raise UsageError(f"{source}: not a report or undo file (no tasks)")
    doc = data if "undo_version" in data else undo_document(data, report_path=source)
    return doc, Path(source).with_name(Path(source).stem.removesuffix(".undo") + ".undo-job")


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def run_undo(args: argparse.Namespace) -> int:
    from bulk_engine.operations.undo import write_undo_job

    doc, folder = _document(args)
    job_file, notes = write_undo_job(doc, folder, created=args.created, rollback=True)
    for note in notes:
        where = " ".join(f"{k} {note[k]}" for k in ("task", "id", "field") if note.get(k))
        say(
            args,
            f"bulk-engine undo: not undone{' (' + where + ')' if where else ''}: {note['reason']}",
        )
    job = json.loads(job_file.read_text(encoding="utf-8"))
    if not job["tasks"]:
        say(args, f"bulk-engine undo: nothing to undo in {args.source}")
        return EXIT_OK
    say(args, f"bulk-engine undo: the inverse job is {job_file}")
    run_args = argparse.Namespace(**vars(args))
    run_args.job_file = job_file
    run_args.dry_run = "server" if args.dry_run else None
    if args.dry_run:
        run_args.journal = None
    run_args.idempotency_key = None
    return run_run(run_args)
