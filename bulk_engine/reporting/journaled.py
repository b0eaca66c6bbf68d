"""Journaled job-file runs: stable journal ids for the engine jobs of one run, and resuming them.

A job file runs as several engine jobs (one or more per task: reads, then writes). With a journal, each
must have an id that is the same when the run is started again, so that re-running the same command
answers completed operations from the journal instead of sending them again. :class:`NumberedJobs` gives the
n-th engine job of a run the id ``<job id>/<n>`` and the fingerprint ``<job file fingerprint>/<n>`` (a
changed job file is then refused by the journal, never mixed in). ``bulk-engine resume JOB_ID`` finishes
``JOB_ID`` itself when the journal holds it (a job run through the library), else every ``JOB_ID/<n>`` in
order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from bulk_engine.results import JobResult, Outcome

__all__ = ["CombinedResult", "NumberedJobs", "engine_job_ids", "expected_kinds"]


class NumberedJobs:
    """The engine as the operations layer sees it, naming each engine job ``<job_id>/<n>`` in the journal."""

    def __init__(self, engine: Any, job_id: str, fingerprint: str) -> None:
        self.engine = engine
        self.job_id = job_id
        self.fingerprint = fingerprint
        self.count = 0

    def _next(self, job_id: str | None) -> tuple[str, str | None]:
        if job_id is not None:  # the caller named it: keep its name
            return job_id, None
        n = self.count
        self.count += 1
        return f"{self.job_id}/{n}", f"{self.fingerprint}/{n}"

    async def run(self, job: Any, *, job_id: str | None = None) -> JobResult:
        the_id, fingerprint = self._next(job_id)
        result: JobResult = await self.engine.run(job, job_id=the_id, fingerprint=fingerprint)
        return result

    def stream(self, job: Any) -> AsyncIterator[Outcome]:
        the_id, fingerprint = self._next(None)
        stream: AsyncIterator[Outcome] = self.engine.stream(job, job_id=the_id, fingerprint=fingerprint)
        return stream


def engine_job_ids(journal: Any, job_id: str) -> list[str]:
    """The journal's jobs that make up ``job_id``: itself, or its numbered engine jobs in run order."""
    known: list[str] = list(journal.job_ids())
    if job_id in known:
        return [job_id]
    prefix = f"{job_id}/"
    numbered = [j for j in known if j.startswith(prefix) and j[len(prefix) :].isdigit()]
    return sorted(numbered, key=lambda j: int(j[len(prefix) :]))


def expected_kinds(journal: Any, job_ids: list[str]) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for job_id in job_ids:
        for op in journal.iter_ops(job_id):
            kinds[op.kind] = kinds.get(op.kind, 0) + 1
    return kinds


@dataclass
class CombinedResult:
    """Several engine results reported as one job."""

    job_id: str
    results: list[JobResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        counts = {"succeeded": 0, "failed": 0, "skipped": 0}
        operations: list[dict[str, Any]] = []
        totals = {"http_requests": 0, "graph_calls": 0, "retries": 0, "throttle_events": 0}
        elapsed = 0.0
        for result in self.results:
            for state, n in result.counts.items():
                counts[state] = counts.get(state, 0) + n
            for name in totals:
                totals[name] += int(getattr(result, name))
            elapsed += result.elapsed_s
            operations.extend(o.to_dict() for o in result.outcomes)
        return {
            "job_id": self.job_id,
            "counts": counts,
            **totals,
            "elapsed_s": round(elapsed, 3),
            "operations": operations,
            "engine_jobs": [r.job_id for r in self.results],
        }
