"""The one operator core: every Meta operator runs a job through ``run_job`` on the engine's journal.

:class:`MetaOperatorBase` is the whole task lifecycle; subclasses only say which job to run
(:meth:`~MetaOperatorBase.build_job`) and what to add to the XCom summary. ``MetaJobOperator`` runs a job file,
``MetaBulkOperator`` a list of raw operations (a ``type: operations`` task), the per-verb operators a one-task
job built from their arguments.

- **Job id**: :func:`job_id_for` of ``dag_id / run_id / task_id / map_index`` — the same on every deferral,
  retry and clear, on any worker. ``run_job`` names the n-th engine job of each task ``<job id>/<task key>/<n>``,
  so creates carry the same idempotency keys on every try (docs/exactly-once.md).
- **Journal** (``journal_path``; ``{job_id}`` and ``{airflow_home}`` are replaced): a SQLite file per task
  instance by default; ``journal_conn_id`` (a PostgreSQL connection) instead puts every task's jobs in one
  schema every worker reaches — the setting for the Celery and Kubernetes executors, where a retry or a
  resumed deferral runs on another machine. Every try, resumed deferral and re-run after a clear runs the same job again; the
  journal answers what already ended (reads included, so the flows take the same decisions) and the rest is
  sent — nothing twice. It also remembers parks and usage readings, so a resumed task starts paced.
- **Deferral**: a pre-flight read of the job's accounts, and every hold the engine offers (a park, or a
  pacing wait on a full usage window) lasting ``defer_after_s`` or more: the account is stopped, the job breaks
  off once the other accounts are done, and the task defers with the wait-only
  :class:`~airflow_provider.triggers.ThrottleCooldownTrigger` until the earliest regain time, with ``timeout=``
  what is left of ``execution_timeout``. ``execute_complete`` runs the job again. Waiting for Graph to
  process a video defers alike (:mod:`~airflow_provider.operators.waits`).
- **Stopping**: ``on_kill`` (Airflow's SIGTERM: mark failed, clear, timeout) stops the engine gracefully —
  nothing new is sent, the batches in flight answer and are journaled — and the task ends with what is left
  for the next try.
- **Results**: the full report (``JobReport.to_dict()`` plus ``deferrals``, ``waited_s``, ``journal`` and the
  Airflow keys) goes to ``report_path`` (a local path or an object-storage URL); the XCom ``return_value`` is
  a small summary whose counters cover every run of the job (``all_runs``: each try, deferral and re-run,
  from the journal), with the ``job_id`` and ``journal`` a later task needs to read this one's journal (a
  migration's rollback). A progress line is logged every ``progress_every_s`` seconds while the job runs.
  Journal, report and summary are built in :mod:`~airflow_provider.operators.outputs`.

Secrets: :meth:`MetaOperatorBase._output_scrubber` makes the task's one :class:`~bulk_engine.scrub.Scrubber`
(token, app secret, ``appsecret_proof``); XComs, the report file, the engine's log records and the task's
messages go through it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn

import anyio
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from bulk_engine import EngineConfig, JobValidationError, JournalError
from bulk_engine.operations import CompileContext, JobReport, JobSpec, run_job
from bulk_engine.protocol.usage import UsageSnapshot
from bulk_engine.scrub import Scrubber, scrubbing_logs
from bulk_engine.wording import duration

from .._graph import GraphReadError, graph_get, run_sync
from ..hooks.meta_graph import DEFAULT_CONN_ID, MetaGraphHook
from ..links import AdsManagerLink, ads_manager_url
from ..reports import write_report
from ..running import LongHold, Stopped, TaskRun
from ..triggers.async_requests import AsyncRequestSetTrigger
from ..triggers.throttle import ThrottleCooldownTrigger
from .outputs import (
    COUNTERS,
    DEFAULT_JOURNAL,
    airflow_keys,
    output_scrubber,
    task_journal,
    task_report,
    task_summary,
)
from .waits import DeferringWaits

if TYPE_CHECKING:
    from airflow.sdk import Context

    from bulk_engine import Journal

PREFLIGHT_CONCURRENCY = 8

__all__ = [
    "COUNTERS",
    "DEFAULT_JOURNAL",
    "MetaOperatorBase",
    "Preflight",
    "Resume",
    "airflow_keys",
    "default_deferrable",
    "job_id_for",
    "job_id_of",
]


def job_id_for(dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
    """The engine job id of one task instance: stable across deferrals, retries, clears and workers.

    ``airflow-`` + the first 32 hex digits of SHA-256 over ``dag_id / run_id / task_id / map_index``, so it
    is safe in file names and object-storage keys whatever the run id contains.
    """
    key = "\x1f".join((dag_id, run_id, task_id, str(map_index)))
    return "airflow-" + hashlib.sha256(key.encode()).hexdigest()[:32]


def job_id_of(ti: Any) -> str:
    """:func:`job_id_for` of a task instance (``map_index`` ``None`` or -1: not mapped)."""
    map_index = getattr(ti, "map_index", -1)
    return job_id_for(ti.dag_id, ti.run_id, ti.task_id, -1 if map_index is None else int(map_index))


def default_deferrable() -> bool:
    """``[operators] default_deferrable``, as the official providers read it."""
    from airflow.sdk.configuration import conf

    return bool(conf.getboolean("operators", "default_deferrable", fallback=True))


@dataclass(frozen=True)
class Resume:
    """What one try carries across its deferrals (in the trigger's event): counts and the try's start."""

    started_at: float  # wall epoch of the try's first execute (execution_timeout counts from it)
    deferrals: int = 0
    waited_s: float = 0.0
    deferred_at: float | None = None

    @classmethod
    def from_event(cls, data: Mapping[str, Any] | None) -> Resume:
        data = dict(data or {})
        return cls(
            started_at=float(data.get("started_at") or time.time()),
            deferrals=int(data.get("deferrals") or 0),
            waited_s=float(data.get("waited_s") or 0.0),
            deferred_at=None if data.get("deferred_at") is None else float(data["deferred_at"]),
        )

    def resumed(self, now: float) -> Resume:
        waited = self.waited_s + (max(0.0, now - self.deferred_at) if self.deferred_at is not None else 0.0)
        return replace(self, deferrals=self.deferrals + 1, waited_s=waited, deferred_at=None)


class MetaOperatorBase(BaseOperator):
    """Run a bulk job through the engine as a deferrable task (see the module docstring).

    :param meta_conn_id: ``meta_graph`` connection (token, app secret, API version, base URL, default ad account).
    :param journal_path: the engine journal (SQLite) that makes retries, deferrals and clears resume without
        duplicates; ``{job_id}`` and ``{airflow_home}`` are replaced. Default: one file per task instance under
        ``$AIRFLOW_HOME/meta_bulk/journals`` (local to the worker: see docs/airflow.md for executors whose
        retries land on another machine). ``None``: no journal file (the created objects' keys only). Templated.
    :param journal_conn_id: a PostgreSQL connection (type ``postgres``, or a ``postgresql://`` URI) holding
        the journal shared by every worker (Celery, Kubernetes executors); overrides ``journal_path``.
        See :mod:`airflow_provider.hooks.journal`.
    :param journal_schema: the PostgreSQL schema of that journal (default: the connection's extra
        ``journal_schema``, else ``meta_bulk``).
    :param report_path: where to write the full JSON report: a local path or an object-storage URL. Templated.
    :param report_conn_id: Airflow connection for object-storage report paths.
    :param deferrable: free the worker while the engine would wait (default: ``[operators] default_deferrable``).
    :param defer_after_s: defer only when a wait is at least this long (default 120 s); shorter waits are
        spent on the worker.
    :param cooldown_poll_s: let the cool-down trigger read the account's usage every this many seconds and
        resume early when the block is lifted (default ``None``: wait for the announced regain time).
    :param max_deferrals: fail after this many cool-downs in one try (default 48).
    :param preflight: read each account's usage before sending (default ``True``; deferrable only).
    :param fail_on_errors: fail the task when operations failed or were skipped (default ``True``).
    :param validate_only: send writes with ``execution_options=["validate_only"]`` (Graph's dry run).
    :param progress_every_s: a progress line in the task log every this many seconds (default 60).
    :param engine_overrides: extra :class:`~bulk_engine.EngineConfig` fields (governor, retry…).
    :param backend: ``sync``, ``async`` or ``auto`` (docs/scale.md, "sync or async backend"; default: the
        engine's, sync). Deferrable with async: the task submits its request sets and defers on the wait-only
        :class:`~airflow_provider.triggers.AsyncRequestSetTrigger` while Meta works (no worker slot held),
        then collects the results from the journaled set.
    :param set_poll_s: seconds between the trigger's reads of a request set (default 30).
    """

    template_fields: Sequence[str] = ("meta_conn_id", "report_path", "journal_path")
    operator_extra_links = (AdsManagerLink(),)
    ui_color = "#e7f0fe"

    _scrubber: Scrubber | None = None
    _task_run: TaskRun | None = None
    ads_manager_url: str = ""  # set at the end of a run that created campaigns on Meta (the extra link)

    def __init__(
        self,
        *,
        meta_conn_id: str = DEFAULT_CONN_ID,
        journal_path: str | None = DEFAULT_JOURNAL,
        journal_conn_id: str | None = None,
        journal_schema: str | None = None,
        report_path: str | None = None,
        report_conn_id: str | None = None,
        deferrable: bool | None = None,
        defer_after_s: float = 120.0,
        cooldown_poll_s: float | None = None,
        max_deferrals: int = 48,
        preflight: bool = True,
        fail_on_errors: bool = True,
        validate_only: bool = False,
        progress_every_s: float = 60.0,
        engine_overrides: dict[str, Any] | None = None,
        backend: str | None = None,
        set_poll_s: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if defer_after_s < 0:
            raise ValueError("defer_after_s must be >= 0")
        if progress_every_s <= 0:
            raise ValueError("progress_every_s must be > 0")
        self.meta_conn_id = meta_conn_id
        self.journal_path = journal_path
        self.journal_conn_id = journal_conn_id
        self.journal_schema = journal_schema
        self.report_path = report_path
        self.report_conn_id = report_conn_id
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.defer_after_s = defer_after_s
        self.cooldown_poll_s = cooldown_poll_s
        self.max_deferrals = max_deferrals
        self.preflight = preflight
        self.fail_on_errors = fail_on_errors
        self.validate_only = validate_only
        self.progress_every_s = progress_every_s
        self.engine_overrides = engine_overrides
        if backend not in (None, "sync", "async", "auto"):
            raise ValueError(f"backend must be sync, async or auto, got {backend!r}")
        if set_poll_s <= 0:
            raise ValueError("set_poll_s must be > 0")
        self.backend = backend
        self.set_poll_s = set_poll_s

    # --- what subclasses say -------------------------------------------------------------------------
    def build_job(self) -> JobSpec:
        """The job to run (templates and upstream XComs are resolved by now)."""
        raise NotImplementedError

    def execute_job(self, spec: JobSpec, run: Callable[[JobSpec, str], JobReport]) -> JobReport:
        """Run the job (``run(spec, suffix)`` runs one as job ``<job id><suffix>``); the migration gate
        overrides this to run a preflight first."""
        return run(spec, "")

    def summarize(self, report: JobReport) -> dict[str, Any]:
        """What the verb adds to the XCom summary (keep it small: the report file has everything)."""
        return {}

    def check_journal(self, spec: JobSpec, journal: Journal) -> None:
        """Raise :class:`~bulk_engine.JobValidationError` when the job relies on journal content that is not
        there (a rollback naming a migration its journal does not hold); runs before any call."""

    def stop_after(self, report: JobReport) -> BaseException | None:
        """An exception to end the task with once the report and summary are out (e.g. a gate's)."""
        return None

    def accounts(self, spec: JobSpec, ctx: CompileContext) -> list[str]:
        """The ad accounts the job writes to or reads from (for the pre-flight read)."""
        found: list[str] = []
        for index, task in enumerate(spec.tasks):
            found.append(spec.task_env(index, ctx).account_id)
            found.extend(str(op.account_id) for op in getattr(task, "operations", ()) if op.account_id)
            target = getattr(task, "target_account_id", None)
            if target:
                found.append(str(target))
        return list(dict.fromkeys(found))

    # --- Airflow entry points ------------------------------------------------------------------------
    def execute(self, context: Context) -> dict[str, Any]:
        start = getattr(context["ti"], "start_date", None)
        return self._run(context, Resume(started_at=start.timestamp() if start else time.time()))

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        state = Resume.from_event((event or {}).get("task_state")).resumed(time.time())
        self.log.info(
            "job %s resumes after cool-down %d (%s): %s",
            self._job_id(context),
            state.deferrals,
            duration(state.waited_s),
            event,
        )
        regained = (event or {}).get("status") == "regained" and (event or {}).get("account_id")
        return self._run(context, state, usable=frozenset([str(regained)] if regained else []))

    def on_kill(self) -> None:
        """Airflow stops the task (mark failed, clear, timeout): stop sending, let what is in flight answer
        and be journaled; the next try resumes from the journal."""
        task_run = self._task_run
        if task_run is not None:
            self.log.warning("stop requested: no new batches; the batches in flight answer and are journaled")
            task_run.stop("Airflow stopped the task")

    # --- the run -------------------------------------------------------------------------------------
    def hook(self) -> MetaGraphHook:
        overrides = self.engine_overrides
        if self.backend is not None:
            overrides = {**(overrides or {}), "backend": self.backend}
        return MetaGraphHook(self.meta_conn_id, engine_overrides=overrides)

    @staticmethod
    def _job_id(context: Context) -> str:
        return job_id_of(context["ti"])

    def _run(self, context: Context, resume: Resume, usable: frozenset[str] = frozenset()) -> dict[str, Any]:
        """Run the job; ``usable``: accounts a fresh read found unblocked (the cool-down trigger's)."""
        job_id = self._job_id(context)
        hook = self.hook()
        config = hook.get_engine_config()
        scrubber = self._output_scrubber(config)
        ctx = CompileContext(default_account_id=hook.default_ad_account_id, validate_only=self.validate_only)
        try:
            spec = self.build_job()
            spec.ensure_checked()
            accounts = self.accounts(spec, ctx)
            expected = spec.summarize_kinds(ctx)
        except JobValidationError as err:
            raise AirflowFailException(
                scrubber.text(f"the job is invalid; nothing was sent:\n{err}")
            ) from None
        with self._journal(job_id) as (journal, location), scrubbing_logs(scrubber):
            try:  # what the job needs from the journal is there (a rollback's migration): before any call
                self.check_journal(spec, journal)
            except JobValidationError as err:
                raise AirflowFailException(
                    scrubber.text(f"the job is invalid; nothing was sent:\n{err}")
                ) from None
            readings: dict[str, UsageSnapshot] = {}
            if self.deferrable and self.preflight:
                read = run_sync(lambda: preflight(config, accounts))
                self._defer_if_all_held(context, resume, accounts, read.blocked)
                usable |= read.usable
                readings = read.readings
            # The read's news is fresh for the task's first engine only: a later one (the migration gate's
            # second job) starts from the parks and readings the first journaled since.
            news = [(usable, readings)]

            def run(job: JobSpec, suffix: str = "") -> JobReport:
                fresh_usable, fresh_readings = news.pop() if news else (frozenset(), {})
                return self._run_spec(
                    config, journal, job, ctx, job_id + suffix, expected, fresh_usable, fresh_readings
                )

            try:
                report = self.execute_job(spec, run)
            except LongHold as held:
                if held.sets:
                    self._defer_on_set(context, resume, held.sets)
                self._defer(context, resume, held.resume_at, held.reasons, left="part of the job")
        return self._finish(context, job_id, report, resume, location, config)

    def _run_spec(
        self,
        config: EngineConfig,
        journal: Journal,
        spec: JobSpec,
        ctx: CompileContext,
        job_id: str,
        expected: Mapping[str, int],
        usable: frozenset[str],
        readings: Mapping[str, UsageSnapshot],
    ) -> JobReport:
        """Run ``spec`` as job ``job_id``; raises :class:`LongHold` when the engine stopped held accounts."""
        task_run = TaskRun(
            config,
            journal=journal,
            log=self.log,
            scrubber=self.scrubber,
            title=f"job {job_id}",
            expected=expected,
            progress_every_s=self.progress_every_s,
            threshold_s=self.defer_after_s if self.deferrable else None,
        )
        self._task_run = task_run
        try:
            return run_sync(
                lambda: task_run.run(
                    lambda guard: run_job(DeferringWaits(guard, task_run), spec, ctx, job_id=job_id),
                    usable=usable,
                    readings=readings,
                )
            )
        except Stopped as stopped:
            raise AirflowException(
                f"job {job_id}: {stopped}; nothing new was sent after the stop and every batch in flight "
                "answered and was journaled: the next try finishes the job from the journal"
            ) from None
        except JournalError as err:  # in Airflow the job id comes from the DAG run: say what can be done here
            where = journal.location
            advice = (
                f" In Airflow a retried or cleared task keeps its job id: to run a changed job, trigger a new DAG "
                f"run, or delete {where} to forget the earlier one."
                if where not in ("memory", "none")
                else ""
            )
            raise AirflowFailException(self.scrubber.text(f"job {job_id}: {err}{advice}")) from None
        except JobValidationError as err:
            raise AirflowFailException(
                self.scrubber.text(f"the job is invalid; nothing was sent:\n{err}")
            ) from None
        finally:
            self._task_run = None

    # --- deferral ------------------------------------------------------------------------------------
    def _defer_if_all_held(
        self, context: Context, resume: Resume, accounts: Sequence[str], blocked: Mapping[str, float]
    ) -> None:
        """Defer at once when the pre-flight read found every account blocked for ``defer_after_s`` or more."""
        now = time.time()
        if not accounts or any(blocked.get(a, now) - now < self.defer_after_s for a in accounts):
            return
        reasons = {a: "the pre-flight read reports it blocked" for a in accounts}
        self._defer(context, resume, {a: blocked[a] for a in accounts}, reasons, left="the whole job")

    def _defer(
        self,
        context: Context,
        resume: Resume,
        resume_at: Mapping[str, float],
        reasons: Mapping[str, str],
        *,
        left: str,
    ) -> NoReturn:
        """Defer until the earliest of ``resume_at`` (account → wall time); fails past ``max_deferrals``."""
        job_id = self._job_id(context)
        if resume.deferrals >= self.max_deferrals:
            raise AirflowException(
                f"job {job_id}: still held after {resume.deferrals} cool-downs; {left} left "
                "(the next try resumes from the journal)"
            )
        now = time.time()
        account = min(resume_at, key=lambda a: resume_at[a])
        timeout = self._time_left(resume, now)
        if timeout is not None and timeout <= timedelta(0):
            raise AirflowException(f"job {job_id}: execution_timeout reached with {left} left")
        wait = max(0.0, resume_at[account] - now)
        until = time.strftime("%H:%M:%S UTC", time.gmtime(resume_at[account]))
        self.log.info(
            "job %s: %s waits %s (%s); %s left: deferring until %s%s",
            job_id,
            account,
            duration(wait),
            self.scrubber.text(reasons.get(account, "held")),
            left,
            until,
            f" (execution_timeout leaves {duration(timeout.total_seconds())})" if timeout is not None else "",
        )
        self.defer(
            trigger=ThrottleCooldownTrigger(
                account_id=account,
                resume_at_epoch=resume_at[account],
                conn_id=self.meta_conn_id if self.cooldown_poll_s else None,
                poll_s=self.cooldown_poll_s,
                task_state=asdict(replace(resume, deferred_at=now)),
            ),
            method_name="execute_complete",
            timeout=timeout,
        )

    def _defer_on_set(self, context: Context, resume: Resume, sets: Mapping[str, str]) -> NoReturn:
        """Defer until an async request set the job submitted is complete (the first; the resumed run
        collects every completed one and defers again on one still in progress)."""
        job_id = self._job_id(context)
        if resume.deferrals >= self.max_deferrals:
            raise AirflowException(
                f"job {job_id}: still waiting for request sets after {resume.deferrals} deferrals "
                "(the next try resumes from the journal)"
            )
        now = time.time()
        timeout = self._time_left(resume, now)
        if timeout is not None and timeout <= timedelta(0):
            raise AirflowException(f"job {job_id}: execution_timeout reached while Meta processes its sets")
        account, set_id = next(iter(sets.items()))
        self.log.info(
            "job %s: %d async request set(s) submitted; deferring until set %s of %s is complete",
            job_id,
            len(sets),
            set_id,
            account,
        )
        self.defer(
            trigger=AsyncRequestSetTrigger(
                conn_id=self.meta_conn_id,
                set_id=set_id,
                poll_s=self.set_poll_s,
                account_id=account,
                task_state=asdict(replace(resume, deferred_at=now)),
            ),
            method_name="execute_complete",
            timeout=timeout,
        )

    def _time_left(self, resume: Resume, now: float) -> timedelta | None:
        """What is left of ``execution_timeout`` for this try (counted from its first start)."""
        if self.execution_timeout is None:
            return None
        return self.execution_timeout - timedelta(seconds=now - resume.started_at)

    # --- outputs (outputs.py: the journal, the report, the summary) -------------------------------------
    def _output_scrubber(self, config: EngineConfig) -> Scrubber:
        """The scrubber of this task's outputs (:func:`~.outputs.output_scrubber`), kept for :attr:`scrubber`."""
        self._scrubber = output_scrubber(config)
        return self._scrubber

    @property
    def scrubber(self) -> Scrubber:
        """What every XCom value, report and message of the task goes through (see :meth:`_output_scrubber`)."""
        return self._scrubber if self._scrubber is not None else Scrubber(())

    def _journal(self, job_id: str) -> contextlib.AbstractContextManager[tuple[Journal, str | None]]:
        """The task instance's journal and its location (:func:`~.outputs.task_journal`)."""
        return task_journal(
            job_id=job_id,
            journal_path=self.journal_path,
            journal_conn_id=self.journal_conn_id,
            journal_schema=self.journal_schema,
            scrubber=self.scrubber,
        )

    def _finish(
        self,
        context: Context,
        job_id: str,
        job_report: JobReport,
        resume: Resume,
        journal: str | None,
        config: EngineConfig,
    ) -> dict[str, Any]:
        report = task_report(
            job_report,
            context,
            deferrals=resume.deferrals,
            waited_s=resume.waited_s,
            journal=journal,
            scrubber=self.scrubber,
        )
        location = write_report(self.report_path, report, self.report_conn_id) if self.report_path else None
        summary = task_summary(
            job_id,
            job_report,
            report,
            location=location,
            extra=self.summarize(job_report),
            scrubber=self.scrubber,
        )
        self.ads_manager_url = ads_manager_url(config.graph_url, job_report.outcomes)
        total = sum(summary["counts"].values())
        if total and report.get("from_journal", 0) == total and not report.get("http_requests"):
            self.log.info(
                "job %s: every operation had ended in an earlier run (journal): nothing was sent", job_id
            )
        self.log.info("job %s done: %s", job_id, json.dumps(summary, default=str))
        stop = self.stop_after(job_report)
        if stop is not None:
            context["ti"].xcom_push(key="return_value", value=summary)
            raise stop
        if self.fail_on_errors and not summary["ok"]:
            context["ti"].xcom_push(key="return_value", value=summary)
            raise AirflowException(
                f"job {job_id}: {summary['counts']['failed']} failed, "
                f"{summary['counts']['skipped']} skipped (report: {location or 'not written'})"
            )
        return summary


@dataclass(frozen=True)
class Preflight:
    """What one read of each account said just now."""

    blocked: dict[str, float]  # account → wall-clock regain time
    usable: frozenset[str]  # accounts the read found not blocked (fresher than a park a journal remembers)
    readings: dict[str, UsageSnapshot] = field(default_factory=dict)  # account → its usage headers


async def preflight(config: EngineConfig, accounts: Sequence[str]) -> Preflight:
    """Read each account once (``?fields=id``): which are blocked and until when, which are usable."""
    limiter = anyio.CapacityLimiter(PREFLIGHT_CONCURRENCY)
    blocked: dict[str, float] = {}
    usable: set[str] = set()
    readings: dict[str, UsageSnapshot] = {}

    async def check(account: str) -> None:
        async with limiter:
            try:
                read = await graph_get(config, account, {"fields": "id"}, account_id=account)
            except GraphReadError:
                return  # the engine will meet the same problem and report it per operation
            readings[account] = read.usage
            regain = read.regain_after_s(account)
            if regain > 0:
                blocked[account] = time.time() + regain
            else:
                usable.add(account)

    async with anyio.create_task_group() as tg:
        for account in accounts:
            tg.start_soon(check, account)
    return Preflight(blocked, frozenset(usable), readings)
