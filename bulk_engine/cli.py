"""The ``bulk-engine`` command line.

Each subcommand is one entry in :data:`COMMANDS`: a function that adds its arguments to an argparse
sub-parser and a handler that receives the parsed namespace and returns the process exit code.

Commands: ``run JOB_FILE`` (a job file against any Graph-compatible URL, with a live view and reports),
``validate JOB_FILE`` (no calls), ``report REPORT_JSON`` (re-render a saved report), ``export EDGE`` (an
ad-account edge to CSV / JSON Lines: :mod:`.cli_export`), ``migrate-plan`` (the Advantage+ migration
preflight as a plan CSV: :mod:`.cli_migrate`), ``undo REPORT_OR_JOURNAL`` (the inverse of an
update, status, create or copy job: :mod:`.cli_undo`), ``resume JOB_ID``
(finish an interrupted job from its journal), ``simulator`` and ``demo``. The access token is read from
``META_ACCESS_TOKEN`` only (never a flag: flags land in shell history), the app secret from
``META_APP_SECRET`` when set.

Exit codes of ``run`` / ``resume`` / ``demo``: 0 every operation succeeded; 1 some failed or were skipped, or
the Graph URL cannot be reached (found before anything is sent: re-running is safe, the input may be fine, so
not 2); 2 bad input (nothing sent); 3 interrupted by SIGINT / SIGTERM (batches in flight finish, reports
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
import asyncio
import dataclasses
import json
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import BulkEngineError
from .scrub import Scrubber, ScrubFilter

if TYPE_CHECKING:
    from .operations import CompileContext, JobSpec
    from .reporting import ReportPaths
    from .simulator import FaultConfig, SimulatorConfig

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 3
TOKEN_ENV = "META_ACCESS_TOKEN"
APP_SECRET_ENV = "META_APP_SECRET"
GRAPH_URL_ENV = "META_GRAPH_URL"
DEFAULT_GRAPH_URL = "https://graph.facebook.com"

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


# --- argument types ---------------------------------------------------------------------------------
def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be an integer, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be between 0 and 65535, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:  # also rejects NaN
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = _non_negative_float(text)
    if value == 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _graph_url(text: str) -> str:
    """A usable Graph base URL, checked before anything else runs (the same rule as ``EngineConfig``)."""
    from .config import graph_url_problem

    problem = graph_url_problem(text)
    if problem is None:
        return text
    origin = f" (the value of ${GRAPH_URL_ENV})" if text == os.environ.get(GRAPH_URL_ENV) else ""
    raise argparse.ArgumentTypeError(f"{text!r}{origin} {problem}")


DRY_RUN_MODES = ("local", "server")


def _dry_run_mode(text: str) -> str:
    if text not in DRY_RUN_MODES:
        raise argparse.ArgumentTypeError(
            f"expected local or server, got {text!r} (write --dry-run=local or --dry-run=server, or put "
            "JOB_FILE before --dry-run)"
        )
    return text


def _faults(text: str) -> FaultConfig:
    from .simulator import FaultConfig

    try:
        return FaultConfig.parse_spec(text)
    except ValueError as err:  # pydantic's ValidationError is a ValueError too
        raise argparse.ArgumentTypeError(f"invalid fault spec {text!r}: {_one_line(err)}") from None


def _one_line(err: Exception) -> str:
    errors = getattr(err, "errors", None)
    if callable(errors):  # pydantic ValidationError: "field: message; field: message"
        try:
            items = errors()
            return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in items)
        except Exception:
            pass
    return str(err).splitlines()[0] if str(err) else type(err).__name__


# --- simulator ----------------------------------------------------------------------------------------
def _configure_simulator(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Serve the local Graph API simulator. The first line on stdout is one JSON object with the url, "
        "access_token, ad_account_ids and page_ids a client needs; it serves until SIGINT or SIGTERM."
    )
    parser.add_argument(
        "--port", type=_port, required=True, metavar="PORT", help="TCP port; 0 picks a free one"
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    parser.add_argument(
        "--latency-ms",
        type=_non_negative_float,
        metavar="N",
        help="added latency per HTTP request (wins over latency_ms in --faults)",
    )
    parser.add_argument(
        "--jitter-ms", type=_non_negative_float, metavar="N", help="uniform +/- jitter on the latency"
    )
    parser.add_argument(
        "--time-scale",
        type=_positive_float,
        metavar="X",
        help="virtual seconds per real second (3600 lets an hour's quota window pass in a second)",
    )
    parser.add_argument(
        "--faults",
        type=_faults,
        metavar="SPEC",
        help="fault injection, e.g. transient=0.05,null=0.02,drop=0.01,http5xx=0.01,throttle=0.01",
    )
    parser.add_argument("--seed", type=int, metavar="N", help="seed for fault injection (runs reproduce)")
    parser.add_argument(
        "--app-secret-env",
        metavar="VAR",
        help="require appsecret_proof, with the app secret read from environment variable VAR",
    )
    parser.add_argument("--quota", type=_positive_int, metavar="N", help="override the per-hour call quota")
    parser.add_argument(
        "--tier",
        choices=("development_access", "standard_access"),
        help="access tier of the simulated app (sets the rate-limit quota)",
    )


def _simulator_config(args: argparse.Namespace) -> SimulatorConfig:
    from pydantic import SecretStr

    from .simulator import FaultConfig, SimulatorConfig

    faults: FaultConfig = args.faults or FaultConfig()
    overrides: dict[str, float] = {}
    if args.latency_ms is not None:
        overrides["latency_ms"] = args.latency_ms
    if args.jitter_ms is not None:
        overrides["latency_jitter_ms"] = args.jitter_ms
    if overrides:
        faults = FaultConfig.model_validate({**faults.model_dump(), **overrides})
    values: dict[str, Any] = {"faults": faults}
    if args.seed is not None:
        values["seed"] = args.seed
    if args.time_scale is not None:
        values["time_scale"] = args.time_scale
    if args.quota is not None:
        values["quota_override"] = args.quota
    if args.tier is not None:
        values["access_tier"] = args.tier
    if args.app_secret_env is not None:
        secret = os.environ.get(args.app_secret_env)
        if not secret:
            raise UsageError(f"--app-secret-env: environment variable {args.app_secret_env} is not set")
        values["app_secret"] = SecretStr(secret)
    return SimulatorConfig(**values)


def _run_simulator(args: argparse.Namespace) -> int:
    config = _simulator_config(args)
    return asyncio.run(_serve_simulator(config, args.host, args.port))


async def _serve_simulator(config: SimulatorConfig, host: str, port: int) -> int:
    from .simulator import SimulatorServer
    from .simulator.server import start_info

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except NotImplementedError:  # Windows: no loop signal handlers
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))
        except RuntimeError:  # not the main thread: the caller stops us by cancelling the task
            pass
    server = SimulatorServer(config, host=host, port=port)
    try:
        try:
            await server.start()
        except OSError as err:
            print(f"bulk-engine simulator: cannot listen on {host}:{port}: {err}", file=sys.stderr)
            return EXIT_FAILURE
        info = start_info(server.core, _connect_url(host, server.port))
        sys.stdout.write(json.dumps(info) + "\n")
        sys.stdout.flush()
        print(f"bulk-engine simulator: serving {info['url']} (Ctrl-C to stop)", file=sys.stderr, flush=True)
        await stop.wait()
        print("bulk-engine simulator: stopping", file=sys.stderr, flush=True)
    finally:
        await server.stop()
        for sig in installed:
            loop.remove_signal_handler(sig)
    return EXIT_OK


def _connect_url(host: str, port: int) -> str:
    """The URL a local client dials: a wildcard bind is reachable on loopback; IPv6 gets brackets."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


# --- run / validate / resume / report -------------------------------------------------------------------
def _account(text: str) -> str:
    import re

    if not re.fullmatch(r"act_\d+", text):
        raise argparse.ArgumentTypeError(f"an ad account id looks like act_1234567890, got {text!r}")
    return text


def _add_output_options(parser: argparse.ArgumentParser, *, graph: bool = True) -> None:
    if graph:
        parser.add_argument(
            "--graph-url",
            type=_graph_url,
            default=os.environ.get(GRAPH_URL_ENV) or DEFAULT_GRAPH_URL,
            metavar="URL",
            help=f"Graph API base URL, e.g. a simulator's (default: ${GRAPH_URL_ENV} or {DEFAULT_GRAPH_URL}); "
            "http(s), a host, an optional port 1-65535, no query",
        )
        parser.add_argument(
            "--request-timeout",
            type=_positive_float,
            metavar="SECONDS",
            help="give up on one HTTP request after this long (default: 120); a batch that timed out after "
            "it was sent has an unknown outcome: creates are looked up by their key before a re-send",
        )
        parser.add_argument(
            "--api-version", metavar="vNN.N", help="Graph API version (default: the engine's)"
        )
        parser.add_argument(
            "--time-scale",
            type=_positive_float,
            default=1.0,
            metavar="X",
            help="only against a simulator started with --time-scale X: run the engine clock as fast",
        )
        parser.add_argument("--report", type=Path, metavar="PATH", help="write the JSON report here")
        parser.add_argument("--report-csv", type=Path, metavar="PATH", help="write the CSV report here")
        parser.add_argument("--report-html", type=Path, metavar="PATH", help="write the HTML report here")
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="text: a live view on a terminal, plain lines otherwise; json: one JSON object per line",
    )


def _configure_run(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        f"Run a job file (YAML or JSON). The access token is read from ${TOKEN_ENV} (never a flag), the app "
        f"secret from ${APP_SECRET_ENV} when set. Exit codes: 0 all succeeded, 1 some failed or were skipped "
        "(or the Graph URL cannot be reached: nothing sent), 2 bad input (nothing sent), 3 interrupted."
    )
    parser.add_argument("job_file", type=Path, metavar="JOB_FILE", help="the job: YAML or JSON")
    parser.add_argument("--account", type=_account, metavar="act_…", help="default ad account of the job")
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
        type=_dry_run_mode,
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
    _add_output_options(parser)


def _configure_validate(parser: argparse.ArgumentParser) -> None:
    parser.description = "Validate a job file without sending anything: exit 0 when valid, 2 when not."
    parser.add_argument("job_file", type=Path, metavar="JOB_FILE", help="the job: YAML or JSON")
    parser.add_argument("--account", type=_account, metavar="act_…", help="default ad account of the job")
    _add_output_options(parser, graph=False)


def _configure_resume(parser: argparse.ArgumentParser) -> None:
    parser.description = f"Finish an interrupted job from its journal without repeating completed work (token from ${TOKEN_ENV})."
    parser.add_argument("job_id", metavar="JOB_ID", help="the job id printed by the interrupted run")
    parser.add_argument(
        "--journal",
        required=True,
        metavar="PATH|URL",
        help="the run's journal: a file or a postgresql:// URL",
    )
    _add_output_options(parser)


def _configure_report(parser: argparse.ArgumentParser) -> None:
    parser.description = "Re-render a saved JSON report as HTML and/or CSV, or print its summary."
    parser.add_argument(
        "report_json", type=Path, metavar="REPORT_JSON", help="a report written by run --report"
    )
    parser.add_argument("--html", type=Path, metavar="PATH", help="write the HTML report here")
    parser.add_argument("--csv", type=Path, metavar="PATH", help="write the CSV report here")


def _report_paths(args: argparse.Namespace) -> ReportPaths:
    from .reporting import ReportPaths

    return ReportPaths(args.report, args.report_csv, args.report_html)


def _scrubber(args: argparse.Namespace) -> Scrubber:
    """The scrubber :func:`main` made for this command (none when a handler is called on its own)."""
    found = getattr(args, "scrubber", None)
    return found if isinstance(found, Scrubber) else Scrubber(())


def _say(args: argparse.Namespace, text: str, *, err: bool = False) -> None:
    """``print`` for anything that can quote input or a Graph answer: scrubbed first."""
    print(_scrubber(args).text(text), file=sys.stderr if err else sys.stdout)


def _emit_json(args: argparse.Namespace, kind: str, **fields: Any) -> None:
    sys.stdout.write(_scrubber(args).dumps({"event": kind, **fields}, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _load(args: argparse.Namespace) -> tuple[JobSpec, CompileContext, Any] | None:
    """Load, validate and plan the job; print what is wrong and return ``None`` (exit 2) if anything is."""
    from .operations import CompileContext, JobFileError, load_job
    from .reporting import plan_job

    try:
        spec = load_job(args.job_file)
        ctx = CompileContext(default_account_id=args.account)
        job_id = spec.job_id or spec.fingerprint()[:16]
        plan = plan_job(spec, ctx, job_id)
    except JobFileError as err:
        _say(args, f"bulk-engine: {err}", err=True)
        if args.log_format == "json":
            _emit_json(args, "invalid_job", source=err.source, issues=[i.to_dict() for i in err.issues])
        return None
    return spec, ctx, plan


def _print_plan(args: argparse.Namespace, plan: Any, headline: str) -> None:
    if args.log_format == "json":
        _emit_json(args, "plan", message=headline, **plan.to_dict())
        return
    _say(args, headline)
    for line in plan.lines():
        _say(args, line)


def _run_validate(args: argparse.Namespace) -> int:
    loaded = _load(args)
    if loaded is None:
        return EXIT_USAGE
    _print_plan(args, loaded[2], f"{args.job_file}: valid")
    return EXIT_OK


def _credentials() -> Any:
    from .config import Credentials
    from .reporting.advice import missing_token_advice

    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise UsageError(missing_token_advice())
    secret = os.environ.get(APP_SECRET_ENV, "").strip() or None
    return Credentials(access_token=token, app_secret=secret)


def _engine_config(args: argparse.Namespace) -> Any:
    from pydantic import ValidationError

    from .config import EngineConfig

    values: dict[str, Any] = {"credentials": _credentials(), "graph_url": args.graph_url}
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
        raise UsageError(_one_line(err)) from None


def _journal_class(*, resume: bool) -> Any:
    """``SqliteJournal`` when this installation has the journal (and ``BulkEngine.resume`` for resume)."""
    import importlib
    import inspect

    from .engine import BulkEngine

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


def _resume_hint(job_id: str, journal: str, args: argparse.Namespace) -> str:
    import shlex

    parts = ["bulk-engine", "resume", job_id, "--journal", str(journal), "--graph-url", args.graph_url]
    return " ".join(shlex.quote(p) for p in parts + _tuning_flags(args))


def _tuning_flags(args: argparse.Namespace) -> list[str]:
    """The flags of this run a resumed or repeated run should repeat (clock scale, request timeout)."""
    flags = []
    if args.time_scale != 1.0:
        flags += ["--time-scale", f"{args.time_scale:g}"]
    if args.request_timeout is not None:
        flags += ["--request-timeout", f"{args.request_timeout:g}"]
    return flags


def _run_run(args: argparse.Namespace) -> int:
    loaded = _load(args)
    if loaded is None:
        return EXIT_USAGE
    spec, ctx, plan = loaded
    if args.dry_run == "local":
        return _dry_run(args, plan)
    server_dry_run = args.dry_run == "server"
    if server_dry_run:
        if args.journal is not None:
            raise UsageError(
                "--dry-run=server cannot use --journal: a journal would remember validate_only answers as "
                "done work, and the real run would then skip it"
            )
        ctx = dataclasses.replace(ctx, validate_only=True)
    config = _engine_config(args)
    engine_kwargs: dict[str, Any] = {}
    resume_hint = None
    if args.journal is not None:
        journal_class = _journal_class(resume=False)
        if journal_class is None:
            raise UsageError(
                "--journal: this version has no journal yet (bulk_engine.persistence.SqliteJournal); "
                "run without --journal (the run is then not resumable)"
            )
        engine_kwargs["journal"] = _open_journal(args.journal)
        resume_hint = _rerun_hint(args, engine_kwargs["journal"].location)

    from .operations import run_job
    from .reporting import RunSession
    from .reporting.lean import LeanEngine

    dry = " (dry run on the server: validate_only, nothing is created)" if server_dry_run else ""
    session = RunSession(
        config=config,
        job_id=plan.job_id,
        title=f"bulk-engine run {plan.job_id} → {config.graph_url}{dry}",
        log_format=args.log_format,
        time_scale=args.time_scale,
        expected=dict(plan.kinds),
        reports=_report_paths(args),
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
        code = _run_session(session, work)
    finally:
        _close(engine_kwargs.get("journal"))
    _write_undo_file(args, session)
    return code


def _write_undo_file(args: argparse.Namespace, session: Any) -> None:
    """The undo file next to the JSON report of a run that changed something (``bulk-engine undo``)."""
    from .cli_undo import write_undo_file

    try:
        written = write_undo_file(getattr(session, "report", None), args.report)
    except OSError as err:
        _say(args, f"bulk-engine: cannot write the undo file: {err}", err=True)
        return
    if written is not None and args.log_format != "json":
        _say(args, f"Undo file: {written} (bulk-engine undo {written})")


def _open_journal(target: str) -> Any:
    """The journal ``--journal`` names: an SQLite file, or a PostgreSQL URL (``persistence.open_journal``)."""
    from .errors import JournalError
    from .persistence import open_journal

    try:
        return open_journal(target)
    except (JournalError, OSError) as err:
        raise UsageError(f"--journal: {err}") from None


def _close(journal: Any) -> None:
    close = getattr(journal, "close", None)
    if callable(close):
        close()


def _rerun_hint(args: argparse.Namespace, journal: str) -> str:
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
    return " ".join(shlex.quote(p) for p in parts + _tuning_flags(args))


def _run_session(session: Any, work: Any) -> int:
    import anyio

    try:
        return int(anyio.run(session.run, work))
    except KeyboardInterrupt:  # outside the run's signal handling: before it started, or while finishing
        if getattr(session, "interrupted", None):
            print("bulk-engine: interrupted again while writing the reports", file=sys.stderr)
        else:
            print("bulk-engine: interrupted before the first request", file=sys.stderr)
        return EXIT_INTERRUPTED


def _dry_run(args: argparse.Namespace, plan: Any) -> int:
    from .reporting import write_reports

    _print_plan(args, plan, f"{args.job_file}: valid — dry run, nothing is sent")
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
    write_reports(report, _report_paths(args), _scrubber(args))
    return EXIT_OK


def _run_resume(args: argparse.Namespace) -> int:
    journal_class = _journal_class(resume=True)
    if journal_class is None:
        print(
            "bulk-engine resume: not available yet — this version has no journal "
            "(bulk_engine.persistence.SqliteJournal and BulkEngine.resume). Run the job again with "
            "`bulk-engine run JOB_FILE`; check the last report first: operations that succeeded would be "
            "sent again.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    from .persistence import is_journal_url

    if not is_journal_url(args.journal) and not Path(args.journal).exists():
        raise UsageError(f"--journal: {args.journal} does not exist")
    config = _engine_config(args)

    from .reporting import RunSession
    from .reporting.journaled import engine_job_ids, expected_kinds
    from .results import JobResult

    journal = _open_journal(args.journal)
    try:
        targets = engine_job_ids(journal, args.job_id)
        if not targets:
            known = ", ".join(repr(j.split("/")[0]) for j in journal.job_ids()[:10]) or "none"
            raise UsageError(f"journal {journal.location} has no job {args.job_id!r} (jobs in it: {known})")
        session = RunSession(
            config=config,
            job_id=args.job_id,
            title=f"bulk-engine resume {args.job_id} → {config.graph_url}",
            log_format=args.log_format,
            time_scale=args.time_scale,
            expected=expected_kinds(journal, targets),
            reports=_report_paths(args),
            meta={
                "graph_url": config.graph_url,
                "api_version": config.api_version,
                "journal": journal.location,
            },
            resume_hint=_resume_hint(args.job_id, journal.location, args),
            engine_kwargs={"journal": journal},
        )

        async def work(engine: Any) -> Any:
            return JobResult.combine(args.job_id, [await engine.resume(target) for target in targets])

        code = _run_session(session, work)
    finally:
        _close(journal)
    if len(targets) > 1 or targets[0] != args.job_id:
        print(
            f"bulk-engine resume: finished the {len(targets)} engine job(s) of {args.job_id} the journal holds; "
            "tasks of the job file that had not started yet are not in the journal: run the same "
            "`bulk-engine run JOB_FILE --journal PATH` command again to finish them (completed work is "
            "answered from the journal, not sent again).",
            file=sys.stderr,
        )
    return code


def _run_report(args: argparse.Namespace) -> int:
    from .reporting import ReportFormatError, ReportPaths, read_report, write_reports
    from .reporting.report import all_runs_summary, describe_failure_group

    scrubber = _scrubber(args)  # scrubbed again: the file may come from an older version, or other secrets
    try:
        saved = read_report(args.report_json)  # incrementally: a million-operation report never fits memory
    except ReportFormatError as err:
        raise UsageError(str(err)) from None
    saved.summarise(fill_only=True)  # an older report may lack the aggregates
    written = write_reports(saved, ReportPaths(None, args.csv, args.html), scrubber)
    report = scrubber.scrub_value(saved.head)
    counts = report["counts"]
    _say(
        args,
        f"Job {report['job_id']} ({report.get('status', 'completed')}): {counts.get('succeeded', 0):,} succeeded, "
        f"{counts.get('failed', 0):,} failed, {counts.get('skipped', 0):,} skipped; "
        f"{report['http_requests']:,} HTTP requests, {report['graph_calls']:,} Graph calls, "
        f"{report['retries']:,} retries, {report['throttle_events']:,} throttle events, {report['elapsed_s']} s",
    )
    runs = all_runs_summary(report)
    if runs is not None:
        _say(args, "  " + runs)
    for group in report["failures_by_code"][:10]:
        _say(args, "  " + describe_failure_group(group))
    for path in written:
        print(f"wrote {path}")
    return EXIT_OK


# --- the command table -------------------------------------------------------------------------------
def _configure_demo(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run the shipped demo job (bulk_engine/demo_job.yaml: click-to-Messenger trees, a copy, an Advantage+ "
        "migration, a pause) against an embedded simulator with realistic latency and a small quota, with the "
        "live view, and write the JSON, CSV and HTML reports. Needs no token and no network."
    )
    parser.add_argument(
        "--report",
        type=Path,
        default=Path("reports/demo-report.json"),
        metavar="PATH",
        help="the JSON report (default: reports/demo-report.json); the CSV and HTML go next to it",
    )
    parser.add_argument(
        "--report-csv", type=Path, metavar="PATH", help="the CSV report (default: next to --report)"
    )
    parser.add_argument(
        "--report-html", type=Path, metavar="PATH", help="the HTML report (default: next to --report)"
    )
    _add_output_options(parser, graph=False)


def _run_demo(args: argparse.Namespace) -> int:
    import anyio

    from .demo import run_demo
    from .reporting import ReportPaths

    report: Path = args.report
    paths = ReportPaths(
        report,
        args.report_csv or report.with_suffix(".csv"),
        args.report_html or report.with_suffix(".html"),
    )
    try:
        return int(anyio.run(lambda: run_demo(paths, log_format=args.log_format)))
    except KeyboardInterrupt:  # before the run's signal handlers were installed
        print("bulk-engine demo: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _configure_export(parser: argparse.ArgumentParser) -> None:
    from .cli_export import configure_export

    configure_export(parser)


def _run_export(args: argparse.Namespace) -> int:
    from .cli_export import run_export

    return run_export(args)


def _configure_migrate_plan(parser: argparse.ArgumentParser) -> None:
    from .cli_migrate import configure_migrate_plan

    configure_migrate_plan(parser)


def _run_migrate_plan(args: argparse.Namespace) -> int:
    from .cli_migrate import run_migrate_plan

    return run_migrate_plan(args)


def _configure_undo(parser: argparse.ArgumentParser) -> None:
    from .cli_undo import configure_undo

    configure_undo(parser)


def _run_undo(args: argparse.Namespace) -> int:
    from .cli_undo import run_undo

    return run_undo(args)


COMMANDS: dict[str, Command] = {
    "run": Command(
        "run a job file against the Graph API (or a simulator) with a live view and reports",
        _configure_run,
        _run_run,
    ),
    "validate": Command("validate a job file without sending anything", _configure_validate, _run_validate),
    "resume": Command("finish an interrupted job from its journal", _configure_resume, _run_resume),
    "report": Command("re-render a saved JSON report as HTML or CSV", _configure_report, _run_report),
    "export": Command(
        "export an ad-account edge (campaigns, ads, …) to CSV or JSON Lines", _configure_export, _run_export
    ),
    "migrate-plan": Command(
        "write an Advantage+ migration plan (one row per campaign, to review) from a read-only preflight",
        _configure_migrate_plan,
        _run_migrate_plan,
    ),
    "undo": Command(
        "undo a job (restore what it changed, pause or delete what it created, skip what others changed since)",
        _configure_undo,
        _run_undo,
    ),
    "demo": Command(
        "run a demo bulk job end to end against the embedded simulator",
        _configure_demo,
        _run_demo,
    ),
    "simulator": Command(
        help="serve the local Graph API simulator", configure=_configure_simulator, handler=_run_simulator
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
    from .config import Credentials

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
