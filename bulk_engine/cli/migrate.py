"""``bulk-engine migrate-plan --account act_X -o plan.csv``: the Advantage+ migration preflight as a plan file.

Why a command: migrating a whole account starts with a decision per campaign that a person reviews (S003 §Migrate
Advantage+ Shopping Campaigns and Advantage+ App Campaigns into Advantage+ Campaigns → Limitations). The
command runs a read-only ``migrate`` task (``preflight_only``) through the same session as ``run`` (:func:`~.common.run_one_task`) (live view,
reports, exit codes 0/1/2/3) and writes one row per campaign (:data:`~.operations.migrate_plan.PLAN_COLUMNS`):
id, name, kind (ASC / AAC / ordinary), eligibility and reason, the proposed action (``copy``, ``in_place``,
``skip``, ``manual`` with the documented manual path), status, budget and ad count. Edit ``action`` and run a
job with ``{type: migrate, plan: plan.csv}``. Nothing is written to Graph.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import EXIT_USAGE, TOKEN_ENV, emit_json, one_task_job, run_one_task, say
from .options import account, add_output_options, positive_int

__all__ = ["configure_migrate_plan", "run_migrate_plan"]


def configure_migrate_plan(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Read every campaign of an ad account, classify it for the Advantage+ migration and write the plan CSV "
        f"to review (nothing is written to Graph). Token from ${TOKEN_ENV}. Exit codes: 0 plan written, "
        "1 some reads failed (the plan lists what was read), 2 bad input, 3 interrupted."
    )
    parser.add_argument("--account", type=account, required=True, metavar="act_…", help="the ad account")
    parser.add_argument(
        "--output",
        "-o",
        type=Path,
        required=True,
        metavar="PATH",
        help="the plan CSV to write",
    )
    parser.add_argument(
        "--include-archived",
        action="store_true",
        help="also list ARCHIVED campaigns (they can be copied)",
    )
    parser.add_argument(
        "--mode",
        choices=("copy", "in_place"),
        default="copy",
        help="the action proposed for eligible ASC campaigns (default: copy = copy and migrate)",
    )
    parser.add_argument(
        "--max-ads",
        type=positive_int,
        metavar="N",
        help="the ad limit of a migration (default: 150)",
    )
    add_output_options(parser)


def run_migrate_plan(args: argparse.Namespace) -> int:
    from bulk_engine.operations import JobFileError
    from bulk_engine.operations.migrate_plan import write_plan

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
        spec = one_task_job(args, task, "bulk-engine migrate-plan")
    except JobFileError as err:
        say(args, f"bulk-engine migrate-plan: {err}", err=True)
        return EXIT_USAGE
    title = f"bulk-engine migrate-plan {args.account} → {args.output}"
    code, done = run_one_task(args, spec, source="bulk-engine migrate-plan", title=title)
    if done is None:
        return code
    details = done.details
    records = [r if isinstance(r, dict) else r.to_dict() for r in details.get("campaigns") or []]
    rows = write_plan(args.output, records)
    classes = ", ".join(f"{n} {k}" for k, n in sorted((details.get("classes") or {}).items()))
    if args.log_format == "json":
        emit_json(
            args,
            "plan_written",
            rows=rows,
            output=str(args.output),
            classes=details.get("classes"),
        )
    else:
        say(
            args,
            f"wrote {rows} campaign(s) to {args.output} ({classes or 'none'}); edit the action column",
        )
    return code
