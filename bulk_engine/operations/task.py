"""The task protocol shared by every job section, and the per-task report.

A job file is a list of tasks (``type: create | status | copy | migrate | messages | update | …``). Each task model:

- checks its documented rules (:meth:`TaskBase.rule_issues`, paths relative to the task) — pure;
- compiles to operations when it can do so without reading Graph (:meth:`TaskBase.compile`) — pure, lazy,
  with deterministic op ids ``<task key>/…`` so a resumed job matches them;
- runs end to end through the engine (:meth:`TaskBase.execute`), in one or more engine jobs (reads first,
  then writes) for the flows that need server state (status selectors, copy fallback, migration).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from bulk_engine.planning.graph import Operation
from bulk_engine.results import JobResult, Outcome, OutcomeState

from .base import CompileContext, EngineLike, Issue, TaskEnv
from .specs import job_model_config

__all__ = ["ACCOUNT_PATTERN", "KEY_PATTERN", "TaskBase", "TaskReport"]

ACCOUNT_PATTERN = r"^act_\d+$"
KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"


class TaskBase(BaseModel):
    model_config = job_model_config("Task")

    key: str | None = Field(
        None, pattern=KEY_PATTERN, description="Prefix of this task's operation ids (default: t<index>)"
    )
    account_id: str | None = Field(
        None, pattern=ACCOUNT_PATTERN, description="Ad account (act_<id>); default: the job's account_id"
    )
    backend: Literal["sync", "async", "auto"] | None = Field(
        None,
        description="How this task's writes are sent: sync (Graph batches), async (Meta's request sets of up "
        "to 1,000, polled until done) or auto; default: the engine's (docs/scale.md)",
    )

    @property
    def needs_reads(self) -> bool:
        """True when the task must read Graph before it knows its operations (see ``execute``)."""
        return False

    def rule_issues(self) -> Iterator[Issue]:
        return iter(())

    def input_issues(self, base_dir: Path) -> Iterator[Issue]:
        """Problems in referenced input files (CSV), found by one streaming pass."""
        return iter(())

    def input_files(self) -> list[str]:
        return []

    def compile(self, env: TaskEnv) -> Iterator[Operation]:
        return iter(())

    def estimate(self, env: TaskEnv) -> dict[str, int]:
        """Expected operation count per kind (for progress bars); cheap, may be approximate."""
        counts: dict[str, int] = {}
        for op in self.compile(env):
            counts[op.kind.value] = counts.get(op.kind.value, 0) + 1
        return counts

    async def execute(self, engine: EngineLike, env: TaskEnv) -> TaskReport:
        """Default: run :meth:`compile` through the engine (streamed) and report every outcome."""
        report = TaskReport.for_env(env, self.task_type)
        if env.ctx.validate_only and not self.supports_validate_only:
            report.details["validate_only"] = "checked locally; Graph has no dry run for this operation"
            return report
        await report.run(engine, self.compile(env), env.ctx)
        return report

    @property
    def supports_validate_only(self) -> bool:
        return True

    @property
    def task_type(self) -> str:
        return str(getattr(self, "type", type(self).__name__))


@dataclass
class TaskReport:
    """What one task did: every operation's terminal outcome, the engine counters, and a per-type summary."""

    key: str
    type: str
    outcomes: list[Outcome] = field(default_factory=list)
    elapsed_s: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
    # the engine jobs' results, outcomes left out (they are in ``outcomes``): the counters come from them
    results: list[JobResult] = field(default_factory=list)
    # ``<job id>/<task key>``: each engine job of the task is ``<that>/<n>`` (n-th in the task's run order)
    engine_job_prefix: str | None = None
    engine_fingerprint: str | None = None

    @classmethod
    def for_env(cls, env: TaskEnv, task_type: str) -> TaskReport:
        """A report whose engine jobs get stable ids from the job's id and this task's key, so running the
        same job again (CLI, library or Airflow, with or without a journal) finds what it created."""
        ctx = env.ctx
        prefix = f"{ctx.job_id}/{env.key}" if ctx.job_id else None
        fingerprint = f"{ctx.fingerprint}/{env.key}" if ctx.fingerprint else None
        return cls(env.key, task_type, engine_job_prefix=prefix, engine_fingerprint=fingerprint)

    def _next_engine_job(self) -> tuple[str | None, str | None]:
        if self.engine_job_prefix is None:
            return None, None
        n = len(self.results)
        fingerprint = f"{self.engine_fingerprint}/{n}" if self.engine_fingerprint else None
        return f"{self.engine_job_prefix}/{n}", fingerprint

    def absorb(self, result: JobResult) -> None:
        """Fold an engine job in. Its ``elapsed_s`` is engine-clock seconds (a scaled clock runs them faster
        than the wall: 849 s for a 7 s demo at 600x); the caller adds the wall time it measured."""
        self.outcomes.extend(result.outcomes)
        self.results.append(dataclasses.replace(result, outcomes=()))

    def to_result(self) -> JobResult:
        """The task as one :class:`~bulk_engine.results.JobResult`: its engine jobs combined, with the task's
        own outcomes (local skips and superseded ops included) and its wall time."""
        combined = JobResult.combine(self.key, self.results)
        return dataclasses.replace(
            combined, outcomes=tuple(self.outcomes), counts=self.counts, elapsed_s=self.elapsed_s
        )

    async def run(
        self, engine: EngineLike, ops: Iterable[Operation], ctx: CompileContext | None = None
    ) -> dict[str, Outcome]:
        """Run one engine job and fold its outcomes in, with every local skip pending in ``ctx.skipped``
        (recorded while ``ops`` was built or consumed; the list is drained). Returns the outcomes by op id."""
        started = time.monotonic()
        job_id, fingerprint = self._next_engine_job()
        job = ops if isinstance(ops, list) else iter(ops)
        result = await engine.run(job, job_id=job_id, fingerprint=fingerprint)
        self.absorb(result)
        self.elapsed_s += time.monotonic() - started
        outcomes = {o.op_id: o for o in result.outcomes}
        if ctx is not None:
            for outcome in ctx.skipped:
                self.outcomes.append(outcome)
                outcomes[outcome.op_id] = outcome
            ctx.skipped.clear()
        return outcomes

    def add(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)

    def supersede(self, op_id: str, reason: str) -> None:
        """Turn a failed operation whose work another plan took over (e.g. a deep copy over the synchronous
        limit, redone as a chunked copy) into ``skipped`` with ``reason``; its Graph error is kept."""
        for i, outcome in enumerate(self.outcomes):
            if outcome.op_id == op_id and outcome.state is OutcomeState.FAILED:
                self.outcomes[i] = dataclasses.replace(outcome, state=OutcomeState.SKIPPED, reason=reason)

    def complete(self, op_id: str, result: Any, reason: str) -> None:
        """Turn a failed operation whose work another plan completed (a deep copy over the synchronous limit,
        done as a chunked copy) into ``succeeded`` with that plan's ``result``; ``reason`` says how."""
        for i, outcome in enumerate(self.outcomes):
            if outcome.op_id == op_id and outcome.state is OutcomeState.FAILED:
                self.outcomes[i] = dataclasses.replace(
                    outcome, state=OutcomeState.SUCCEEDED, result=result, error=None, reason=reason
                )

    @property
    def counts(self) -> dict[str, int]:
        counts = {state.value: 0 for state in OutcomeState}
        for outcome in self.outcomes:
            counts[outcome.state.value] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        totals = self.to_result()
        return {
            "key": self.key,
            "type": self.type,
            "counts": totals.counts,
            "http_requests": totals.http_requests,
            "graph_calls": totals.graph_calls,
            "retries": totals.retries,
            "throttle_events": totals.throttle_events,
            "elapsed_s": round(self.elapsed_s, 3),
            "unknown_outcomes": totals.unknown_outcomes,
            "lookups": totals.lookups,
            "recovered": totals.recovered,
            "from_journal": totals.from_journal,
            "engine_jobs": list(totals.engine_jobs),
            "all_runs": totals.all_runs.to_dict() if totals.all_runs is not None else None,
            "backend": totals.backend,
            "backend_reason": totals.backend_reason,
            "async_sets": totals.async_sets,
            "details": self.details,
        }
