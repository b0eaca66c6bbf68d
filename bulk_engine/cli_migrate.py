"""``bulk-engine migrate-plan --account act_X -o plan.csv``: the Advantage+ migration preflight as a plan file.

Why a command: migrating a whole account starts with a decision per campaign that a person reviews (S003 §Migrate
Advantage+ Shopping Campaigns and Advantage+ App Campaigns into Advantage+ Campaigns → Limitations). The
command runs a read-only ``migrate`` task (``preflight_only``) through the same session as ``run`` (live view,
reports, exit codes 0/1/2/3) and writes one row per campaign (:data:`~.operations.migrate_plan.PLAN_COLUMNS`):
id, name, kind (ASC / AAC / ordinary), eligibility and reason, the proposed action (``copy``, ``in_place``,
``skip``, ``manual`` with the documented manual path), status, budget and ad count. Edit ``action`` and run a
job with ``{type: migrate, plan: plan.csv}``. Nothing is written to Graph.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from . import cli

__all__ = ["configure_migrate_plan", "run_migrate_plan"]


def configure_migrate_plan(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Read every campaign of an ad account, classify it for the Advantage+ migration and write the plan CSV "
        f"to review (nothing is written to Graph). Token from ${cli.TOKEN_ENV}. Exit codes: 0 plan written, "
        "1 some reads failed (the plan lists what was read), 2 bad input, 3 interrupted."
    )
    parser.add_argument("--account", type=cli._account, required=True, metavar="act_…", help="the ad account")
    parser.add_argument(
        "--output", "-o", type=Path, required=True, metavar="PATH", help="the plan CSV to write"
    )
    parser.add_argument(
        "--include-archived", action="store_true", help="also list ARCHIVED campaigns (they can be copied)"
    )
    parser.add_argument(
        "--mode",
        choices=("copy", "in_place"),
        default="copy",
        help="the action proposed for eligible ASC campaigns (default: copy = copy and migrate)",
    )
    parser.add_argument(
        "--max-ads", type=cli._positive_int, metavar="N", help="the ad limit of a migration (default: 150)"
    )
    cli._add_output_options(parser)


def run_migrate_plan(args: argparse.Namespace) -> int:
    from .operations import CompileContext, JobFileError, parse_job, run_job
    from .operations.migrate_plan import write_plan
    from .reporting import RunSession
    from .reporting.lean import LeanEngine

    task: dict[str, Any] = {
        "type": "migrate",
        "key": "plan",
        "preflight_only": True,
        "include_archived": args.include_archived,
        "mode": args.mode,
    }
    if args.max_ads is not None:
        task["max_ads"] = args.max_ads
    try:
        spec = parse_job({"account_id": args.account, "tasks": [task]}, source="bulk-engine migrate-plan")
    except JobFileError as err:
        cli._say(args, f"bulk-engine migrate-plan: {err}", err=True)
        return cli.EXIT_USAGE
    config = cli._engine_config(args)
    job_id = spec.job_id or spec.fingerprint()[:16]
    session = RunSession(
        config=config,
        job_id=job_id,
        title=f"bulk-engine migrate-plan {args.account} → {args.output}",
        log_format=args.log_format,
        time_scale=args.time_scale,
        expected={},
        reports=cli._report_paths(args),
        meta={
            "source": "bulk-engine migrate-plan",
            "graph_url": config.graph_url,
            "api_version": config.api_version,
        },
        resume_hint=None,
        engine_kwargs={},
    )
    done: list[Any] = []

    async def work(engine: Any) -> Any:
        report = await run_job(LeanEngine(engine), spec, CompileContext(), job_id=job_id)
        done.append(report)
        return report

    code = cli._run_session(session, work)
    if done:
        details = done[0].tasks[0].details
        records = [r if isinstance(r, dict) else r.to_dict() for r in details.get("campaigns") or []]
        rows = write_plan(args.output, records)
        classes = ", ".join(f"{n} {k}" for k, n in sorted((details.get("classes") or {}).items()))
        if args.log_format == "json":
            cli._emit_json(
                args, "plan_written", rows=rows, output=str(args.output), classes=details.get("classes")
            )
        else:
            cli._say(
                args,
                f"wrote {rows} campaign(s) to {args.output} ({classes or 'none'}); edit the action column",
            )
    return code
