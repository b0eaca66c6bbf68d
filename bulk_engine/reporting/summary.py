"""What the reports say about the operations, folded one operation at a time in bounded memory.

Why a fold: a million-operation run must not hold its outcomes to summarise them. :class:`OperationsSummary`
takes the report's operations (``Outcome.to_dict()`` shapes) one by one — from the run's spill file, or a
saved report read incrementally — and keeps only counters, a few example op ids per group and, for the HTML
report, the first :data:`PROBLEMS_PER_GROUP` operations of each failure or skip group (the full list is in the
CSV and JSON reports).

Groups: failures by (Graph code, subcode), or — without a Graph error — by the reason's first words; skips
by reason, a dependency's name folded out. Long digit runs (object ids) in a reason are folded to ``…`` so a
reason that names each object's parent does not make a group per object, and at most :data:`MAX_GROUPS`
groups of each are kept (the rest count under "other reasons").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MAX_GROUPS",
    "MAX_PROBLEMS",
    "PROBLEMS_PER_GROUP",
    "OperationsSummary",
    "ProblemGroup",
]

EXAMPLES = 5
PROBLEMS_PER_GROUP = 20
MAX_PROBLEMS = 500
MAX_GROUPS = 200
OTHER = "(other reasons)"
TEXT_LIMIT = 300  # characters of an error message or reason kept for the HTML report
_IDS = re.compile(r"\d{6,}")
STATES = ("succeeded", "failed", "skipped")


def _error(op: Mapping[str, Any]) -> Mapping[str, Any]:
    error = op.get("error")
    return error if isinstance(error, Mapping) else {}


def _cut(value: Any) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"


@dataclass
class ProblemGroup:
    """The first operations of one failure or skip group, for the HTML report, and how many more there were."""

    label: str
    ops: list[dict[str, Any]] = field(default_factory=list)
    more: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.label, "operations": self.ops, "more": self.more}


class OperationsSummary:
    """Counts per state and kind, failures by code, skips by reason, and the first problems of each group."""

    def __init__(
        self,
        *,
        examples: int = EXAMPLES,
        per_group: int = PROBLEMS_PER_GROUP,
        max_problems: int = MAX_PROBLEMS,
    ) -> None:
        self.examples, self.per_group, self.max_problems = examples, per_group, max_problems
        self.total = 0
        self.counts: dict[str, int] = dict.fromkeys(STATES, 0)
        self.failed_without_answer = 0  # failed with no Graph error: transport errors, HTML pages, timeouts
        self._kinds: dict[str, dict[str, int]] = {}
        self._failures: dict[tuple[Any, Any, str], dict[str, Any]] = {}
        self._skipped: dict[str, dict[str, Any]] = {}
        self._problems: dict[tuple[Any, ...], ProblemGroup] = {}
        self._kept = 0

    def __repr__(self) -> str:
        return f"OperationsSummary(total={self.total}, counts={self.counts})"

    @classmethod
    def of(cls, operations: Iterable[Mapping[str, Any]], *, examples: int = EXAMPLES) -> OperationsSummary:
        summary = cls(examples=examples)
        for op in operations:
            summary.add(op)
        return summary

    def add(self, op: Mapping[str, Any]) -> None:
        if not isinstance(op, Mapping):
            return
        self.total += 1
        state = str(op.get("state"))
        self.counts[state] = self.counts.get(state, 0) + 1
        kind = str(op.get("kind"))
        per_kind = self._kinds.get(kind)
        if per_kind is None:
            per_kind = self._kinds[kind] = dict.fromkeys(STATES, 0)
        per_kind[state] = per_kind.get(state, 0) + 1
        if state == "failed":
            self._add_failure(op, kind)
        elif state == "skipped":
            self._add_skip(op)

    def _add_failure(self, op: Mapping[str, Any], kind: str) -> None:
        error = _error(op)
        code, subcode = error.get("code"), error.get("error_subcode")
        if not error:
            self.failed_without_answer += 1
        label = (
            ""
            if code is not None
            else _IDS.sub("…", str(op.get("reason") or "no Graph answer").split(":")[0])
        )
        key: tuple[Any, Any, str] = (code, subcode, label)
        group = self._failures.get(key)
        if group is None:
            if len(self._failures) >= MAX_GROUPS:
                key = (None, None, OTHER)
                group = self._failures.get(key)
            if group is None:
                group = self._failures[key] = {
                    "code": key[0],
                    "subcode": key[1],
                    "message": (error.get("message") or op.get("reason") or "") if key[2] != OTHER else OTHER,
                    "user_title": error.get("error_user_title") if key[2] != OTHER else None,
                    "user_msg": error.get("error_user_msg") if key[2] != OTHER else None,
                    "count": 0,
                    "kinds": {},
                    "examples": [],
                }
        group["count"] += 1
        group["kinds"][kind] = group["kinds"].get(kind, 0) + 1
        if len(group["examples"]) < self.examples:
            group["examples"].append(str(op.get("op_id")))
        self._add_problem(("failed", *key), _failure_label(key), op)

    def _add_skip(self, op: Mapping[str, Any]) -> None:
        reason = str(op.get("reason") or "")
        key = "dependency failed" if reason.startswith("dependency ") else _IDS.sub("…", reason)
        group = self._skipped.get(key)
        if group is None and len(self._skipped) >= MAX_GROUPS:
            key = OTHER
            group = self._skipped.get(key)
        if group is None:
            group = self._skipped[key] = {"reason": key, "count": 0, "examples": []}
        group["count"] += 1
        if len(group["examples"]) < self.examples:
            group["examples"].append(str(op.get("op_id")))
        self._add_problem(("skipped", key), f"skipped: {_cut(key)}", op)

    def _add_problem(self, key: tuple[Any, ...], label: str, op: Mapping[str, Any]) -> None:
        group = self._problems.get(key)
        if group is None:
            group = self._problems[key] = ProblemGroup(label)
        if len(group.ops) >= self.per_group or self._kept >= self.max_problems:
            group.more += 1
            return
        self._kept += 1
        group.ops.append(_problem(op))

    # --- results --------------------------------------------------------------------------------------
    def kinds(self) -> dict[str, dict[str, int]]:
        return dict(sorted(self._kinds.items()))

    def failures_by_code(self) -> list[dict[str, Any]]:
        """Biggest group first (then by code and subcode)."""
        return sorted(self._failures.values(), key=lambda g: (-g["count"], str(g["code"]), str(g["subcode"])))

    def skipped_by_reason(self) -> list[dict[str, Any]]:
        return sorted(self._skipped.values(), key=lambda g: -g["count"])

    def problems(self) -> list[dict[str, Any]]:
        """The kept non-succeeded operations by group, biggest group first: ``[{group, operations, more}]``."""
        groups = sorted(self._problems.values(), key=lambda g: -(len(g.ops) + g.more))
        return [g.to_dict() for g in groups]


def _failure_label(key: tuple[Any, Any, str]) -> str:
    code, subcode, label = key
    if code is None:
        return f"failed without a Graph answer: {label}" if label else "failed without a Graph answer"
    return f"failed with Graph error {code}" + (f"/{subcode}" if subcode else "")


def _problem(op: Mapping[str, Any]) -> dict[str, Any]:
    """The columns the HTML report shows of one operation (texts cut to :data:`TEXT_LIMIT`)."""
    error = _error(op)
    code = error.get("code")
    if code is not None and error.get("error_subcode"):
        code = f"{code}/{error['error_subcode']}"
    blame = ", ".join(".".join(map(str, spec)) for spec in error.get("blame_field_specs") or ())
    return {
        "op_id": op.get("op_id"),
        "kind": op.get("kind"),
        "state": op.get("state"),
        "code": code,
        "error": _cut(error.get("error_user_title") or error.get("message") or ""),
        "blame": _cut(blame),
        "reason": _cut(op.get("reason") or ""),
    }
