"""``bulk-engine validate JOB_FILE``: load, check and plan a job without sending anything (exit 0 or 2).

Also the loading step of ``run`` (:func:`load`): a job is checked the same way whether it is then sent or not.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .common import EXIT_OK, EXIT_USAGE, emit_json, say
from .options import account, add_output_options

if TYPE_CHECKING:
    from bulk_engine.operations import CompileContext, JobSpec

__all__ = ["configure_validate", "load", "print_plan", "run_validate"]


def configure_validate(parser: argparse.ArgumentParser) -> None:
    parser.description = "Validate a job file without sending anything: exit 0 when valid, 2 when not."
    parser.add_argument("job_file", type=Path, metavar="JOB_FILE", help="the job: YAML or JSON")
    parser.add_argument("--account", type=account, metavar="act_…", help="default ad account of the job")
    add_output_options(parser, graph=False)


def load(args: argparse.Namespace) -> tuple[JobSpec, CompileContext, Any] | None:
    """Load, validate and plan the job; print what is wrong and return ``None`` (exit 2) if anything is."""
    from bulk_engine.operations import CompileContext, JobFileError, load_job
    from bulk_engine.reporting import plan_job

    try:
        spec = load_job(args.job_file)
        ctx = CompileContext(default_account_id=args.account)
        job_id = spec.job_id or spec.fingerprint()[:16]
        plan = plan_job(spec, ctx, job_id)
    except JobFileError as err:
        say(args, f"bulk-engine: {err}", err=True)
        if args.log_format == "json":
            emit_json(
                args,
                "invalid_job",
                source=err.source,
                issues=[i.to_dict() for i in err.issues],
            )
        return None
    return spec, ctx, plan


def print_plan(args: argparse.Namespace, plan: Any, headline: str) -> None:
    if args.log_format == "json":
        emit_json(args, "plan", message=headline, **plan.to_dict())
        return
    say(args, headline)
    for line in plan.lines():
        say(args, line)


def run_validate(args: argparse.Namespace) -> int:
    loaded = load(args)
    if loaded is None:
        return EXIT_USAGE
    print_plan(args, loaded[2], f"{args.job_file}: valid")
    return EXIT_OK
