"""``MetaJobOperator``: run a bulk job file (any task types) through ``run_job`` as a deferrable task.

The per-verb operators (create, copy, Advantage+ migration, status, marketing messages) are this operator
with a one-task job built from their arguments. Unlike :class:`~airflow_provider.operators.MetaBulkOperator`
(a fixed list of operations), these jobs read Graph before they know what to write (selectors, copy
fallbacks, migration preflight), so they run through :func:`bulk_engine.operations.run_job` with the engine's
journal, like ``bulk-engine run JOB --journal PATH``:

- **Job id**: :func:`~airflow_provider.progress.job_id_for` of ``dag_id / run_id / task_id / map_index`` — the
  same on every deferral and retry, on any worker. ``run_job`` names the n-th engine job of each task
  ``<job id>/<task key>/<n>`` (:meth:`~bulk_engine.operations.task.TaskReport.for_env`), so creates carry
  the same idempotency keys on every try (docs/exactly-once.md).
- **Journal** (``journal_path``, templated, ``{job_id}`` is replaced): a local SQLite file by default. A new
  try or a resumed deferral runs the same job again and the journal answers everything that already
  succeeded — reads included, so the flow takes the same decisions — and sends only the rest. With
  ``journal_path=None`` (or a journal the worker cannot see) the engine rebuilds from the keys carried by the
  created objects: keyed creates and idempotent updates are safe, ``/copies`` and message sends are not.
- **Deferral**: a pre-flight read of the task's ad accounts, and the engine's ``on_park`` hook: an account the
  governor parks for at least ``defer_after_s`` is stopped, the job breaks off once the other accounts are
  done, and the task defers with :class:`~airflow_provider.triggers.ThrottleCooldownTrigger`;
  ``execute_complete`` runs the job again (same job id: the journal / keys make that safe).
- **Results**: the full report (``JobReport.to_dict()`` plus ``deferrals``, ``waited_s``, ``journal`` and the
  Airflow keys) goes to ``report_path`` (a local path or an object-storage URL); a small summary is the
  XCom ``return_value`` (``counts``, ``ok``, ``report_path``, counters, per-task counts and what the verb
  adds, e.g. the migration's blocked campaigns).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import XComArg
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from bulk_engine import (
    BulkEngine,
    EngineConfig,
    JobValidationError,
    JournalError,
    MemoryJournal,
    SqliteJournal,
)
from bulk_engine.operations import CompileContext, JobReport, JobSpec, load_job, parse_job, run_job
from bulk_engine.scrub import scrubbing_logs

from .._graph import run_sync
from ..progress import STAT_KEYS, Progress, ProgressStore
from .base import MetaOperatorBase, preflight
from .bulk import write_report

if TYPE_CHECKING:
    from airflow.sdk import Context

    from bulk_engine import Journal

DEFAULT_JOURNAL = "{airflow_home}/meta_bulk/journals/{job_id}.sqlite"

__all__ = ["DEFAULT_JOURNAL", "MetaJobOperator", "MetaTaskOperator", "Parked", "as_list", "as_mapping"]


class Parked(Exception):
    """The engine stopped accounts the governor parked for long: the job breaks off so the task can defer."""

    def __init__(self, resume_at: Mapping[str, float]) -> None:
        super().__init__(f"parked: {sorted(resume_at)}")
        self.resume_at = dict(resume_at)  # account → wall-clock time it may send again


class ParkGuard:
    """The engine as ``run_job`` sees it, stopping accounts parked for at least ``threshold_s``.

    Each engine job ends normally (the other accounts finish); if it stopped an account, :class:`Parked` is
    raised after it, which breaks off ``run_job``. ``threshold_s=None``: never stop (wait on the worker).
    """

    def __init__(self, engine: BulkEngine, threshold_s: float | None) -> None:
        self.engine = engine
        self.threshold_s = threshold_s
        self.resume_at: dict[str, float] = {}

    async def _on_park(self, park: Any) -> bool:
        if self.threshold_s is None or float(park.seconds) < self.threshold_s:
            return False
        self.resume_at[str(park.account_id)] = time.time() + float(park.seconds)
        return True

    def _check(self, result: Any) -> None:
        if result.stopped:
            raise Parked(self.resume_at)

    async def run(self, job: Any, *, job_id: str | None = None, fingerprint: str | None = None) -> Any:
        result = await self.engine.run(job, job_id=job_id, fingerprint=fingerprint, on_park=self._on_park)
        self._check(result)
        return result

    async def stream(
        self, job: Any, *, job_id: str | None = None, fingerprint: str | None = None
    ) -> AsyncIterator[Any]:
        run = self.engine.stream(job, job_id=job_id, fingerprint=fingerprint, on_park=self._on_park)
        async for outcome in run:
            yield outcome
        self._check(run.result)


class MetaJobOperator(MetaOperatorBase):
    """Run a job file (or the same document inline) through the bulk engine's operations layer.

    :param job_file: path of a YAML/JSON job file (relative CSV inputs resolve next to it). Templated.
    :param job: the job document inline (a dict, or its JSON text). Templated.
    :param journal_path: the engine journal (SQLite) that makes retries and deferrals resume without
        duplicates; ``{job_id}`` and ``{airflow_home}`` are replaced. Default: one file per job under
        ``$AIRFLOW_HOME/meta_bulk/journals`` (local to the worker: point it at shared storage when a retry
        may land on another worker). ``None``: no journal file (the created objects' keys only). Templated.

    Other arguments as :class:`~airflow_provider.operators.MetaBulkOperator`: ``meta_conn_id``,
    ``report_path``, ``report_conn_id``, ``deferrable``, ``defer_after_s``, ``cooldown_poll_s``,
    ``max_deferrals``, ``preflight``, ``fail_on_errors``, ``validate_only``, ``engine_overrides``.
    """

    template_fields: Sequence[str] = ("meta_conn_id", "job_file", "job", "report_path", "journal_path")
    template_fields_renderers = {"job": "json"}
    ui_color = "#e7f0fe"

    def __init__(
        self,
        *,
        job_file: str | XComArg | None = None,
        job: Mapping[str, Any] | str | XComArg | None = None,
        journal_path: str | None = DEFAULT_JOURNAL,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if type(self).build_job is MetaJobOperator.build_job and (job_file is None) == (job is None):
            raise ValueError(f"{type(self).__name__} takes exactly one of job_file or job")
        self.job_file = job_file
        self.job = job
        self.journal_path = journal_path

    # --- Airflow entry points ----------------------------------------------------------------------
    def execute(self, context: Context) -> dict[str, Any]:
        job_id, store = self._job_id(context), self._store(context)
        progress = store.load(job_id) or Progress(job_id)
        return self._run(context, progress, store)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        job_id, store = self._job_id(context), self._store(context)
        progress = store.load(job_id) or Progress(job_id)
        self._resumed(progress)
        self.log.info("job %s resumes after cool-down %d: %s", job_id, progress.deferrals, event)
        regained = (event or {}).get("status") == "regained" and (event or {}).get("account_id")
        return self._run(context, progress, store, usable=frozenset([str(regained)] if regained else []))

    # --- the job -------------------------------------------------------------------------------------
    def build_job(self) -> JobSpec:
        """The job to run; the per-verb operators build a one-task job from their arguments."""
        job_file, job = self.job_file, self.job
        if isinstance(job_file, XComArg) or isinstance(job, XComArg):
            raise JobValidationError("an upstream XCom was not resolved before execute()")
        if job_file is not None:
            return load_job(Path(job_file))
        data = json.loads(job) if isinstance(job, str) else job
        return parse_job(dict(data or {}), source=f"<{self.task_id}>")

    def summarize(self, report: JobReport) -> dict[str, Any]:
        """What the verb adds to the XCom summary (keep it small: the report file has everything)."""
        return {}

    def accounts(self, spec: JobSpec, ctx: CompileContext) -> list[str]:
        """The ad accounts the job writes to or reads from (for the pre-flight read)."""
        found: list[str] = []
        for index, task in enumerate(spec.tasks):
            found.append(spec.task_env(index, ctx).account_id)
            target = getattr(task, "target_account_id", None)
            if target:
                found.append(str(target))
        return list(dict.fromkeys(found))

    def _run(
        self, context: Context, progress: Progress, store: ProgressStore, usable: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        """Run the job; ``usable``: accounts a fresh read found unblocked (the cool-down trigger's)."""
        hook = self.hook()
        config = hook.get_engine_config()
        scrubber = self._output_scrubber(config)
        ctx = CompileContext(default_account_id=hook.default_ad_account_id, validate_only=self.validate_only)
        try:
            spec = self.build_job()
            spec.ensure_checked()
            accounts = self.accounts(spec, ctx)
        except JobValidationError as err:
            raise AirflowFailException(
                scrubber.text(f"the job is invalid; nothing was sent:\n{err}")
            ) from None
        if self._can_defer(store) and self.preflight:
            with scrubbing_logs(scrubber):
                read = run_sync(lambda: preflight(config, accounts))
            self._defer_if_stalled(progress, store, accounts, read.blocked, left="the whole job")
            usable |= read.usable
        with self._journal(progress.job_id) as (journal, location), scrubbing_logs(scrubber):

            def run(job: JobSpec, suffix: str = "") -> JobReport:
                return self.run_spec(
                    config, journal, job, ctx, progress, store, accounts, suffix=suffix, usable=usable
                )

            report = self.execute_job(spec, run)
        return self._finish(context, report, progress, store, location)

    def execute_job(self, spec: JobSpec, run: Callable[[JobSpec, str], JobReport]) -> JobReport:
        """Run the job (``run(spec, suffix)`` runs one as job ``<job id><suffix>``); the migration gate
        overrides this to run a preflight first."""
        return run(spec, "")

    def stop_after(self, report: JobReport) -> BaseException | None:
        """An exception to end the task with once the report and summary are out (e.g. a gate's)."""
        return None

    def run_spec(
        self,
        config: EngineConfig,
        journal: Journal,
        spec: JobSpec,
        ctx: CompileContext,
        progress: Progress,
        store: ProgressStore,
        accounts: Sequence[str],
        *,
        suffix: str = "",
        usable: Collection[str] = (),
    ) -> JobReport:
        """Run ``spec`` as job ``<job id><suffix>``; defers (raises) when the engine stopped a parked account.

        The engine starts from the parks the journal remembers (it defers at once while they run), except
        for ``usable`` accounts: the pre-flight read just found them unblocked, which is fresher news."""
        job_id = progress.job_id + suffix
        threshold = self.defer_after_s if self._can_defer(store) else None

        async def go() -> JobReport:
            async with BulkEngine(config, journal=journal) as engine:
                for account in usable:
                    engine.governor.clear_parks(account, "the pre-flight read found it usable")
                return await run_job(ParkGuard(engine, threshold), spec, ctx, job_id=job_id)

        try:
            return run_sync(go)
        except Parked as parked:
            self._defer_if_stalled(
                progress,
                store,
                list(parked.resume_at),
                parked.resume_at,
                left="part of the job",
                required=True,
            )
            raise AirflowException("unreachable: the task deferred") from None
        except JournalError as err:
            message = f"job {job_id}: the journal refused the job: {err}"
            raise AirflowFailException(self.scrubber.text(message)) from None
        except JobValidationError as err:
            message = f"the job is invalid; nothing was sent:\n{err}"
            raise AirflowFailException(self.scrubber.text(message)) from None

    @contextlib.contextmanager
    def _journal(self, job_id: str) -> Iterator[tuple[Journal, str | None]]:
        if self.journal_path is None:
            yield MemoryJournal(), None
            return
        home = os.environ.get("AIRFLOW_HOME") or str(Path.home() / "airflow")
        path = Path(str(self.journal_path).replace("{airflow_home}", home).replace("{job_id}", job_id))
        path.parent.mkdir(parents=True, exist_ok=True)
        journal = SqliteJournal(path)
        try:
            yield journal, str(path)
        finally:
            journal.close()

    def _finish(
        self,
        context: Context,
        job_report: JobReport,
        progress: Progress,
        store: ProgressStore,
        journal: str | None,
    ) -> dict[str, Any]:
        store.save(progress)
        scrub = self.scrubber.scrub_value
        report = job_report.to_dict()
        report.update(
            deferrals=progress.deferrals,
            waited_s=round(progress.waited_s, 3),
            journal=journal,
            airflow=airflow_keys(context),
        )
        report = scrub(report)
        location = write_report(self.report_path, report, self.report_conn_id) if self.report_path else None
        summary = {
            "job_id": progress.job_id,
            "counts": report["counts"],
            "ok": job_report.ok,
            "report_path": location,
            **{key: report[key] for key in (*STAT_KEYS, "elapsed_s", "deferrals")},
            "tasks": [{"key": t.key, "type": t.type, "counts": t.counts} for t in job_report.tasks],
            **self.summarize(job_report),
        }
        summary = scrub(summary)  # every XCom value: pushed below or returned (return_value)
        self.log.info("job %s done: %s", progress.job_id, json.dumps(summary, default=str))
        stop = self.stop_after(job_report)
        if stop is not None:
            context["ti"].xcom_push(key="return_value", value=summary)
            raise stop
        if self.fail_on_errors and not summary["ok"]:
            context["ti"].xcom_push(key="return_value", value=summary)
            raise AirflowException(
                f"job {progress.job_id}: {summary['counts']['failed']} failed, "
                f"{summary['counts']['skipped']} skipped (report: {location or 'not written'})"
            )
        return summary


def airflow_keys(context: Context) -> dict[str, Any]:
    ti = context["ti"]
    return {
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "task_id": ti.task_id,
        "map_index": getattr(ti, "map_index", -1),
        "try_number": getattr(ti, "try_number", None),
    }


class MetaTaskOperator(MetaJobOperator):
    """A one-task job built from the operator's own arguments (the per-verb operators).

    :param account_id: the task's ad account (default: the connection's). Templated in subclasses.
    :param task_key: prefix of the task's operation ids (default ``t0``); keep it stable across DAG edits,
        the idempotency keys derive from it.
    """

    task_type = ""

    def __init__(self, *, account_id: str | None = None, task_key: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.account_id = account_id
        self.task_key = task_key

    def task_fields(self) -> dict[str, Any]:
        """The task's fields (``None`` values are left out so the task's defaults apply)."""
        raise NotImplementedError

    def build_job(self) -> JobSpec:
        task = {key: value for key, value in self.task_fields().items() if value is not None}
        if self.task_key:
            task["key"] = self.task_key
        data = {"account_id": self.account_id or None, "tasks": [{"type": self.task_type, **task}]}
        return parse_job({k: v for k, v in data.items() if v is not None}, source=f"<{self.task_id}>")


def as_list(value: Any) -> list[Any] | None:
    """A templated list field: a list, JSON text of one (a rendered template), or a comma-separated string."""
    if value is None or isinstance(value, list | tuple):
        return None if value is None else list(value)
    text = str(value).strip()
    if text.startswith("["):
        loaded = json.loads(text)
        return list(loaded) if isinstance(loaded, list) else [loaded]
    return [part.strip() for part in text.split(",") if part.strip()]


def as_mapping(value: Any) -> dict[str, Any] | None:
    """A templated object field: a mapping or its JSON text."""
    if value is None:
        return None
    if isinstance(value, str):
        value = json.loads(value)
    if hasattr(value, "model_dump"):
        value = value.model_dump(exclude_none=True)
    return dict(value)
