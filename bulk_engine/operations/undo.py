"""Undo of update, status, create and copy jobs (issue 16 item 3): what a job changed or made, and the job that
takes it back.

What a job leaves for its undo:

- **update / status**: the prior values it replaced (``before``) and the values it set (``after``);
- **create / copy**: the objects it made (``created``: graph id, level, the status it made them with). Only the
  top of each made tree is listed: an ad set or ad whose parent the same task made follows its parent (S003
  §Manage Your Ad Object's Status: a paused or deleted campaign's objects inherit that status), while one made
  under a pre-existing parent (a raw ``operations`` create, an ad-set copy into a target campaign) is its own
  top. Tops are found by the op-id grammar (``<parent op>/<child>``: :mod:`.create`, :mod:`.copy`), against
  every object the task made, so a chunked copy's pieces follow its shell.

Sources:

- a run's **report** (``--report``; ``tasks[i].details.diff``, :mod:`.diff_log`, and its ``operations``) or
  the **undo file** the CLI writes next to it (``<report>.undo.json``, :func:`undo_document` of the report,
  written after every run that changed or made something). The status each created object was made with is
  not in a report: it comes from the job file (``source``) compiled again (:mod:`.undo_created`; refused when
  the file's fingerprint is not the run's) — the undo file captures it right after the run;
- the **journal** (:func:`undo_from_journal`): the update task's reads are journaled with their results —
  the values before the job wrote — its writes with their absolute targets, and every create or copy with
  its plan (the status sent) and its graph id, so an interrupted run, whose report is partial, can still be
  undone.

The inverse job (:func:`write_undo_job`) is an ordinary job file: one ``update`` task per (task, ad account,
level), reading a CSV ``id,<field>…,expect.<field>…`` — restore each field to its prior value, and set each
created top's ``status`` to ``PAUSED`` (``created="pause"``, the default) or ``DELETED`` (``"delete"``) —
but only where the object still has the value the job set (``expect.``; for a created object, the status it
was made with): an object someone changed since (re-activated, paused, deleted) is skipped and listed
(``update.changed_since``), never overwritten; one already at the target is skipped as unchanged. Its
children are then left as they are. Being a job, the undo is read before written, journaled (job id
``undo-<job id>``, ``undo-<job id>-delete`` for a delete, so a killed undo resumes without applying anything
twice) and undoable itself (its report has a diff like any update's: undoing a pause re-activates).

Not undoable (listed in ``not_undoable``): objects whose write did not succeed (but a write that failed
after an attempt whose outcome was unknown may have been applied: it is restored, under its ``expect.``
guard), a field that had no value before (Graph cannot unset a field by update), status changes whose
prior status was not read (a status task with plain ids and no ``read_current``), a dry run, copies made with ``status_option:
INHERITED_FROM_SOURCE`` (the status they were made with is unknown, so a change since could not be told),
created objects whose job file is gone or changed (undo from the journal instead), **migrate** tasks as updates
(their switch-over's pauses are never restored alone, which would re-activate a source next to its Advantage+
copy: the document lists each migration in ``migrations`` and :func:`write_undo_job` with ``rollback=True``
— ``bulk-engine undo`` — adds a ``migrate`` task in ``mode: rollback`` for it, reading the migration's
journal or, without one, its report: :mod:`.migrate_rollback`) and **creatives**, with ``pause`` and ``delete`` alike. A
creative does not deliver, so there is nothing to pause; and it is not deleted, because the status section
(S003 §Manage Your Ad Object's Status) documents statuses and DELETED for campaigns, ad sets and ads only
(of a creative, only "name and run status" may change, with no values given: §Update Ads), Graph answers a
creative whose ``object_story_id`` is already in use with the *existing* creative's id (§Ad Creative), so a
creative "created" by the job may be someone else's, and a DELETED ad still exists and references its
creative — "no ad uses it any more" cannot be known. The ids are listed; delete them by hand if wanted.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from bulk_engine.persistence.codec import decode_plan

from .jobfile import JobSpec
from .undo_created import (
    CREATED_MODES,
    CREATING_TYPES,
    CREATIVE_KIND,
    LEVEL_BY_KIND,
    MIGRATE_REASON,
    CreatedMode,
    Made,
    add_created,
    created_plans,
    made_in_report,
    plans_of_report,
    status_sent,
)
from .update import EXPECT
from .update_fields import NUMERIC, display

__all__ = ["UNDO_VERSION", "undo_document", "undo_file_name", "undo_from_journal", "write_undo_job"]

UNDO_VERSION = 1
_UNDOABLE_TYPES = ("update", "status")
_TASK_WRITE = re.compile(r"^(?:L\d+:|\d+:)?\d{1,32}$")
"""The op id of an update or status task's write after its task key: ``<id>``, ``L<line>:<id>`` (a CSV row)
or ``<i>:<id>`` (a status task's listed id). Other tasks' updates — a migration's ``switch/<id>`` and
``rollback/…`` — are not undone (see :func:`undo_from_journal`)."""
_MAYBE_WRITTEN = ("succeeded", "sent", "failed")
_LEVEL_BY_PARENT = (("adset_id", "ad"), ("campaign_id", "adset"))


def undo_file_name(report: str) -> str:
    """Where a run's undo file goes: next to its JSON report, ``out/job.json`` → ``out/job.undo.json``.

    The one naming rule of the CLI (``--report``) and the Airflow operators (``report_path``, which may be a
    storage URL, ``s3://bucket/job.json``): text, not a ``Path``, so a URL keeps its ``//``."""
    folder, slash, name = report.rpartition("/")
    stem, dot, _ = name.rpartition(".")
    return f"{folder}{slash}{stem if dot and stem else name}.undo.json"


def undo_document(
    report: Mapping[str, Any],
    *,
    operations: Iterable[Mapping[str, Any]] | None = None,
    job: JobSpec | None = None,
    report_path: str | None = None,
) -> dict[str, Any]:
    """The undo file of a run report: per update / status task, every applied object's ``before`` and
    ``after`` values; per create / copy task, the tops of what it made (``created``).

    ``operations`` default to the report's own; ``job`` (the statuses the objects were made with) to the
    report's ``source`` job file, when its fingerprint is the run's. Each migrate task is listed in
    ``migrations`` with the run's journal (the report's ``journal``) and ``report_path``, the report's file."""
    doc = _empty(report.get("job_id"), report.get("source"))
    if report.get("dry_run"):
        doc["not_undoable"].append({"reason": "a dry run changes nothing: nothing to undo"})
        return doc
    creating: dict[str, str] = {}  # task key → type
    for task in report.get("tasks") or ():
        if not isinstance(task, Mapping):
            continue
        kind, details = str(task.get("type")), task.get("details")
        if kind in CREATING_TYPES and not (isinstance(details, Mapping) and details.get("validate_only")):
            creating[str(task.get("key"))] = kind
        if kind not in _UNDOABLE_TYPES:
            if kind == "migrate":
                doc["not_undoable"].append({"task": task.get("key"), "reason": MIGRATE_REASON})
            if kind == "migrate" and _migrated(details):
                doc["migrations"].append(
                    {
                        "key": task.get("key"),
                        "account_id": _account(task),
                        "job_id": report.get("job_id"),
                        "journal": report.get("journal"),
                        "report": report_path,
                    }
                )
            continue
        if isinstance(details, Mapping) and details.get("dry_run"):
            doc["not_undoable"].append({"task": task.get("key"), "reason": "a dry run changes nothing"})
            continue
        if not isinstance(details, Mapping) or not isinstance(details.get("diff"), list):
            doc["not_undoable"].append(
                {"task": task.get("key"), "reason": "no prior values recorded (a status task without reads)"}
            )
            continue
        if details.get("diff_truncated"):
            doc["not_undoable"].append(
                {
                    "task": task.get("key"),
                    "reason": f"{details['diff_truncated']:,} objects beyond the report's diff limit: undo "
                    "from the journal (bulk-engine undo JOURNAL --job JOB_ID)",
                }
            )
        objects = [
            {"id": str(e.get("id")), "level": e.get("level"), **_before_after(e.get("fields"))}
            for e in details["diff"]
            if isinstance(e, Mapping) and _maybe_applied(e)
        ]
        doc["tasks"].append(
            {"key": task.get("key"), "type": kind, "account_id": _account(task), "objects": objects}
        )
    if creating:
        if job is None:
            plans, unknown = plans_of_report(report)
        else:
            plans, unknown = created_plans(job), ""
        ops = operations if operations is not None else report.get("operations") or ()
        made = made_in_report(ops, creating, plans, unknown)
        if plans is None and "operations" in creating.values():
            doc["not_undoable"].append(
                {
                    "task": next(k for k, t in creating.items() if t == "operations"),
                    "reason": f"the objects of an operations task are known from its job file: {unknown}",
                }
            )
        add_created(doc, made, creating)
    return doc


def undo_from_journal(journal: Any, job_id: str, *, target: str | None = None) -> dict[str, Any]:
    """The undo file of ``job_id`` rebuilt from a journal: each update or status task's writes — their
    targets (the plans) and the object's values read before them (the task's journaled reads) — and each
    succeeded create or copy (its graph id and the status its plan sent). Works for interrupted runs too.

    Only the writes of update and status tasks, told by their op ids (:data:`_TASK_WRITE`): a migrate task's
    switch-over pauses each migrated source (an ``update`` too), and undoing that would re-activate the source
    next to its Advantage+ copy; a migration is taken back by its own ``mode: rollback``. Writes that did not
    succeed are included when they were sent (``sent``: in flight at a crash; ``failed``: the journal keeps no
    "unknown" flag for an update, so a failure after lost answers cannot be told from a refusal): one that was
    not applied reads as its old value and is skipped as unchanged, so including it is safe.

    Each migrate task is listed in ``migrations`` with ``target``, where its rollback reads the journal (a
    path; ``""``: the journal the undo runs with; ``None``: unknown)."""
    doc = _empty(job_id, None)
    prefix = f"{job_id}/"
    reads: dict[tuple[str, str], dict[str, Any]] = {}
    writes: list[tuple[str, str, str, dict[str, Any]]] = []
    made: dict[str, list[Made]] = {}
    migrations: dict[str, str] = {}  # task key → ad account
    for engine_job in (j for j in journal.job_ids() if j.startswith(prefix)):
        task_key = engine_job[len(prefix) :].split("/", 1)[0]
        for rec in journal.iter_ops(engine_job):
            if rec.kind == "read" and rec.result and rec.status.value == "succeeded":
                body = json.loads(rec.result)
                items = body.get("data") if isinstance(body, dict) and "data" in body else [body]
                for item in items if isinstance(items, list) else ():  # a node, or an edge page (selectors)
                    if isinstance(item, dict) and "id" in item:
                        reads.setdefault((task_key, str(item["id"])), item)
            elif rec.kind == "update" and _TASK_WRITE.match(rec.op_id.removeprefix(f"{task_key}/")):
                if rec.status.value in _MAYBE_WRITTEN:
                    op = decode_plan(json.loads(rec.plan))
                    params = {k: v for k, v in op.params.items() if k != "execution_options"}
                    writes.append((task_key, rec.account_id, str(op.path), params))
            elif rec.kind == "migrate":
                migrations.setdefault(task_key, rec.account_id)
            elif (rec.kind in LEVEL_BY_KIND or rec.kind == CREATIVE_KIND) and rec.status.value == "succeeded":
                if rec.graph_id:
                    status = status_sent(decode_plan(json.loads(rec.plan)).params)
                    unknown = "made without a status (or copied with INHERITED_FROM_SOURCE): its status is not known"
                    made.setdefault(task_key, []).append(
                        Made(rec.op_id, rec.graph_id, rec.kind, rec.account_id, status, unknown)
                    )
    tasks: dict[str, dict[str, Any]] = {}
    for task_key, account_id, object_id, params in writes:
        if task_key in migrations:  # its switch-over paused the sources: undone by its own mode: rollback
            continue
        task = tasks.setdefault(
            task_key, {"key": task_key, "type": "update", "account_id": account_id, "objects": []}
        )
        current = reads.get((task_key, object_id))
        if current is None:
            doc["not_undoable"].append(
                {"task": task_key, "id": object_id, "reason": "its prior values were not read"}
            )
            continue
        fields = {
            name: {"old": display(name, current.get(name)), "new": display(name, value)}
            for name, value in params.items()
        }
        task["objects"].append({"id": object_id, "level": _level(current), **_before_after(fields)})
    doc["tasks"] = list(tasks.values())
    for task_key in sorted(migrations):
        doc["not_undoable"].append({"task": task_key, "reason": MIGRATE_REASON})
        entry = {"key": task_key, "account_id": migrations[task_key], "job_id": job_id, "journal": target}
        doc["migrations"].append(entry)
    kept = {k: v for k, v in made.items() if k not in migrations}
    types = {k: "copy" if any(m.kind.startswith("copy") for m in v) else "create" for k, v in kept.items()}
    add_created(doc, kept, types)
    return doc


def write_undo_job(
    doc: Mapping[str, Any], folder: Path, *, created: CreatedMode = "pause", rollback: bool = False
) -> tuple[Path, list[dict[str, Any]]]:
    """Write the inverse job (``undo.json`` and one CSV per update task) into ``folder``; the job file and
    what cannot be undone (the document's list plus fields without a prior value). ``created``: what becomes
    of the objects a create or copy made — ``pause`` (status PAUSED) or ``delete`` (status DELETED) — and of
    a migration's copies. ``rollback``: each migration of the document gets its rollback task (first: its
    copies are paused before anything else is restored)."""
    folder.mkdir(parents=True, exist_ok=True)
    notes: list[dict[str, Any]] = list(doc.get("not_undoable") or ())
    tasks: list[dict[str, Any]] = []
    if rollback:
        tasks, notes = rollback_tasks(doc, notes, created)
    for n, (key, account_id, level, objects) in enumerate(_groups(doc, CREATED_MODES[created])):
        rows, fields = _rows(objects, key, notes)
        if not rows:
            continue
        name = f"undo-{n}.csv"
        with (folder / name).open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(["id", *fields, *(EXPECT + f for f in fields)])
            for object_id, before, after in rows:
                writer.writerow(
                    [object_id, *(before.get(f, "") for f in fields), *(after.get(f, "") for f in fields)]
                )
        task: dict[str, Any] = {"type": "update", "key": _key(f"undo-{key}-{n}"), "level": level, "csv": name}
        if account_id:
            task["account_id"] = account_id
        tasks.append(task)
    deletes = created == "delete" and any(task.get("created") for task in doc.get("tasks") or ())
    job_id = _job_id(str(doc.get("job_id") or "job") + ("-delete" if deletes else ""))
    job = {"version": 1, "job_id": job_id, "description": f"undo of job {doc.get('job_id')}", "tasks": tasks}
    path = folder / "undo.json"
    path.write_text(json.dumps(job, indent=2) + "\n", encoding="utf-8")
    return path, notes


# --- helpers -------------------------------------------------------------------------------------------------
def _empty(job_id: Any, source: Any) -> dict[str, Any]:
    return {
        "undo_version": UNDO_VERSION,
        "job_id": job_id,
        "source": source,
        "tasks": [],
        "not_undoable": [],
        "migrations": [],
    }


def rollback_tasks(
    doc: Mapping[str, Any], notes: list[dict[str, Any]], created: CreatedMode
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One ``migrate`` task in ``mode: rollback`` per migration of ``doc`` — from its journal when it is
    known (``journal``: a file, or ``""`` for the undo run's own), else from its report — and the notes
    left (a migration rolled back is no longer "not undone")."""
    tasks: list[dict[str, Any]] = []
    done: set[Any] = set()
    for entry in doc.get("migrations") or ():
        task: dict[str, Any] = {
            "type": "migrate",
            "key": _key(f"undo-{entry.get('key')}"),
            "mode": "rollback",
            "rollback_copies": created,
        }
        journal, report = entry.get("journal"), entry.get("report")
        if journal == "" or (journal and "://" not in journal and Path(journal).is_file()):
            task["rollback_job"] = str(entry.get("job_id"))
            if journal:
                task["rollback_journal"] = str(Path(journal).resolve())
        elif report:
            task["rollback_report"] = str(Path(report).resolve())
        else:
            notes.append(
                {
                    "task": entry.get("key"),
                    "reason": "a migration: neither its journal nor its report is known",
                }
            )
            continue
        if entry.get("account_id"):
            task["account_id"] = entry["account_id"]
        tasks.append(task)
        done.add(entry.get("key"))
    left = [n for n in notes if not (n.get("task") in done and n.get("reason") == MIGRATE_REASON)]
    return tasks, left


def _migrated(details: Any) -> bool:
    """A migrate task's report that made or migrated something (not a preflight, dry run or rollback)."""
    campaigns = details.get("campaigns") if isinstance(details, Mapping) else None
    return any(isinstance(c, Mapping) and c.get("new_id") for c in campaigns or ())


def _before_after(fields: Any) -> dict[str, dict[str, Any]]:
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for name, change in (fields or {}).items():
        if isinstance(change, Mapping):
            before[name], after[name] = change.get("old"), change.get("new")
    return {"before": before, "after": after}


def _maybe_applied(entry: Mapping[str, Any]) -> bool:
    """A diff entry whose write succeeded, or failed after an attempt whose outcome was unknown (it may have
    been applied: restoring it is safe, the ``expect.`` columns guard it)."""
    return entry.get("state") == "changed" or (
        entry.get("state") == "failed" and entry.get("outcome_unknown") is True
    )


def _account(task: Mapping[str, Any]) -> str | None:
    """The task's ad account (recorded by :class:`~.diff_log.DiffLog`)."""
    details = task.get("details")
    account = details.get("account_id") if isinstance(details, Mapping) else None
    return str(account) if account else None


def _level(read: Mapping[str, Any]) -> str:
    """The level of a read object: an ad names its ad set, an ad set its campaign (``update_fields.read_fields``)."""
    for parent, level in _LEVEL_BY_PARENT:
        if read.get(parent):
            return level
    return "campaign"


def _groups(
    doc: Mapping[str, Any], created_target: str
) -> Iterator[tuple[str, str | None, str, list[Mapping[str, Any]]]]:
    """Objects per (task, account, level): one update task each (fields are checked per level). A created
    object becomes a change of ``status`` from the one it was made with (``expect.``) to ``created_target``."""
    for task in doc.get("tasks") or ():
        groups: dict[tuple[str, str | None], list[Mapping[str, Any]]] = {}
        for obj in task.get("objects") or ():
            level = str(obj.get("level") or "campaign")
            groups.setdefault((level, task.get("account_id")), []).append(obj)
        for made in task.get("created") or ():
            change = {"before": {"status": created_target}, "after": {"status": made.get("status")}}
            account = made.get("account_id") or task.get("account_id")
            groups.setdefault((str(made.get("level")), account), []).append({"id": made.get("id"), **change})
        for (level, account), objects in groups.items():
            yield str(task.get("key")), account, level, objects


def _rows(
    objects: Iterable[Mapping[str, Any]], task_key: str, notes: list[dict[str, Any]]
) -> tuple[list[tuple[str, dict[str, str], dict[str, str]]], list[str]]:
    rows: list[tuple[str, dict[str, str], dict[str, str]]] = []
    fields: dict[str, None] = {}
    for obj in objects:
        before: dict[str, str] = {}
        after: dict[str, str] = {}
        for name, old in (obj.get("before") or {}).items():
            if old is None:
                notes.append(
                    {
                        "task": task_key,
                        "id": obj.get("id"),
                        "field": name,
                        "reason": "it had no value before the job",
                    }
                )
                continue
            before[name] = _cell(name, old)
            after[name] = _cell(name, (obj.get("after") or {}).get(name))
            fields[name] = None
        if before:
            rows.append((str(obj.get("id")), before, after))
    return rows, list(fields)


def _cell(name: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if name in NUMERIC and isinstance(value, int):
        return str(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _key(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.:-]", "-", text)[:64]


def _job_id(job_id: str) -> str:
    return _key(f"undo-{job_id}")[:128]
