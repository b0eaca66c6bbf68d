"""``MetaBulkOperator``: run one bulk job through the engine as a deferrable Airflow task.

Lifecycle of one task instance:

1. ``execute`` compiles the job (``job_file`` / ``job`` / ``operations``, all templated), loads the
   progress kept for this task instance (see :mod:`airflow_provider.progress`) and drops what already
   ended. On a *new try* failed and skipped operations run again; succeeded ones never do.
2. Pre-flight (``deferrable`` and ``preflight``): one read per ad account with work left. If every such
   account is blocked by the rate limiter for at least ``defer_after_s``, the task saves its progress and
   defers with :class:`~airflow_provider.triggers.ThrottleCooldownTrigger` until the earliest regain time —
   no worker slot is held while Meta's quota window drains.
3. The engine runs the remaining operations; outcomes are saved every ``progress_every`` outcomes.
   When the engine can report parks (``BulkEngine.stream(job, on_park=...)``, see ``_engine_parks``), an
   account parked for at least ``defer_after_s`` is stopped and, once the other accounts are done, the
   task defers for it the same way. With an engine without that hook the engine waits the park out on
   the worker (correct, but the slot stays busy).
4. ``execute_complete`` (after the trigger fired) goes back to step 1 with the same progress.
5. At the end the full report (``JobResult.to_dict()`` schema plus ``deferrals``, ``waited_s`` and the
   Airflow keys) is written to ``report_path`` (a local path or an object-storage URL such as
   ``s3://bucket/key.json``), and a small summary is returned (XCom ``return_value``): ``job_id``,
   ``counts``, ``ok``, ``report_path``, the request counters and ``deferrals``. With
   ``fail_on_errors`` (default) the task then fails if any operation failed or was skipped, so Airflow's
   retries run just those again.

Idempotency: the engine job id is :func:`~airflow_provider.progress.job_id_for` of ``dag_id / run_id /
task_id / map_index`` — the same on every deferral and retry, on any worker; the progress is scoped the
same way by Airflow's task state store. A mapped task (``.partial(...).expand(...)``) gets one job per
map index.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from airflow.sdk import XComArg
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from bulk_engine import BulkEngine, EngineConfig, JobValidationError, Operation
from bulk_engine.scrub import scrubbing_logs

from .._graph import run_sync
from ..jobs import CompiledJob, all_accounts, compile_job
from ..progress import STAT_KEYS, Progress, ProgressStore, remaining_operations
from .base import MetaOperatorBase, blocked_accounts

if TYPE_CHECKING:
    from airflow.sdk import Context


@dataclass
class _Slice:
    """What one engine run produced: outcomes were recorded into the progress as they came."""

    outcomes: int = 0
    elapsed_s: float = 0.0
    parked: dict[str, float] = field(default_factory=dict)  # account → wall-clock resume time


def _engine_parks() -> bool:
    """Whether ``BulkEngine.stream`` accepts ``on_park`` (the hook the lead is adding to the engine)."""
    try:
        return "on_park" in inspect.signature(BulkEngine.stream).parameters
    except (TypeError, ValueError):
        return False


class MetaBulkOperator(MetaOperatorBase):
    """Run a bulk job of Graph API operations (creates, updates, copies…) through the bulk engine.

    :param meta_conn_id: ``meta_graph`` connection (token, app secret, API version, base URL, default
        ad account).
    :param operations: the job as a list of :class:`~bulk_engine.Operation` or of dicts in their JSON
        form (``{"$ref": "<op_id>"}`` for references; see :mod:`airflow_provider.jobs`). Templated.
    :param job_file: path of a YAML/JSON job file (compiled by ``bulk_engine.operations``). Templated.
    :param job: the same job document inline. Templated.
    :param report_path: where to write the full JSON report: a local path or an object-storage URL.
        Templated. ``None``: no report file (the summary is still returned).
    :param report_conn_id: Airflow connection for object-storage report paths.
    :param deferrable: free the worker while throttled (default ``True``).
    :param defer_after_s: defer only when the wait is at least this long (default 120 s); shorter
        waits are spent on the worker.
    :param cooldown_poll_s: let the cool-down trigger read the account's usage every this many seconds
        and resume early when the block is lifted (default ``None``: wait for the announced regain time).
    :param max_deferrals: fail after this many cool-downs in one task instance (default 48).
    :param preflight: read each account's usage before sending (default ``True``; deferrable only).
    :param fail_on_errors: fail the task when operations failed or were skipped (default ``True``).
    :param validate_only: compile job documents with ``execution_options=["validate_only"]``.
    :param progress_every: save progress after this many outcomes (default 200).
    :param engine_overrides: extra :class:`~bulk_engine.EngineConfig` fields (governor, retry, seed…).
    """

    template_fields: Sequence[str] = ("meta_conn_id", "operations", "job_file", "job", "report_path")
    template_fields_renderers = {"operations": "json", "job": "json"}
    template_ext: Sequence[str] = ()
    ui_color = "#e7f0fe"

    def __init__(
        self,
        *,
        operations: Sequence[Operation | Mapping[str, Any]] | str | XComArg | None = None,
        job_file: str | XComArg | None = None,
        job: Mapping[str, Any] | str | XComArg | None = None,
        progress_every: int = 200,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if progress_every < 1:
            raise ValueError("progress_every must be >= 1")
        sources = [value for value in (operations, job_file, job) if value is not None]
        if len(sources) > 1 or (not sources and type(self).compile is MetaBulkOperator.compile):
            raise ValueError("MetaBulkOperator takes exactly one of operations, job_file or job")
        self.operations = operations
        self.job_file = job_file
        self.job = job
        self.progress_every = progress_every

    # --- Airflow entry points ----------------------------------------------------------------------
    def execute(self, context: Context) -> dict[str, Any]:
        job_id, store = self._job_id(context), self._store(context)
        progress = store.load(job_id) or Progress(job_id)
        again = progress.forget_unsuccessful()
        if again:
            self.log.info("new try of job %s: %d failed/skipped operations run again", job_id, again)
        return self._run(context, progress, store)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        job_id, store = self._job_id(context), self._store(context)
        progress = store.load(job_id)
        if progress is None:
            raise AirflowException(f"job {job_id}: resumed after a cool-down but its progress is gone")
        self._resumed(progress)
        self.log.info("job %s resumes after cool-down %d: %s", job_id, progress.deferrals, event)
        return self._run(context, progress, store)

    # --- the job -------------------------------------------------------------------------------------
    def compile(self, default_account_id: str | None) -> CompiledJob:
        """The job's operations; subclasses build them from their own arguments."""
        # Templates and upstream XComs are resolved by now; JSON text is what a string template renders to.
        operations, job_file, job = self.operations, self.job_file, self.job
        if isinstance(operations, XComArg) or isinstance(job_file, XComArg) or isinstance(job, XComArg):
            raise JobValidationError("an upstream XCom was not resolved before execute()")
        if isinstance(operations, str):
            operations = json.loads(operations)
        if isinstance(job, str):
            job = json.loads(job)
        if operations is None and job_file is None and job is None:
            operations = []  # an upstream task produced nothing to do
        return compile_job(
            operations=operations,
            job_file=job_file,
            job=job,
            default_account_id=default_account_id,
            validate_only=self.validate_only,
        )

    def _run(self, context: Context, progress: Progress, store: ProgressStore) -> dict[str, Any]:
        hook = self.hook()
        config = hook.get_engine_config()
        scrubber = self._output_scrubber(config)
        try:
            compiled = self.compile(hook.default_ad_account_id)
        except JobValidationError as err:
            raise AirflowFailException(
                scrubber.text(f"the job is invalid; nothing was sent:\n{err}")
            ) from None
        for outcome in compiled.local_outcomes:
            progress.done.setdefault(outcome.op_id, outcome.to_dict())
        left = remaining_operations(compiled.operations, progress.done)
        for outcome in left.outcomes:
            progress.record(outcome)
        remaining = left.operations
        can_defer = self._can_defer(store)
        if remaining and can_defer and self.preflight:
            with scrubbing_logs(scrubber):
                blocked = run_sync(lambda: blocked_accounts(config, all_accounts(remaining)))
            self._defer_if_stalled(
                progress, store, all_accounts(remaining), blocked, left=f"{len(remaining)} operations"
            )
        if remaining:
            self.log.info("job %s: %d operations to send", progress.job_id, len(remaining))
            try:
                with scrubbing_logs(scrubber):
                    result = run_sync(lambda: self._run_engine(config, remaining, progress, store, can_defer))
            except JobValidationError as err:  # the engine validates a whole job before sending anything
                message = f"the job is invalid; nothing was sent:\n{err}"
                raise AirflowFailException(scrubber.text(message)) from None
            finally:
                store.save(progress)  # whatever ended is kept, also when the run broke off: a retry resumes
            progress.add_stats(elapsed_s=result.elapsed_s)
            store.save(progress)
            unfinished = [op for op in remaining if op.op_id not in progress.done]
            if unfinished:
                self._defer_if_stalled(
                    progress,
                    store,
                    all_accounts(unfinished),
                    result.parked,
                    left=f"{len(unfinished)} operations",
                    required=True,
                )
        return self._finish(context, compiled, progress, store)

    async def _run_engine(
        self,
        config: EngineConfig,
        ops: list[Operation],
        progress: Progress,
        store: ProgressStore,
        can_defer: bool,
    ) -> _Slice:
        result = _Slice()
        kwargs: dict[str, Any] = {}
        if can_defer and _engine_parks():

            async def on_park(park: Any) -> bool:
                seconds = float(park.seconds)
                if seconds < self.defer_after_s:
                    return False
                self.log.info("%s parked for %.0f s: stopping it to defer", park.account_id, seconds)
                result.parked[str(park.account_id)] = time.time() + seconds
                return True

            kwargs["on_park"] = on_park
        started = time.monotonic()
        async with BulkEngine(config) as engine:
            run = engine.stream(ops, **kwargs)
            async for outcome in run:
                progress.record(outcome)
                result.outcomes += 1
                if result.outcomes % self.progress_every == 0:
                    await anyio.to_thread.run_sync(store.save, progress.snapshot())
            stats = run.result
        progress.add_stats(**{key: getattr(stats, key) for key in STAT_KEYS})
        result.elapsed_s = time.monotonic() - started
        return result

    def _finish(
        self, context: Context, compiled: CompiledJob, progress: Progress, store: ProgressStore
    ) -> dict[str, Any]:
        scrub = self.scrubber.scrub_value
        report = scrub(build_report(context, compiled, progress))
        location = write_report(self.report_path, report, self.report_conn_id) if self.report_path else None
        summary = {
            "job_id": progress.job_id,
            "counts": report["counts"],
            "ok": report["counts"]["failed"] == 0 and report["counts"]["skipped"] == 0,
            "report_path": location,
            **{key: report[key] for key in (*STAT_KEYS, "elapsed_s", "deferrals")},
        }
        summary = scrub(summary)  # every XCom value: pushed below or returned (return_value)
        self.log.info("job %s done: %s", progress.job_id, json.dumps(summary))
        if self.fail_on_errors and not summary["ok"]:
            context["ti"].xcom_push(key="return_value", value=summary)
            raise AirflowException(
                f"job {progress.job_id}: {summary['counts']['failed']} failed, "
                f"{summary['counts']['skipped']} skipped (report: {location or 'not written'})"
            )
        return summary


def build_report(context: Context, compiled: CompiledJob, progress: Progress) -> dict[str, Any]:
    """The full report: ``JobResult.to_dict()``'s keys, plus ``deferrals``, ``waited_s`` and ``airflow``."""
    order = [o.op_id for o in compiled.local_outcomes] + [op.op_id for op in compiled.operations]
    seen = set(order)
    order += [op_id for op_id in progress.done if op_id not in seen]
    operations = [progress.done[op_id] for op_id in dict.fromkeys(order) if op_id in progress.done]
    ti = context["ti"]
    return {
        "job_id": progress.job_id,
        "counts": progress.counts(),
        **{key: int(progress.stats.get(key, 0)) for key in STAT_KEYS},
        "elapsed_s": round(progress.stats.get("elapsed_s", 0.0), 3),
        "deferrals": progress.deferrals,
        "waited_s": round(progress.waited_s, 3),
        "airflow": {
            "dag_id": ti.dag_id,
            "run_id": ti.run_id,
            "task_id": ti.task_id,
            "map_index": getattr(ti, "map_index", -1),
            "try_number": getattr(ti, "try_number", None),
        },
        "operations": operations,
    }


def write_report(path: str, report: Mapping[str, Any], conn_id: str | None = None) -> str:
    """Write ``report`` as JSON to a local path or an object-storage URL; returns where it went."""
    text = json.dumps(report, indent=2, default=str)
    if "://" in path and not path.startswith("file://"):
        from airflow.sdk import ObjectStoragePath

        target = ObjectStoragePath(path, conn_id=conn_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return str(target)
    local = Path(path.removeprefix("file://"))
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_text(text, encoding="utf-8")
    return str(local)


__all__ = ["MetaBulkOperator", "build_report", "write_report"]
