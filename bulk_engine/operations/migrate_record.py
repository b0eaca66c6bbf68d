"""One campaign's migration record, and the pure judgements on it: the old → new id map and verification.

Pure (no I/O), so the verification rule — S003 §Migrate Advantage+ Shopping Campaigns and Advantage+ App
Campaigns into Advantage+ Campaigns: the result "will reflect a smart_promotion_type of GUIDED_CREATION and
will have advantage_state_info details" — and the map's completion from the copy's tree are table-tested
apart from the flow (:mod:`.migrate`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from bulk_engine.results import Outcome, OutcomeState

from .migrate_eligibility import GUIDED_CREATION, Readiness, _opt

if TYPE_CHECKING:
    from .base import TaskEnv
    from .task import TaskReport

__all__ = [
    "MigrationRecord",
    "drain",
    "fail",
    "full_map",
    "map_entry",
    "readiness_dict",
    "tally",
    "verify_problems",
]


@dataclass
class MigrationRecord:
    """One campaign's migration: class, action, result, id map, verified state and the switch-over."""

    source_id: str
    name: str
    eligibility: str
    reason: str
    action: str | None = None
    manual_path: str | None = None
    warnings: list[str] = field(default_factory=list)
    new_id: str | None = None
    # migrated | failed | skipped | not_run | validated (dry run) | manual | refused (plan row)
    state: str = "not_run"
    smart_promotion_type: str | None = None
    advantage_state_info: dict[str, str] | None = None
    verified: bool | None = None
    error: dict[str, Any] | None = None
    fallback: str | None = None
    readiness: dict[str, Any] | None = None
    kind: str = "ordinary"
    proposed_action: str = "skip"
    source_status: str | None = None
    budget: str = ""
    ads: int = 0
    plan_line: int | None = None
    # old → new: [{"type": campaign | adset | ad, "source_id", "copied_id"}] (in place: the same ids)
    id_map: list[dict[str, str | None]] = field(default_factory=list)
    verify_problems: list[str] = field(default_factory=list)
    switch: str | None = None
    source_paused: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def map_entry(kind: str, source: str, copied: str | None) -> dict[str, str | None]:
    return {"type": kind, "source_id": source, "copied_id": copied}


def full_map(
    record: MigrationRecord, adsets: Sequence[Mapping[str, Any]], ads: Sequence[Mapping[str, Any]]
) -> list[dict[str, str | None]]:
    """The old → new map: Graph's ``ad_object_ids`` (or the chunked copy's pieces), completed from the tree
    read (``source_adset_id`` / ``source_ad_id`` of a copy; the same ids in place)."""
    known = {(e.get("type"), e.get("source_id")) for e in record.id_map}
    out = list(record.id_map)
    in_place = record.action == "migrate_in_place"
    for kind, nodes, key in (("adset", adsets, "source_adset_id"), ("ad", ads, "source_ad_id")):
        for node in nodes:
            source = str(node.get("id")) if in_place else _opt(node.get(key))
            if source is not None and (kind, source) not in known:
                out.append(map_entry(kind, source, str(node.get("id"))))
                known.add((kind, source))
    return out


def verify_problems(
    record: MigrationRecord,
    node: Mapping[str, Any],
    adsets: Sequence[Mapping[str, Any]],
    ads: Sequence[Mapping[str, Any]],
    source_adsets: Sequence[str],
    error: Outcome | None,
) -> list[str]:
    """Why the migrated campaign does not verify (empty: it does) — S003: it "will reflect a
    smart_promotion_type of GUIDED_CREATION and will have advantage_state_info details"; a copy also has every
    mapped object and every live source ad set."""
    if not node:
        return [f"{record.new_id} could not be read ({error.reason if error else 'not found'})"]
    problems = []
    kind = _opt(node.get("smart_promotion_type"))
    if kind != GUIDED_CREATION:
        problems.append(f"smart_promotion_type reads {kind or 'nothing'}, not {GUIDED_CREATION}")
    if not isinstance(node.get("advantage_state_info"), dict):
        problems.append("no advantage_state_info")
    if record.action != "copy_and_migrate":
        return problems
    present = {str(n.get("id")) for n in (*adsets, *ads)}
    missing = [e for e in record.id_map if e.get("type") != "campaign" and e.get("copied_id") not in present]
    if missing:
        problems.append(
            f"{len(missing)} mapped object(s) missing from the copy: "
            + ", ".join(f"{e['type']} {e['source_id']} → {e['copied_id']}" for e in missing[:5])
        )
    copied = {e.get("source_id") for e in record.id_map if e.get("type") == "adset"}
    uncopied = [a for a in source_adsets if a not in copied]
    if uncopied:
        problems.append("live source ad set(s) not copied: " + ", ".join(uncopied[:5]))
    return problems


def fail(record: MigrationRecord, outcome: Outcome) -> None:
    record.state = "failed" if outcome.state is OutcomeState.FAILED else "skipped"
    record.error = outcome.error.to_dict() if outcome.error is not None else {"reason": outcome.reason}


def readiness_dict(ready: Readiness) -> dict[str, Any]:
    return {
        "levers": ready.levers,
        "ready": ready.ready,
        "changes": [asdict(c) for c in ready.changes],
        "manual": list(ready.manual),
        "applied": False,
    }


def tally(values: Iterator[str] | Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in values:
        out[value] = out.get(value, 0) + 1
    return out


def drain(report: TaskReport, env: TaskEnv) -> dict[str, Outcome]:
    """The local skips pending in ``env.ctx`` folded into ``report`` (no engine job to carry them)."""
    out = {o.op_id: o for o in env.ctx.skipped}
    for outcome in env.ctx.skipped:
        report.add(outcome)
    env.ctx.skipped.clear()
    return out
