"""Journaled job-file runs: finding the engine jobs of one job file run in a journal, to resume them.

A job file runs as several engine jobs (one or more per task: reads, then writes). ``run_job`` names each
``<job id>/<task key>/<n>`` (:meth:`~bulk_engine.operations.task.TaskReport.for_env`), the same on every run
of the same job, so running the same command again answers completed operations from the journal instead of
sending them again. ``bulk-engine resume JOB_ID`` finishes ``JOB_ID`` itself when the journal holds it (a job
run through the library's ``engine.run``), else every engine job of ``JOB_ID`` in the order they started.
"""

from __future__ import annotations

from typing import Any

__all__ = ["engine_job_ids", "expected_kinds"]


def engine_job_ids(journal: Any, job_id: str) -> list[str]:
    """The journal's jobs that make up ``job_id``: itself, or its engine jobs (``job_id/…``) in start order."""
    known: list[str] = list(journal.job_ids())
    if job_id in known:
        return [job_id]
    prefix = f"{job_id}/"
    return [j for j in known if j.startswith(prefix)]


def expected_kinds(journal: Any, job_ids: list[str]) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for job_id in job_ids:
        for op in journal.iter_ops(job_id):
            kinds[op.kind] = kinds.get(op.kind, 0) + 1
    return kinds
