"""The engine as ``bulk-engine run`` hands it to the operations layer: outcomes nobody reads stay on disk.

Why: :func:`~bulk_engine.operations.run_job` gives each engine job to ``engine.run``, which returns every
outcome, and its :class:`~bulk_engine.operations.task.TaskReport` keeps them all — ~0.5 KB per operation, so a
million status changes held ~1 GB. The CLI's reports are written from the run's spill file
(:mod:`.spill`: the recorder appends every outcome the engine reports), so the operations layer needs only the
outcomes its flows read back. :class:`LeanEngine` runs each engine job as a stream and hands back every
outcome except a *succeeded update or delete*: the multi-phase flows read reads, creates, copies and
migrations back (ids, pages, mappings) and the readiness updates only when they did not succeed; a succeeded
status change carries nothing but ``{"success": true}``.

The report then lists the operations the layer kept plus, from the spill, those :func:`stays_on_disk`
withheld (:meth:`~.session.RunSession.report_source`). What would make this adapter unnecessary: a sink in
``run_job`` / ``TaskReport.run`` (``on_outcome``) with ``TaskReport`` keeping counters and only the outcomes
its flow asked for.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from contextlib import aclosing
from typing import Any

from bulk_engine.config import Backend
from bulk_engine.engine import BulkEngine, OperationSource
from bulk_engine.results import JobResult, Outcome

__all__ = ["WITHHELD_KINDS", "LeanEngine", "stays_on_disk"]

WITHHELD_KINDS = frozenset({"update", "delete"})


def stays_on_disk(outcome: Outcome | Mapping[str, Any]) -> bool:
    """True for an outcome :class:`LeanEngine` does not hand back: a succeeded update or delete."""
    if isinstance(outcome, Outcome):
        return outcome.state.value == "succeeded" and outcome.kind in WITHHELD_KINDS
    return outcome.get("state") == "succeeded" and outcome.get("kind") in WITHHELD_KINDS


class LeanEngine:
    """``EngineLike`` over a :class:`BulkEngine`: ``run`` streams the job and returns its result with the
    outcomes of :func:`stays_on_disk` left out (its counters are the engine's, unchanged)."""

    def __init__(self, engine: BulkEngine) -> None:
        self.engine = engine

    def __repr__(self) -> str:
        return f"LeanEngine({self.engine!r})"

    async def run(
        self,
        job: OperationSource,
        *,
        job_id: str | None = None,
        fingerprint: str | None = None,
        backend: Backend | None = None,
    ) -> JobResult:
        kept: list[Outcome] = []
        run = self.engine.stream(job, job_id=job_id, fingerprint=fingerprint, backend=backend)
        async with aclosing(run):
            async for outcome in run:
                if not stays_on_disk(outcome):
                    kept.append(outcome)
        return dataclasses.replace(run.result, outcomes=tuple(kept))
