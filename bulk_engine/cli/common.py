"""What the subcommands share: exit codes, the command record, scrubbed printing, the engine config from the
environment, journals, and running a job through a :class:`~bulk_engine.reporting.RunSession`.

Why one place: every command that talks to Graph must read the token the same way (never from a flag),
print through the same scrubber, and end with the same exit codes; ``export`` and ``migrate-plan`` run a
one-task job exactly as ``run`` runs a job file (:func:`run_one_task`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bulk_engine.errors import BulkEngineError
from bulk_engine.scrub import Scrubber

from .options import one_line

if TYPE_CHECKING:
    from bulk_engine.operations import JobSpec
    from bulk_engine.reporting import ReportPaths

__all__ = [
    "APP_SECRET_ENV",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "TOKEN_ENV",
    "Command",
    "Configure",
    "Handler",
    "UsageError",
    "close_journal",
    "emit_json",
    "engine_config",
    "journal_class",
    "one_task_job",
    "open_journal",
    "report_paths",
    "run_one_task",
    "run_session",
    "say",
    "scrubber_of",
    "tuning_flags",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 3
TOKEN_ENV = "META_ACCESS_TOKEN"
APP_SECRET_ENV = "META_APP_SECRET"

Handler = Callable[[argparse.Namespace], int]
Configure = Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True)
class Command:
    """One subcommand: its one-line help, how to add its arguments, and what runs it."""

    help: str
    configure: Configure
    handler: Handler


class UsageError(BulkEngineError):
    """A bad argument found after parsing (e.g. a missing environment variable); exits 2."""


# --- printing ---------------------------------------------------------------------------------------------
def report_paths(args: argparse.Namespace) -> ReportPaths:
    from bulk_engine.reporting import ReportPaths

    return ReportPaths(args.report, args.report_csv, args.report_html)


def scrubber_of(args: argparse.Namespace) -> Scrubber:
    """The scrubber :func:`~bulk_engine.cli.main` made for this command (none when a handler is called on
    its own)."""
    found = getattr(args, "scrubber", None)
    return found if isinstance(found, Scrubber) else Scrubber(())


def say(args: argparse.Namespace, text: str, *, err: bool = False) -> None:
    """``print`` for anything that can quote input or a Graph answer: scrubbed first."""
    print(scrubber_of(args).text(text), file=sys.stderr if err else sys.stdout)


def emit_json(args: argparse.Namespace, kind: str, **fields: Any) -> None:
    sys.stdout.write(scrubber_of(args).dumps({"event": kind, **fields}, separators=(",", ":")) + "\n")
    sys.stdout.flush()


# --- the engine -------------------------------------------------------------------------------------------
def credentials() -> Any:
    from bulk_engine.config import Credentials
    from bulk_engine.reporting.advice import missing_token_advice

    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise UsageError(missing_token_advice())
    secret = os.environ.get(APP_SECRET_ENV, "").strip() or None
    return Credentials(access_token=token, app_secret=secret)


def engine_config(args: argparse.Namespace) -> Any:
    from pydantic import ValidationError

    from bulk_engine.config import EngineConfig

    values: dict[str, Any] = {"credentials": credentials(), "graph_url": args.graph_url}
    if args.api_version:
        values["api_version"] = args.api_version
    if args.request_timeout is not None:
        values["request_timeout_s"] = args.request_timeout
    if getattr(args, "idempotency_key", None) is not None:
        values["idempotency"] = {"keys": args.idempotency_key}
    if getattr(args, "backend", None) is not None:
        values["backend"] = args.backend
    try:
        return EngineConfig(**values)
    except ValidationError as err:
        raise UsageError(one_line(err)) from None


def tuning_flags(args: argparse.Namespace) -> list[str]:
    """The flags of this run a resumed or repeated run should repeat (clock scale, request timeout)."""
    flags = []
    if args.time_scale != 1.0:
        flags += ["--time-scale", f"{args.time_scale:g}"]
    if args.request_timeout is not None:
        flags += ["--request-timeout", f"{args.request_timeout:g}"]
    return flags


# --- journals ---------------------------------------------------------------------------------------------
def journal_class(*, resume: bool) -> Any:
    """``SqliteJournal`` when this installation has the journal (and ``BulkEngine.resume`` for resume)."""
    import importlib
    import inspect

    from bulk_engine.engine import BulkEngine

    try:
        module = importlib.import_module("bulk_engine.persistence")
    except ImportError:
        return None
    journal = getattr(module, "SqliteJournal", None)
    if journal is None or "journal" not in inspect.signature(BulkEngine.__init__).parameters:
        return None
    if resume and not callable(getattr(BulkEngine, "resume", None)):
        return None
    return journal


def open_journal(target: str) -> Any:
    """The journal ``--journal`` names: an SQLite file, or a PostgreSQL URL (``persistence.open_journal``)."""
    from bulk_engine.errors import JournalError
    from bulk_engine.persistence import open_journal as open_any

    try:
        return open_any(target)
    except (JournalError, OSError) as err:
        raise UsageError(f"--journal: {err}") from None


def close_journal(journal: Any) -> None:
    close = getattr(journal, "close", None)
    if callable(close):
        close()


# --- running ----------------------------------------------------------------------------------------------
def run_session(session: Any, work: Callable[[Any], Awaitable[Any]]) -> int:
    """Run ``work(engine)`` in ``session`` (live view, signals, reports); the exit code."""
    import anyio

    try:
        return int(anyio.run(session.run, work))
    except KeyboardInterrupt:  # outside the run's signal handling: before it started, or while finishing
        if getattr(session, "interrupted", None):
            print(
                "bulk-engine: interrupted again while writing the reports",
                file=sys.stderr,
            )
        else:
            print("bulk-engine: interrupted before the first request", file=sys.stderr)
        return EXIT_INTERRUPTED


def one_task_job(args: argparse.Namespace, task: dict[str, Any], source: str) -> JobSpec:
    """The job of one task built from flags, on ``--account``; raises ``JobFileError`` like a job file."""
    from bulk_engine.operations import parse_job

    return parse_job({"account_id": args.account, "tasks": [task]}, source=source)


def run_one_task(args: argparse.Namespace, spec: JobSpec, *, source: str, title: str) -> tuple[int, Any]:
    """Run the one-task job ``spec`` as ``bulk-engine run`` runs a job file (no journal); the exit code and
    the task's report (``None`` when the run did not complete)."""
    from bulk_engine.operations import CompileContext, run_job
    from bulk_engine.reporting import RunSession
    from bulk_engine.reporting.lean import LeanEngine

    config = engine_config(args)
    job_id = spec.job_id or spec.fingerprint()[:16]
    session = RunSession(
        config=config,
        job_id=job_id,
        title=title,
        log_format=args.log_format,
        time_scale=args.time_scale,
        expected={},
        reports=report_paths(args),
        meta={
            "source": source,
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

    code = run_session(session, work)
    return code, (done[0].tasks[0] if done else None)
