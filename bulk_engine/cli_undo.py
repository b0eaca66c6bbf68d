"""``bulk-engine undo SOURCE``: build the inverse of a job and run it like ``bulk-engine run``.

Why a command of its own: taking a bulk change back must not need a hand-written job. SOURCE is the run's
JSON report, the undo file written next to it (``<report>.undo.json``, :func:`write_undo_file`, after every
``run`` with a ``--report`` that changed something), or the run's journal with ``--job JOB_ID`` (works for an
interrupted run too). Update and status jobs get their fields and statuses restored; what create and copy
jobs made is paused (``--created pause``, the default) or deleted (``--created delete``). The inverse job
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

from . import cli

__all__ = ["configure_undo", "run_undo", "undo_file_path", "write_undo_file"]


def undo_file_path(report: Path) -> Path:
    """``out/job.json`` → ``out/job.undo.json`` (:func:`~bulk_engine.operations.undo.undo_file_name`)."""
    from .operations.undo import undo_file_name

    return Path(undo_file_name(str(report)))


def write_undo_file(report: Any, path: Path | None) -> Path | None:
    """Write the undo file of a finished run next to its JSON report (nothing when the run changed or made
    nothing undoable, or was a dry run); the path written. The report's operations (the objects created or
    copied) are read back from the JSON report, streamed; the statuses they were made with come from the job
    file, which is the run's right now."""
    from .operations.undo import undo_document
    from .reporting.files import AtomicFile
    from .reporting.report import ReportFormatError, read_report

    if path is None or not isinstance(report, dict):
        return None
    operations: Any = ()
    if any(t.get("type") in ("create", "copy", "operations") for t in report.get("tasks") or ()):
        try:
            operations = read_report(path).operations()
        except ReportFormatError:
            operations = ()  # no JSON report to read: the objects made are not known
    doc = undo_document(report, operations=operations)
    if not any(task.get("objects") or task.get("created") for task in doc["tasks"]):
        return None
    target = undo_file_path(path)
    with AtomicFile(target) as out:
        out.write(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    return target


def configure_undo(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Undo a job: restore the fields and statuses an update or status job changed, pause or delete what a "
        "create or copy job made, skipping (and listing) objects someone changed since. SOURCE is the job's "
        "JSON report, its undo file (<report>.undo.json) or "
        f"its journal with --job. Token from ${cli.TOKEN_ENV}. Exit codes as for run."
    )
    parser.add_argument("source", metavar="REPORT_OR_JOURNAL", help="a run report / undo file, or a journal")
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
        "its children follow): pause (default) or delete (status DELETED, which cannot be reversed)",
    )
    parser.add_argument("--account", type=cli._account, metavar="act_…", help="default ad account")
    cli._add_output_options(parser)


def _document(args: argparse.Namespace) -> tuple[dict[str, Any], Path]:
    """The undo document of SOURCE and the folder the inverse job goes in."""
    from .errors import JournalError
    from .operations.undo import undo_document, undo_from_journal
    from .persistence import is_journal_url, open_journal

    source = str(args.source)
    if not is_journal_url(source) and not Path(source).is_file():
        raise cli.UsageError(f"{source}: no such file")
    if is_journal_url(source) or _is_sqlite(Path(source)):
        if not args.job:
            raise cli.UsageError("a journal needs --job JOB_ID: the job to undo")
        try:
            journal = open_journal(source)
        except (JournalError, OSError) as err:
            raise cli.UsageError(f"{source}: {err}") from None
        try:
            doc = undo_from_journal(journal, args.job)
        finally:
            cli._close(journal)
        if args.journal is None and not args.dry_run:
            args.journal = source  # the undo is journaled where the job was
        folder = (Path.cwd() if is_journal_url(source) else Path(source).parent) / f"undo-{args.job}"
        return doc, folder
    try:
        data = json.loads(Path(source).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise cli.UsageError(f"{source}: not a report or undo file ({err})") from None
    if not isinstance(data, dict) or not ("undo_version" in data or "tasks" in data):
        raise cli.UsageError(f"{source}: not a report or undo file (no tasks)")
    doc = data if "undo_version" in data else undo_document(data)
    return doc, Path(source).with_name(Path(source).stem.removesuffix(".undo") + ".undo-job")


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def run_undo(args: argparse.Namespace) -> int:
    from .operations.undo import write_undo_job

    doc, folder = _document(args)
    job_file, notes = write_undo_job(doc, folder, created=args.created)
    for note in notes:
        where = " ".join(f"{k} {note[k]}" for k in ("task", "id", "field") if note.get(k))
        cli._say(args, f"bulk-engine undo: not undone{' (' + where + ')' if where else ''}: {note['reason']}")
    job = json.loads(job_file.read_text(encoding="utf-8"))
    if not job["tasks"]:
        cli._say(args, f"bulk-engine undo: nothing to undo in {args.source}")
        return cli.EXIT_OK
    cli._say(args, f"bulk-engine undo: the inverse job is {job_file}")
    run_args = argparse.Namespace(**vars(args))
    run_args.job_file = job_file
    run_args.dry_run = "server" if args.dry_run else None
    if args.dry_run:
        run_args.journal = None
    run_args.idempotency_key = None
    return cli._run_run(run_args)
