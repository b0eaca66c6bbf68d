"""One ``bulk-engine run`` (or ``resume``) end to end: engine, live view, signals, reports, exit code.

Exit codes: 0 every operation succeeded; 1 some failed or were skipped, or the Graph URL cannot be reached
(checked before anything is sent: the message names the URL, re-running is safe); 3 interrupted (SIGINT /
SIGTERM: :meth:`BulkEngine.request_stop` — nothing new is sent, the batches in flight finish and their outcomes
are recorded and journaled; a second signal cancels them, their outcome is then unknown and listed in the
report's ``unfinished`` — the reports are written and the command to finish the job is printed). Bad input
(exit 2) is the command line's business: nothing reaches this module before the job file validated.

Secrets: one :class:`~bulk_engine.scrub.Scrubber` of the run's token, app secret and proof scrubs the view
(live view, plain and JSON lines), the engine's log records on their way to it (a
:class:`~bulk_engine.scrub.ScrubFilter` on the handler) and the report before it is kept or written.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import anyio

from bulk_engine.config import EngineConfig
from bulk_engine.engine import BulkEngine
from bulk_engine.errors import ConfigError, JobValidationError, JournalError
from bulk_engine.execution.clock import Clock, ScaledClock
from bulk_engine.scrub import Scrubber, ScrubFilter, scrubbing_logs

from .advice import auth_advice, auth_error, duration, unanswered_advice, unreachable_advice, wait_subject
from .csvreport import CsvReportWriter
from .diffs import changes_by_op
from .html import write_html
from .lean import stays_on_disk
from .live import View, make_view
from .migration import write_migration_csv
from .preflight import connect_problem, unreachable_message
from .recorder import RunRecorder
from .report import REPORT_VERSION, JsonReportWriter, StreamedReport, all_runs_summary, describe_failure_group
from .spill import OutcomeSpill
from .summary import OperationsSummary

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "ReportPaths",
    "RunSession",
    "StreamedReport",
    "write_reports",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 3
TICK_S = 0.25
BAD_INPUT = (ConfigError, JobValidationError, JournalError)

logger = logging.getLogger("bulk_engine.cli")


@dataclass(frozen=True)
class ReportPaths:
    json: Path | None = None
    csv: Path | None = None
    html: Path | None = None

    def written(self) -> list[Path]:
        return [p for p in (self.json, self.csv, self.html) if p is not None]

    def folder(self) -> Path | None:
        """Where the run's spill file goes: beside the first report asked for (``None``: none asked for)."""
        first = next(iter(self.written()), None)
        return None if first is None else first.parent


def write_reports(
    report: Mapping[str, Any] | StreamedReport, paths: ReportPaths, scrubber: Scrubber | None = None
) -> list[Path]:
    """Write the JSON, CSV and HTML reports that ``paths`` asks for, scrubbed by ``scrubber`` first.

    ``report`` is a report held in memory or a :class:`StreamedReport` (a million operations: one pass writes
    the JSON and CSV reports, operation by operation; the HTML report is built from the aggregates and the
    first problems of each group, :meth:`StreamedReport.summarise`).
    """
    if isinstance(report, StreamedReport):
        source = report
        if scrubber is not None:
            scrub = scrubber.scrub_value
            inner = source.operations
            problems = None if source.problems is None else scrub(source.problems)
            source = StreamedReport(scrub(source.head), lambda: (scrub(op) for op in inner()), problems)
    else:
        source = StreamedReport.of(scrubber.scrub_value(report) if scrubber is not None else report)
    if paths.html is not None and source.problems is None:
        source.summarise(fill_only=True)
    written: list[Path] = []
    with contextlib.ExitStack() as stack:
        sinks: list[JsonReportWriter | CsvReportWriter] = []
        if paths.json is not None:
            sinks.append(stack.enter_context(JsonReportWriter(paths.json, source.head)))
        if paths.csv is not None:
            sinks.append(stack.enter_context(CsvReportWriter(paths.csv, changes_by_op(source.head))))
        if sinks:
            for op in source.operations():
                for sink in sinks:
                    sink.add(op)
    written.extend(p for p in (paths.json, paths.csv) if p is not None)
    if paths.html is not None:
        written.append(write_html(source.head, paths.html, source.problems))
    if paths.csv is not None and (mapped := write_migration_csv(source.head, paths.csv)) is not None:
        written.append(mapped)  # the Advantage+ migration's old → new ids (reporting/migration.py)
    return written


class _ViewLogHandler(logging.Handler):
    """Engine warnings and errors go through the view (a stray stderr line would tear the live view).

    Scrubbed on the way in (:class:`ScrubFilter`), whatever the view then does with the record.
    """

    def __init__(self, view: View, scrubber: Scrubber) -> None:
        super().__init__(logging.WARNING)
        self.view = view
        self.addFilter(ScrubFilter(scrubber))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.view.log_record(record)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


@dataclass
class RunSession:
    """Runs ``work(engine)`` with a recorder, a view, signal handling and reports.

    ``work`` returns the operations layer's report (anything with ``to_dict()``) when the job completes.
    Every outcome the engine reports goes to a spill file (:mod:`.spill`) as it arrives, and the reports are
    written from there (:meth:`report_source`): memory does not grow with the job.
    ``engine_kwargs`` go to :class:`BulkEngine` (e.g. ``journal=``). ``resume_hint`` is the command that
    finishes the job after an interruption (``None``: not resumable, the message says so).
    """

    config: EngineConfig
    job_id: str
    title: str
    log_format: str = "text"
    time_scale: float = 1.0
    expected: dict[str, int] = field(default_factory=dict)
    reports: ReportPaths = field(default_factory=ReportPaths)
    meta: dict[str, Any] = field(default_factory=dict)
    resume_hint: str | None = None
    engine_kwargs: dict[str, Any] = field(default_factory=dict)
    stream: TextIO | None = None
    is_terminal: Callable[[], bool] | None = None

    def __post_init__(self) -> None:
        self.scrubber = Scrubber(self.config.credentials.secrets())
        self.recorder = RunRecorder(time_scale=self.time_scale)
        self.recorder.expect(self.expected)
        self.view = make_view(
            self.recorder,
            self.title,
            log_format=self.log_format,
            stream=self.stream,
            is_terminal=self.is_terminal,
            scrubber=self.scrubber,
        )
        self.interrupted: str | None = None
        self.failure: BaseException | None = None
        self.report: dict[str, Any] = {}  # after a run: every field but the operations (they are on disk)
        self.source: StreamedReport | None = None
        self.spill: OutcomeSpill | None = None

    # --- running ------------------------------------------------------------------------------------------
    async def run(self, work: Callable[[BulkEngine], Awaitable[Any]]) -> int:
        problem = await connect_problem(self.config.graph_url)
        if problem is not None:
            return self._unreachable(problem)
        try:
            self.spill = OutcomeSpill(self.reports.folder(), self.scrubber)
        except OSError:  # the reports' folder is not writable: said when they are written; spill elsewhere
            self.spill = OutcomeSpill(None, self.scrubber)
        self.recorder.sink = self.spill.append
        try:
            return await self._run(work)
        finally:  # the reports are written: the outcomes go with the spill file
            self.recorder.sink = None
            self.spill.close()
            self.spill = None
            self.source = None

    async def _run(self, work: Callable[[BulkEngine], Awaitable[Any]]) -> int:
        clock: Clock | None = ScaledClock(self.time_scale) if self.time_scale != 1.0 else None
        engine = BulkEngine(self.config, clock=clock, observer=self.recorder.observe, **self.engine_kwargs)
        result: list[Any] = []
        failure: list[BaseException] = []
        handler = _ViewLogHandler(self.view, self.scrubber)
        package_logger = logging.getLogger("bulk_engine")
        previous = package_logger.propagate
        package_logger.addHandler(handler)
        package_logger.propagate = False
        work_scope = anyio.CancelScope()
        self.view.start()
        try:
            async with anyio.create_task_group() as tg:

                async def main() -> None:
                    try:
                        async with engine:  # a signal cancels the work only: the engine still closes cleanly
                            with work_scope:
                                result.append(await work(engine))
                    except Exception as err:  # reported below; the reports are still written
                        failure.append(err)
                    tg.cancel_scope.cancel()

                async def ticker() -> None:
                    while True:
                        await anyio.sleep(TICK_S)
                        self.recorder.tick()
                        self.view.tick()

                async def drain() -> None:
                    await engine.wait_drained()  # every answer in flight recorded (and journaled)
                    work_scope.cancel()  # the job's later steps would only find the engine stopped

                async def signals() -> None:
                    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as received:
                        async for signum in received:
                            if self.interrupted is not None:  # a second signal: stop waiting for anything
                                self.view.message(
                                    f"{signal.Signals(signum).name} received again: cancelling the batches in "
                                    "flight (their outcome is unknown; a journaled run reconciles them on resume)",
                                    level="warning",
                                    event="interrupted_hard",
                                    signal=signal.Signals(signum).name,
                                )
                                tg.cancel_scope.cancel()
                                return
                            self.interrupted = signal.Signals(signum).name
                            self.view.message(
                                f"{self.interrupted} received: stopping — no new batches are sent; waiting for "
                                "the batches in flight to answer (their outcomes are recorded), then writing the "
                                "reports. Send it again to cancel them.",
                                level="warning",
                                event="interrupted",
                                signal=self.interrupted,
                            )
                            engine.request_stop()
                            tg.start_soon(drain)

                tg.start_soon(signals)
                tg.start_soon(ticker)
                tg.start_soon(main)
        finally:
            self.recorder.tick(force=True)
            self.view.stop()
            package_logger.removeHandler(handler)
            package_logger.propagate = previous
        if failure and not result:
            err = self.failure = failure[0]
            self.view.message(
                f"the run failed: {type(err).__name__}: {err}", level="error", event="run_error"
            )
            with scrubbing_logs(self.scrubber, logger.name):  # the traceback may quote a Graph answer
                logger.debug("run failed", exc_info=err)
        self.source = self.report_source(result[0] if result else None)
        self.report = self.source.head
        return self.finish()

    def _unreachable(self, problem: str) -> int:
        """Nothing was sent: say which URL and why, write the (empty) reports, exit 1."""
        url = str(self.meta.get("graph_url") or self.config.graph_url)
        self.view.start()
        self.view.message(
            unreachable_message(url, problem), level="error", event="unreachable", url=url, reason=problem
        )
        self.view.stop()
        self.failure = ConnectionError(f"cannot connect to {url} ({problem})")
        self.source = self.report_source(None)
        self.report = self.source.head
        return self.finish()

    # --- the report ---------------------------------------------------------------------------------------
    def build_report(self, done: Any) -> dict[str, Any]:
        """The whole report in memory (:meth:`report_source` materialised): for small runs and tests."""
        return self.report_source(done).materialize()

    def report_source(self, done: Any) -> StreamedReport:
        """The report of the run: its head built now (aggregates from one pass over the operations), its
        operations read from the spill file on each pass.

        ``done`` is the operations layer's report when the job completed: its operations (all but what
        :class:`~.lean.LeanEngine` withheld — the layer's own view, with local skips and superseded
        failures), then from the spill the withheld ones. Without it (interrupted, or the run failed): every
        outcome the engine reported, from the spill.
        """
        rec = self.recorder
        kept: list[Mapping[str, Any]] | None = None
        if done is not None and hasattr(done, "to_dict"):
            base: dict[str, Any] = dict(done.to_dict())
            kept = [op for op in base.pop("operations", None) or () if isinstance(op, Mapping)]
            kept = self.scrubber.scrub_value(kept)
        else:  # interrupted (or the run failed): what the engine reported while it ran
            base = {
                "job_id": self.job_id,
                "counts": rec.counts(),
                "http_requests": rec.http_requests,
                "graph_calls": rec.graph_calls,
                "retries": rec.retries,
                "throttle_events": rec.throttle_events,
                "elapsed_s": round(rec.elapsed_s, 3),
                "all_runs": None,  # the journal has them; this run never got to read its totals back
            }
        base.setdefault("job_id", self.job_id)
        status = "interrupted" if self.interrupted else ("completed" if done is not None else "failed")
        head: dict[str, Any] = {
            "report_version": REPORT_VERSION,
            **base,
            "status": status,
            "interrupted_by": self.interrupted,
            **self.meta,
            "started_at": _iso(rec.started_epoch),
            "finished_at": _iso(time.time()),
            "kinds": {},
            "failures_by_code": [],
            "skipped_by_reason": [],
            "accounts": [p.to_dict(rec.now()) for p in rec.pairs.values()],
            "throttles": [t.to_dict() for t in rec.throttles],
            "waits": rec.waits_summary(),
            "timeseries": rec.timeseries(),
            "unfinished": None,
            "resume": self.resume_hint if status != "completed" else None,
        }
        spill = self.spill

        def passes() -> Iterator[tuple[Mapping[str, Any], bool]]:
            """Each operation of the report, and whether it came from the spill because it was withheld."""
            if kept is not None:
                yield from ((op, False) for op in kept)
                if spill is not None:
                    ids = {str(op.get("op_id")) for op in kept}
                    for op in spill:
                        if stays_on_disk(op) and str(op.get("op_id")) not in ids:
                            yield op, True
            elif spill is not None:
                yield from ((op, False) for op in spill)

        source = StreamedReport(self.scrubber.scrub_value(head), lambda: (op for op, _ in passes()))
        summary = OperationsSummary()
        withheld: dict[str, dict[str, int]] = {}  # task key → states of its withheld operations
        for op, from_spill in passes():
            summary.add(op)
            if from_spill:  # op ids are "<task key>/…" (TaskEnv.op_id)
                per_task = withheld.setdefault(str(op.get("op_id")).split("/", 1)[0], {})
                per_task[str(op.get("state"))] = per_task.get(str(op.get("state")), 0) + 1
        source.apply(summary, counts=kept is not None or spill is not None)  # else the recorder's counts
        for task in source.head.get("tasks") or ():
            if not isinstance(task, dict):
                continue
            extra = withheld.get(str(task.get("key")))
            if extra and isinstance(task.get("counts"), dict):
                for state, n in extra.items():
                    task["counts"][state] = task["counts"].get(state, 0) + n
        if status != "completed":
            expected = sum(k.expected or 0 for k in rec.kinds.values())
            unsettled = sorted(rec.unsettled)
            source.head["unfinished"] = {
                "sent_without_outcome": unsettled,
                "not_sent_estimate": max(0, expected - summary.total - len(unsettled)),
            }
        source.head["exit_code"] = self.exit_code(source.head)
        return source

    def exit_code(self, report: Mapping[str, Any]) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        if isinstance(self.failure, BAD_INPUT) and not _wrote(report):
            # e.g. a journal of another job, a stale migration plan: refused before any write
            return EXIT_USAGE
        counts = report.get("counts") or {}
        if report.get("status") != "completed" or counts.get("failed") or counts.get("skipped"):
            return EXIT_FAILED
        return EXIT_OK

    # --- the end ------------------------------------------------------------------------------------------
    def finish(self) -> int:
        """Write the reports, print the summary and the advice; the exit code. (The report is
        :attr:`source` after :meth:`run`, else :attr:`report` as a caller set it.)"""
        source = self.source if self.source is not None else StreamedReport.of(self.report)
        if source.summary is None:
            source.summarise(fill_only=True)
        report = source.head
        written: list[Path] = []
        try:
            written = write_reports(source, self.reports)
        except OSError as err:
            self.view.message(f"cannot write a report: {err}", level="error", event="report_error")
        code = int(report["exit_code"])
        counts = report.get("counts") or {}
        runs = all_runs_summary(report)
        self.view.message(
            f"Job {report['job_id']}: {counts.get('succeeded', 0):,} succeeded, {counts.get('failed', 0):,} "
            f"failed, {counts.get('skipped', 0):,} skipped in {float(report.get('elapsed_s') or 0):.1f} s — "
            f"{report.get('http_requests', 0):,} HTTP requests, {report.get('graph_calls', 0):,} Graph calls, "
            f"{report.get('retries', 0):,} retries, {report.get('throttle_events', 0):,} throttle events"
            + (f"; {runs}" if runs else ""),
            event="job_finished",
            exit_code=code,
            status=report.get("status"),
            counts=counts,
            http_requests=report.get("http_requests"),
            graph_calls=report.get("graph_calls"),
            retries=report.get("retries"),
            throttle_events=report.get("throttle_events"),
            elapsed_s=report.get("elapsed_s"),
            all_runs=report.get("all_runs"),
            reports=[str(p) for p in written],
        )
        for group in (report.get("failures_by_code") or [])[:10]:
            self.view.message(
                "  " + describe_failure_group(group),
                level="warning",
                event="failure_group",
                code=group.get("code"),
                subcode=group.get("subcode"),
                count=group.get("count"),
                error_message=group.get("message"),
                examples=group.get("examples"),
            )
        for throttled in throttle_summary(report.get("throttles") or ()):
            self.view.message(
                f"  throttled {throttled['count']}×: ad account {throttled['account_id']} "
                f"({throttled['buc_type']}), Graph code {throttled['codes']}, paused "
                f"{duration(throttled['parked_s'])} in all; last resumed at {throttled['last_resumes_at']}",
                level="warning",
                event="throttle_summary",
                **throttled,
            )
        for wait in report.get("waits") or ():
            if not isinstance(wait, Mapping):
                continue
            subject = wait_subject(str(wait.get("scope")), wait.get("account_id"), wait.get("buc_type"))
            waited = duration(float(wait.get("waited_s_total") or 0.0))
            self.view.message(
                f"  waited {wait.get('waits', 0)}×: {subject}, {waited} in all; last: {wait.get('last_reason')}",
                event="wait_summary",
                **wait,
            )
        auth = auth_error(report.get("failures_by_code") or ())
        summary = source.summary
        if auth is not None:
            self.view.message(auth_advice(auth), level="error", event="auth_error", code=auth.get("code"))
        elif _no_graph_answer(summary):
            url = str(self.meta.get("graph_url") or self.config.graph_url)
            rec = self.recorder
            if rec.answers:  # the server answered, just not as the Graph API does: not "unreachable"
                self.view.message(
                    unanswered_advice(url, rec.answers, rec.unanswered),
                    level="error",
                    event="no_graph_answer",
                    url=url,
                    http_statuses={str(k): v for k, v in sorted(rec.answers.items())},
                    unanswered=rec.unanswered,
                )
            else:
                self.view.message(unreachable_advice(url), level="error", event="unreachable", url=url)
        if self.interrupted:
            unfinished = report.get("unfinished") or {}
            head = (
                f"Interrupted: {sum(counts.values()):,} operations reached a terminal state; "
                f"{len(unfinished.get('sent_without_outcome') or ()):,} were sent without an outcome yet (the "
                f"server may have applied them); about {unfinished.get('not_sent_estimate', 0):,} were not sent."
            )
            if self.resume_hint:
                tail = f"To finish the job without repeating completed work: {self.resume_hint}"
            else:
                tail = (
                    "This run kept no journal, so it cannot be resumed: running the job again repeats what "
                    "already succeeded (see the report). Run with --journal PATH to make a run resumable."
                )
            self.view.message(
                f"{head}\n{tail}", level="warning", event="resume_hint", command=self.resume_hint
            )
        if written:
            self.view.message("Reports: " + ", ".join(str(p) for p in written), event="reports")
        return code


def _wrote(report: Mapping[str, Any]) -> bool:
    """Whether the run may have changed anything: requests went out and some operation was not a read (a
    bad input found by reads alone, e.g. a plan row whose campaign is gone, still exits 2)."""
    kinds = report.get("kinds") or {}
    return bool(report.get("http_requests")) and any(kind != "read" for kind in kinds)


def _no_graph_answer(summary: OperationsSummary | None) -> bool:
    """Nothing succeeded, and every failure lacks a Graph error: no request got a Graph answer."""
    if summary is None or summary.counts.get("succeeded"):
        return False
    return 0 < summary.failed_without_answer == summary.counts.get("failed", 0)


def throttle_summary(throttles: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Throttles per (ad account, BUC type): how often, the codes, the time parked, the last regain time."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for t in throttles:
        key = (str(t.get("account_id")), str(t.get("buc_type")))
        group = groups.setdefault(
            key,
            {"account_id": key[0], "buc_type": key[1], "count": 0, "codes": "", "parked_s": 0.0},
        )
        group["count"] += 1
        code = f"{t.get('code')}/{t.get('subcode')}" if t.get("subcode") else str(t.get("code"))
        if code not in group["codes"].split(", "):
            group["codes"] = ", ".join(filter(None, [group["codes"], code]))
        group["parked_s"] = round(group["parked_s"] + float(t.get("parked_s") or 0.0), 3)
        group["last_resumes_at"] = t.get("resumes_at")
    return list(groups.values())


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
