"""The ``bulk-engine`` command line.

Each subcommand is one entry in :data:`COMMANDS`: a function that adds its arguments to an argparse
sub-parser and a handler that receives the parsed namespace and returns the process exit code.

Commands: ``run JOB_FILE`` (a job file against any Graph-compatible URL, with a live view and reports),
``validate JOB_FILE`` (no calls), ``report REPORT_JSON`` (re-render a saved report), ``export EDGE`` (an
ad-account edge to CSV / JSON Lines), ``migrate-plan`` (the Advantage+ migration preflight as a plan CSV),
``undo REPORT_OR_JOURNAL`` (the inverse of an update, status, create or copy job, or a migration's rollback),
``resume JOB_ID`` (finish an interrupted job from its journal), ``simulator`` and ``demo`` — one module each
(``bulk_engine.cli.run``, ``.validate``, …); what they share is :mod:`.common` (exit codes, printing, the
engine config, journals, running a job's session) and :mod:`.options` (argument types, shared flags). This
module only assembles the parser and runs :func:`main`. The access token is read from
``META_ACCESS_TOKEN`` only (never a flag: flags land in shell history), the app secret from
``META_APP_SECRET`` when set.

Exit codes of ``run`` / ``resume`` / ``demo``: 0 every operation succeeded; 1 some failed or were skipped, or
the Graph URL cannot be reached (found before anything is sent: re-running is safe, the input may be fine, so
not 2); 2 bad input (nothing written: found before any call, or by reads alone — a migration plan row whose
campaign is gone); 3 interrupted by SIGINT / SIGTERM (batches in flight finish, reports
written, resume command printed). Other commands: 0 success, 1 runtime failure, 2 bad arguments (argparse's
convention), 130 interrupted.

Secrets: what the commands print (errors, plans, summaries, an unexpected traceback), the engine's log
records (a :class:`~bulk_engine.scrub.ScrubFilter` on every handler the CLI writes through) and the reports
go through one :class:`~bulk_engine.scrub.Scrubber` of ``$META_ACCESS_TOKEN``, ``$META_APP_SECRET`` and their
``appsecret_proof``: a server may echo them in its answers. ``simulator`` is the exception — its first line
hands out the simulator's own token on purpose.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback

from bulk_engine.scrub import Scrubber, ScrubFilter

from .common import (
    APP_SECRET_ENV,
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    TOKEN_ENV,
    Command,
    Handler,
    UsageError,
)
from .demo import configure_demo, run_demo_command
from .export import configure_export, run_export
from .migrate import configure_migrate_plan, run_migrate_plan
from .report import configure_report, run_report
from .resume import configure_resume, run_resume
from .run import configure_run, run_run
from .simulator import configure_simulator, run_simulator
from .undo import configure_undo, run_undo
from .validate import configure_validate, run_validate

__all__ = ["COMMANDS", "build_parser", "main"]

COMMANDS: dict[str, Command] = {
    "run": Command(
        "run a job file against the Graph API (or a simulator) with a live view and reports",
        configure_run,
        run_run,
    ),
    "validate": Command("validate a job file without sending anything", configure_validate, run_validate),
    "resume": Command("finish an interrupted job from its journal", configure_resume, run_resume),
    "report": Command("re-render a saved JSON report as HTML or CSV", configure_report, run_report),
    "export": Command(
        "export an ad-account edge (campaigns, ads, …) to CSV or JSON Lines",
        configure_export,
        run_export,
    ),
    "migrate-plan": Command(
        "write an Advantage+ migration plan (one row per campaign, to review) from a read-only preflight",
        configure_migrate_plan,
        run_migrate_plan,
    ),
    "undo": Command(
        "undo a job (restore what it changed, pause or delete what it created, skip what others changed since)",
        configure_undo,
        run_undo,
    ),
    "demo": Command(
        "run a demo bulk job end to end against the embedded simulator",
        configure_demo,
        run_demo_command,
    ),
    "simulator": Command(
        help="serve the local Graph API simulator",
        configure=configure_simulator,
        handler=run_simulator,
    ),
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("meta-bulk-engine")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bulk-engine",
        description="Bulk engine for the Meta Marketing API, with a local Graph API simulator.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in COMMANDS.items():
        sub = subparsers.add_parser(name, help=command.help)
        command.configure(sub)
        sub.set_defaults(handler=command.handler, subparser=sub)
    return parser


def _env_scrubber() -> Scrubber:
    """The secrets this process was given: the token and app secret from the environment, and their proof."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    secret = os.environ.get(APP_SECRET_ENV, "").strip() or None
    if not token:
        return Scrubber([secret])
    from bulk_engine.config import Credentials

    return Scrubber(Credentials(access_token=token, app_secret=secret).secrets())


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``bulk-engine`` and ``python -m bulk_engine``; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits 2 on bad arguments and 0 after --help/--version
        return exit_.code if isinstance(exit_.code, int) else (EXIT_OK if exit_.code is None else EXIT_USAGE)
    handler: Handler = args.handler
    scrubber = args.scrubber = _env_scrubber()
    # Outside a run's view the CLI has no handler of its own: warnings reach logging's last-resort stderr
    # handler, so that one is filtered too (the run session filters the handler it installs).
    fallback, log_filter = logging.lastResort, ScrubFilter(scrubber)
    if fallback is not None:
        fallback.addFilter(log_filter)
    try:
        return handler(args)
    except UsageError as err:
        args.subparser.print_usage(sys.stderr)
        print(scrubber.text(f"{args.subparser.prog}: error: {err}"), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `bulk-engine validate job.yaml | head`: the reader left; no traceback
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python flushes stdout at exit: let that go nowhere
        return EXIT_FAILURE
    except Exception:  # a bug: the traceback Python would print, scrubbed (it may quote a Graph answer)
        sys.stderr.write(scrubber.text(traceback.format_exc()))
        return EXIT_FAILURE
    finally:
        if fallback is not None:
            fallback.removeFilter(log_filter)
