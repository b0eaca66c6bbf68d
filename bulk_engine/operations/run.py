"""Run jobs and tasks end to end through a :class:`~bulk_engine.engine.BulkEngine`.

:func:`run_job` is what the CLI and the Airflow operators call: it validates the whole job (rules and CSV
inputs) before the first call, then runs its tasks in order — each as one or more engine jobs — and returns a
:class:`JobReport` (per-operation outcomes, engine counters, per-task details such as copy mappings or the
migration report). The per-verb helpers (:func:`create_objects`, :func:`set_status`, :func:`copy_objects`,
:func:`migrate_campaigns`, :func:`send_messages`) run one task given as a model, for library users.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bulk_engine.results import JobResult, Outcome, OutcomeState

from .base import CompileContext, EngineLike
from .copy import CopyTask
from .create import CreateTask
from .jobfile import JobSpec, Task
from .messages import MessagesTask
from .migrate import MigrateTask
from .status import StatusTask
from .task import TaskBase, TaskReport

__all__ = [
    "JobReport",
    "copy_objects",
    "create_objects",
    "migrate_campaigns",
    "run_job",
    "run_task",
    "send_messages",
    "set_status",
]


@dataclass
class JobReport:
    """Everything a job did. ``to_dict()`` is the CLI's ``--report`` JSON (DESIGN.md contract)."""

    job_id: str
    fingerprint: str
    tasks: list[TaskReport] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def outcomes(self) -> list[Outcome]:
        return [o for task in self.tasks for o in task.outcomes]

    @property
    def counts(self) -> dict[str, int]:
        counts = {state.value: 0 for state in OutcomeState}
        for task in self.tasks:
            for state, n in task.counts.items():
                counts[state] += n
        return counts

    @property
    def ok(self) -> bool:
        counts = self.counts
        return counts["failed"] == 0 and counts["skipped"] == 0

    def outcome(self, op_id: str) -> Outcome:
        for task in self.tasks:
            for outcome in task.outcomes:
                if outcome.op_id == op_id:
                    return outcome
        raise KeyError(op_id)

    def task(self, key: str) -> TaskReport:
        for task in self.tasks:
            if task.key == key:
                return task
        raise KeyError(key)

    def to_result(self) -> JobResult:
        """The report as one engine :class:`~bulk_engine.results.JobResult` (all tasks' outcomes and counters)."""
        combined = JobResult.combine(self.job_id, [task.to_result() for task in self.tasks])
        return dataclasses.replace(combined, elapsed_s=self.elapsed_s)

    def to_dict(self) -> dict[str, Any]:
        data = self.to_result().to_dict()
        data["fingerprint"] = self.fingerprint
        data["tasks"] = [_jsonable(t.to_dict()) for t in self.tasks]
        return data


class WithBackend:
    """``EngineLike`` running every engine job of one task on the backend its job file names (a task's
    ``backend``); the engine underneath must take ``run(..., backend=)`` (``BulkEngine`` and its wrappers)."""

    def __init__(self, engine: EngineLike, backend: str) -> None:
        self.engine = engine
        self.backend = backend

    def __repr__(self) -> str:
        return f"WithBackend({self.engine!r}, {self.backend!r})"

    async def run(self, job: Any, *, job_id: str | None = None, fingerprint: str | None = None) -> JobResult:
        run: Any = self.engine.run  # BulkEngine.run, LeanEngine.run, HoldGuard.run: all take backend=
        result: JobResult = await run(job, job_id=job_id, fingerprint=fingerprint, backend=self.backend)
        return result


async def run_job(
    engine: EngineLike,
    job: JobSpec,
    ctx: CompileContext | None = None,
    *,
    job_id: str | None = None,
    on_task: Callable[[TaskReport], None] | None = None,
) -> JobReport:
    """Validate ``job`` completely, then run its tasks in order; a failed operation never stops later tasks.

    Raises :class:`~bulk_engine.operations.base.JobFileError` (nothing sent) when the job breaks a rule or
    a task has no ad account.
    """
    job.ensure_checked()
    report = JobReport(job_id or job.job_id or job.fingerprint()[:16], job.fingerprint())
    # Engine jobs are named <job id>/<task key>/<n>: the same job run again is exactly-once (docs/exactly-once.md).
    base = ctx if ctx is not None else CompileContext()
    context = dataclasses.replace(base, job_id=report.job_id, fingerprint=report.fingerprint)
    envs = [job.task_env(i, context) for i in range(len(job.tasks))]
    started = time.monotonic()
    for task, env in zip(job.tasks, envs, strict=True):
        task_engine = engine if task.backend is None else WithBackend(engine, task.backend)
        task_report = await task.execute(task_engine, env)
        report.tasks.append(task_report)
        if on_task is not None:
            on_task(task_report)
    report.elapsed_s = time.monotonic() - started
    return report


async def run_task(
    engine: EngineLike,
    task: Task | TaskBase,
    ctx: CompileContext | None = None,
    *,
    account_id: str | None = None,
) -> TaskReport:
    """Run one task model (``CreateTask``, ``StatusTask``…) as a one-task job."""
    job = JobSpec.model_validate({"account_id": account_id, "tasks": [task.model_dump(mode="python")]})
    report = await run_job(engine, job, ctx)
    return report.tasks[0]


async def create_objects(
    engine: EngineLike, task: CreateTask, ctx: CompileContext | None = None, *, account_id: str | None = None
) -> TaskReport:
    return await run_task(engine, task, ctx, account_id=account_id)


async def set_status(
    engine: EngineLike, task: StatusTask, ctx: CompileContext | None = None, *, account_id: str | None = None
) -> TaskReport:
    return await run_task(engine, task, ctx, account_id=account_id)


async def copy_objects(
    engine: EngineLike, task: CopyTask, ctx: CompileContext | None = None, *, account_id: str | None = None
) -> TaskReport:
    return await run_task(engine, task, ctx, account_id=account_id)


async def migrate_campaigns(
    engine: EngineLike, task: MigrateTask, ctx: CompileContext | None = None, *, account_id: str | None = None
) -> TaskReport:
    return await run_task(engine, task, ctx, account_id=account_id)


async def send_messages(
    engine: EngineLike,
    task: MessagesTask,
    ctx: CompileContext | None = None,
    *,
    account_id: str | None = None,
) -> TaskReport:
    return await run_task(engine, task, ctx, account_id=account_id)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "to_dict"):
        return _jsonable(value.to_dict())
    return value
