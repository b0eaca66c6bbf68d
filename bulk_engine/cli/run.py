"""``bulk-engine run JOB_FILE``: run a job file against Graph (or a simulator) with a live view and reports.

Why its own module: the run is the CLI's main path — load and plan (:mod:`.validate`), a local or server dry
run, the journal that makes it resumable (with the command that re-runs it), the session, and the undo file
left next to the JSON report (:mod:`.undo_file`).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from . import common
from .common import (
    APP_SECRET_ENV,
    EXIT_OK,
    EXIT_USAGE,
    TOKEN_ENV,
    UsageError,
    close_journal,
    engine_config,
    open_journal,
    report_paths,
    run_session,
    say,
    scrubber_of,
    tuning_flags,
)
from .options import account, add_output_options
from .undo_file import write_undo_file
from .validate import load, print_plan

__all__ = [
    "configure_run",
    "dry_run",
    "dry_run_mode",
    "keep_undo_file",
    "rerun_hint",
    "run_run",
]

DRY_RUN_MODES = ("local", "server")


def dry_run_mode(text: str) -> str:
    if text not in DRY_RUN_MODES:
        raise argparse.ArgumentTypeError(
            f"expected local or server, got {text!r} (write --dry-run=local or --dry-run=server, or put "
            "JOB_FILE before --dry-run)"
        )
    return text


def configure_run(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        f"Run a job file (YAML or JSON). The access token is read from ${TOKEN_ENV} (never a flag), the app "
        f"secret from ${APP_SECRET_ENV} when set. Exit codes: 0 all succeeded, 1 some failed or were skipped "
        "(or the Graph URL cannot be reached: nothing sent), 2 bad input (nothing sent), 3 interrupted."
    )
    parser.add_argument("job_file", type=Path, metavar="JOB_FILE", help="the job: YAML or JSON")
    parser.add_argument("--account", type=account, metavar="act_…", help="default ad account of the job")
    parser.add_argument(
        "--journal",
        metavar="PATH|URL",
        help="journal that makes the run resumable: an SQLite file, or postgresql://user@host/db?schema=NAME "
        "(password from PGPASSWORD or ~/.pgpass)",
    )
    parser.add_argument(
        "--dry-run",
        nargs="?",
        const="local",
        type=dry_run_mode,
        metavar="local|server",
        help="local (the default of a bare --dry-run): validate and print the plan (operations, batches), "
        "send nothing; server: run the job against --graph-url with Graph's validate_only on every write "
        "that has it (creates, updates, the Advantage+ migration) and the reads only for copies and "
        "messages, reporting what Graph would refuse; nothing is created (needs the token; no --journal)",
    )
    parser.add_argument(
        "--idempotency-key",
        choices=("name", "adlabels", "off"),
        help="where created objects carry their idempotency key: name (a ' [be:…]' name suffix, the "
        "default), adlabels (two ad labels, names untouched) or off (no key: a create whose outcome is "
        "unknown then fails instead of being looked up); a journaled job keeps the scheme it started with",
    )
    parser.add_argument(
        "--backend",
        choices=("sync", "async", "auto"),
        help="how creates are sent: sync (Graph batches of 50, the default), async (Meta's request sets of up "
        "to 1,000, polled until done) or auto (async for large create/copy jobs where it saves requests; "
        "the report says which and why); see docs/scale.md",
    )
    add_output_options(parser)


def run_run(args: argparse.Namespace) -> int:
    loaded = load(args)
    if loaded is None:
        return EXIT_USAGE
    spec, ctx, plan = loaded
    if args.dry_run == "local":
        return dry_run(args, plan)
    server_dry_run = args.dry_run == "server"
    if server_dry_run:
        if args.journal is not None:
            raise UsageError(
                "--dry-run=server cannot use --journal: a journal would remember validate_only answers as "
                "done work, and the real run would then skip it"
            )
        ctx = dataclasses.replace(ctx, validate_only=True)
    config = engine_config(args)
    engine_kwargs: dict[str, Any] = {}
    resume_hint = None
    if args.journal is not None:
        journal_class = common.journal_class(resume=False)
        if journal_class is None:
            raise UsageError(
                "--journal: this version has no journal yet (bulk_engine.persistence.SqliteJournal); "
                "run without --journal (the run is then not resumable)"
            )
        engine_kwargs["journal"] = open_journal(args.journal)
        resume_hint = rerun_hint(args, engine_kwargs["journal"].location)

    from bulk_engine.operations import run_job
    from bulk_engine.reporting import RunSession
    from bulk_engine.reporting.lean import LeanEngine

    dry = " (dry run on the server: validate_only, nothing is created)" if server_dry_run else ""
    session = RunSession(
        config=config,
        job_id=plan.job_id,
        title=f"bulk-engine run {plan.job_id} → {config.graph_url}{dry}",
        log_format=args.log_format,
        time_scale=args.time_scale,
        expected=dict(plan.kinds),
        reports=report_paths(args),
        meta={
            "source": str(args.job_file),
            "fingerprint": plan.fingerprint,
            "graph_url": config.graph_url,
            "api_version": config.api_version,
            "journal": engine_kwargs["journal"].location if args.journal else None,
            **({"dry_run": "server"} if server_dry_run else {}),
        },
        resume_hint=resume_hint,
        engine_kwargs=engine_kwargs,
    )

    async def work(engine: Any) -> Any:
        # LeanEngine: the outcomes no flow reads back stay in the run's spill file, not in memory
        return await run_job(LeanEngine(engine), spec, ctx, job_id=plan.job_id)

    try:
        code = run_session(session, work)
    finally:
        close_journal(engine_kwargs.get("journal"))
    keep_undo_file(args, session)
    return code


def keep_undo_file(args: argparse.Namespace, session: Any) -> None:
    """The undo file next to the JSON report of a run that changed something (``bulk-engine undo``)."""
    try:
        written = write_undo_file(getattr(session, "report", None), args.report)
    except OSError as err:
        say(args, f"bulk-engine: cannot write the undo file: {err}", err=True)
        return
    if written is not None and args.log_format != "json":
        say(args, f"Undo file: {written} (bulk-engine undo {written})")


def rerun_hint(args: argparse.Namespace, journal: str) -> str:
    """Re-running the same command with the same journal answers completed work from it."""
    import shlex

    parts = [
        "bulk-engine",
        "run",
        str(args.job_file),
        "--journal",
        journal,  # the journal's location: a URL's password is never printed
        "--graph-url",
        args.graph_url,
    ]
    if args.account:
        parts += ["--account", args.account]
    if args.idempotency_key is not None:
        parts += ["--idempotency-key", args.idempotency_key]
    return " ".join(shlex.quote(p) for p in parts + tuning_flags(args))


def dry_run(args: argparse.Namespace, plan: Any) -> int:
    from bulk_engine.reporting import write_reports

    print_plan(args, plan, f"{args.job_file}: valid — dry run, nothing is sent")
    report = {
        "report_version": 1,
        "job_id": plan.job_id,
        "status": "dry_run",
        "dry_run": "local",
        "exit_code": EXIT_OK,
        "source": str(args.job_file),
        "fingerprint": plan.fingerprint,
        "graph_url": args.graph_url,
        "counts": {"succeeded": 0, "failed": 0, "skipped": 0},
        "http_requests": 0,
        "graph_calls": 0,
        "throttle_events": 0,
        "retries": 0,
        "elapsed_s": 0.0,
        "operations": [],
        "plan": plan.to_dict(),
    }
    write_reports(report, report_paths(args), scrubber_of(args))
    return EXIT_OK
