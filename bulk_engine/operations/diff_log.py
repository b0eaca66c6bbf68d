"""The per-object diff of a write task (update, status): what each object was, what the task set, what happened.

Why: the diff is what a dry run shows (old → new without writing), what the reports list (changed / unchanged
/ skipped / failed, issue 16 item 5) and what an undo restores (the old values of what was applied, item 3).
It lives in the task's ``details["diff"]``, one entry per object::

    {"op_id": "t0/120…", "id": "120…", "level": "adset", "state": "changed",
     "fields": {"daily_budget": {"old": 1000, "new": 1100}}, "unchanged": ["name"], "reason": "…"}

``state``: ``changed`` (the write succeeded — or, in a dry run, would be sent), ``unchanged`` (no call),
``skipped`` (a local rule or the read refused it: ``reason``), ``failed`` (Graph refused the write, or it
never ran: the object keeps its old values — unless ``"outcome_unknown": true``: an attempt's answer was
lost, so the write may have been applied all the same, and an undo restores it under its ``expect.`` guard).
``details["diff_counts"]`` counts every object; entries beyond :data:`DIFF_LIMIT` are counted only
(``details["diff_truncated"]``), so a million-object job's report stays bounded — its journal still holds
every read and write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bulk_engine.planning.graph import Operation
from bulk_engine.results import Outcome, OutcomeState

from .task import TaskReport

__all__ = ["DIFF_LIMIT", "DiffLog", "ObjectPlan"]

DIFF_LIMIT = 100_000
"""Per-object diff entries kept in a task's details (the JSON report); beyond it they are counted only."""


@dataclass
class ObjectPlan:
    """What to do with one object: the write's params, the diff (field → (old, new)), or why nothing."""

    object_id: str
    params: dict[str, Any] = field(default_factory=dict)
    diff: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)
    refused: str | None = None  # the reason, rule id and Graph code included
    rule: str | None = None

    @property
    def state(self) -> str:
        """``changed`` (a write), ``unchanged`` (every value already set) or ``skipped`` (refused)."""
        if self.refused is not None:
            return "skipped"
        return "changed" if self.params else "unchanged"


class DiffLog:
    """The per-object diffs of one task, kept in ``report.details`` (see the module docstring)."""

    def __init__(self, report: TaskReport, account_id: str, *, dry_run: bool = False) -> None:
        self.details = report.details
        self.details["account_id"] = account_id  # the undo's ad account
        self.entries: list[dict[str, Any]] = []
        self.index: dict[str, int] = {}
        self.counts = {"changed": 0, "unchanged": 0, "skipped": 0, "failed": 0}
        self.details["diff"] = self.entries
        if dry_run:
            self.details["dry_run"] = True  # nothing was written: nothing to undo

    def add(self, op_id: str, plan: ObjectPlan, level: str) -> None:
        self.counts[plan.state] += 1
        if len(self.entries) >= DIFF_LIMIT:
            return
        entry: dict[str, Any] = {
            "op_id": op_id,
            "id": plan.object_id,
            "level": level,
            "state": plan.state,
            "fields": {name: {"old": old, "new": new} for name, (old, new) in plan.diff.items()},
        }
        if plan.unchanged:
            entry["unchanged"] = list(plan.unchanged)
        if plan.refused is not None:
            entry["reason"] = plan.refused
        self.index[op_id] = len(self.entries)
        self.entries.append(entry)

    def settle(
        self, ops: Sequence[Operation], outcomes: Mapping[str, Outcome], unfinished: Iterable[str] = ()
    ) -> None:
        """Mark the planned writes that did not succeed. An op missing from ``outcomes`` succeeded — the CLI's
        lean engine hands back every outcome except a succeeded update (``reporting/lean.py``) — unless it is
        ``unfinished`` (the run stopped before sending it: an Airflow deferral, ``on_park``)."""
        left = set(unfinished)
        for op in ops:
            outcome = outcomes.get(op.op_id)
            if op.op_id in left:
                detail = "not applied: the run stopped before it was sent (resume the job)"
            elif outcome is None or outcome.state is OutcomeState.SUCCEEDED:
                continue
            else:
                detail = str(outcome.error.message if outcome.error is not None else outcome.reason)
            self.counts["changed"] -= 1
            self.counts["failed"] += 1
            at = self.index.get(op.op_id)
            if at is not None:
                self.entries[at]["state"] = "failed"
                self.entries[at]["reason"] = str(detail)
                if outcome is not None and outcome.unknown:  # it may have been applied (see the docstring)
                    self.entries[at]["outcome_unknown"] = True

    def finish(self) -> None:
        self.details["diff_counts"] = dict(self.counts)
        total = sum(self.counts.values())
        if total > len(self.entries):
            self.details["diff_truncated"] = total - len(self.entries)
