"""The objects a create or copy job made, as an undo needs them: which are the tops of their trees, and the
status each was made with (the ``expect.status`` of its undo). See :mod:`.undo` for the whole design and why
creatives are listed, never paused or deleted.

The status is not in a run report: :func:`created_plans` compiles the job file again (op ids are
deterministic, :mod:`.create`) for the status each create sends, and takes a copy task's ``status_option``;
:func:`plans_of_report` refuses a job file whose fingerprint is not the run's. Tops are found by the op-id
grammar (``<parent op>/<child>``) against every object the task made (:func:`add_created`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from bulk_engine.errors import JobValidationError

from .base import CompileContext
from .copy import CopyTask
from .create import CreateTask
from .jobfile import JobSpec, load_job
from .raw import OperationsTask

__all__ = [
    "CREATED_MODES",
    "CREATING_TYPES",
    "CREATIVE_KIND",
    "LEVEL_BY_KIND",
    "MIGRATE_REASON",
    "CreatedMode",
    "CreatedPlans",
    "Made",
    "add_created",
    "created_plans",
    "made_in_report",
    "plans_of_report",
    "status_sent",
]

CREATING_TYPES = ("create", "copy", "operations")
LEVEL_BY_KIND = {
    "create_campaign": "campaign",
    "copy": "campaign",
    "create_adset": "adset",
    "copy_adset": "adset",
    "create_ad": "ad",
    "copy_ad": "ad",
}
CREATIVE_KIND = "create_creative"
_INHERITED = "INHERITED_FROM_SOURCE"
CreatedMode = Literal["pause", "delete"]
CREATED_MODES: dict[str, str] = {"pause": "PAUSED", "delete": "DELETED"}
"""``--created`` → the status a created object's undo sets."""
_CREATIVE_REASON = (
    "a creative is neither paused nor deleted by an undo: it does not deliver, the seeds document no DELETED "
    "for creatives, and one created with an object_story_id in use is someone else's (see bulk_engine."
    "operations.undo)"
)
MIGRATE_REASON = (
    "a migration is not undone as updates: it is taken back by a migrate task in mode: rollback "
    "(bulk-engine undo adds one)"
)


@dataclass
class CreatedPlans:
    """What the job file says about the objects its tasks create: per create (or raw ``operations``) op id
    its task key and the status it creates the object with; per copy task the status of its copies."""

    ops: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    copies: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Made:
    """One object a create or copy operation made."""

    op_id: str
    graph_id: str
    kind: str
    account_id: str | None
    status: str | None
    unknown: str  # why ``status`` is None


def created_plans(job: JobSpec) -> CreatedPlans:
    """The status each create of ``job`` sends (its tasks compiled again: op ids are deterministic), and the
    ``status_option`` of each copy task (``None`` for ``INHERITED_FROM_SOURCE``: not known)."""
    plans = CreatedPlans()
    ctx = CompileContext(default_account_id="act_0")  # op ids and statuses do not depend on the account
    for i, task in enumerate(job.tasks):
        env = job.task_env(i, ctx)
        if isinstance(task, CopyTask):
            plans.copies[env.key] = None if task.status_option == _INHERITED else task.status_option
        elif isinstance(task, CreateTask | OperationsTask):
            for op in task.compile(env):
                if op.kind.value in LEVEL_BY_KIND:
                    plans.ops[op.op_id] = (env.key, status_sent(op.params))
    return plans


def plans_of_report(report: Mapping[str, Any]) -> tuple[CreatedPlans | None, str]:
    """The plans of the report's job file, or why they cannot be had."""
    source = report.get("source")
    if not source:
        return (
            None,
            "the status it was made with is not in the report and no job file is named: undo from the journal",
        )
    try:
        job = load_job(str(source))
    except (JobValidationError, OSError, ValueError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        return None, f"the status it was made with is in job file {source}, which cannot be read ({first})"
    fingerprint = report.get("fingerprint")
    if fingerprint and job.fingerprint() != fingerprint:
        return None, f"job file {source} changed since the run: undo from the undo file or the journal"
    return created_plans(job), ""


def made_in_report(
    operations: Iterable[Mapping[str, Any]],
    creating: Mapping[str, str],
    plans: CreatedPlans | None,
    unknown: str,
) -> dict[str, list[Made]]:
    """Every succeeded create / copy of the creating tasks, per task key, with the status it was made with."""
    made: dict[str, list[Made]] = {}
    for op in operations:
        kind = str(op.get("kind"))
        if op.get("state") != "succeeded" or not op.get("graph_id"):
            continue
        if kind not in LEVEL_BY_KIND and kind != CREATIVE_KIND:
            continue
        op_id = str(op.get("op_id"))
        planned = plans.ops.get(op_id) if plans is not None else None
        key = planned[0] if planned is not None else op_id.split("/", 1)[0]
        if planned is None and creating.get(key) not in ("create", "copy"):
            continue  # not an op of a creating task (a raw task's op is known from its job file only)
        status: str | None
        if creating.get(key) == "copy":
            status = plans.copies.get(key) if plans is not None else None
            why = (
                unknown or f"copied with status_option {_INHERITED}: the status it was made with is not known"
            )
        elif planned is not None:
            status, why = planned[1], "created without a status: the status it was made with is not known"
        else:
            status = None
            why = unknown or "not in its job file's plan: the status it was made with is not known"
        account = op.get("account_id")
        made.setdefault(key, []).append(
            Made(op_id, str(op["graph_id"]), kind, str(account) if account else None, status, why)
        )
    return made


def add_created(doc: dict[str, Any], made: Mapping[str, list[Made]], types: Mapping[str, str]) -> None:
    """One document task per creating task: the tops of what it made (children follow their parent), each
    with the status it was made with; creatives and objects of unknown status in ``not_undoable``."""
    notes = doc["not_undoable"]
    for key, objects in made.items():
        op_ids = {m.op_id for m in objects if m.kind != CREATIVE_KIND}
        seen: set[str] = set()
        created: list[dict[str, Any]] = []
        for m in objects:
            if m.kind == CREATIVE_KIND:
                notes.append({"task": key, "id": m.graph_id, "reason": _CREATIVE_REASON})
                continue
            if _under(m.op_id, op_ids) or m.graph_id in seen:
                continue  # follows its parent, or the same object twice (a chunked copy's shell)
            seen.add(m.graph_id)
            if m.status is None:
                notes.append({"task": key, "id": m.graph_id, "reason": m.unknown})
                continue
            created.append(
                {
                    "id": m.graph_id,
                    "level": LEVEL_BY_KIND[m.kind],
                    "status": m.status,
                    "account_id": m.account_id,
                    "op_id": m.op_id,
                }
            )
        if created:
            account = next((c["account_id"] for c in created if c["account_id"]), None)
            doc["tasks"].append(
                {
                    "key": key,
                    "type": types.get(key, "create"),
                    "account_id": account,
                    "objects": [],
                    "created": created,
                }
            )


def _under(op_id: str, op_ids: set[str]) -> bool:
    """Whether an op id's parent (a ``/``-prefix of it) made an object too: then the object follows it."""
    parts = op_id.split("/")
    return any("/".join(parts[:n]) in op_ids for n in range(1, len(parts)))


def status_sent(params: Mapping[str, Any]) -> str | None:
    """The status a create (``status``) or copy (``status_option``) makes its object with."""
    status = params.get("status") or params.get("status_option")
    return None if status in (None, _INHERITED) else str(status).upper()
