"""Status changes: ACTIVE / PAUSED / ARCHIVED / DELETED for listed ids, a CSV, or a selector.

The rules (S003 §Manage Your Ad Object's Status, transition table "Status can be changed to"): a live object
(ACTIVE, PAUSED, …) may take any status; an ARCHIVED object can only become DELETED; DELETED is final. Objects
are created only ACTIVE or PAUSED. When the current status is known — a ``current_status`` CSV column,
``read_current: true`` (one read per id before the updates), or a selector (which reads it anyway) — a change
the table forbids is reported ``skipped`` with the reason and costs no call, and so is a change to the status
the object already has. Edits follow inheritance: a child of an archived campaign is archived too
(``effective_status``), so it can only become DELETED.

Hierarchy: "If the status of a campaign is set to … paused, archived, or deleted … all the objects below it
automatically inherit that status", so a selector at the campaign level never touches children, and a status
task whose ids include a campaign and (with a selector or ``read_current``) its ad sets / ads skips the
children when the parent gets the same status (``use_hierarchy``).

Inputs: ``ids`` inline; ``csv`` (header ``id[,status][,current_status]``, or a bare list of ids) streamed row by
row, so a 1,000,000-row file runs in constant memory; or ``selector`` (``level`` campaign | adset | ad, name
prefix / substring / regex, ``effective_status``, ``campaign_ids``): the selector is a pre-step that reads the
matching objects through the engine, then streams the updates.

A status task that reads (selector, ``read_current``) records each object's change, old → new
(:mod:`.diff_log`): the reports show it, ``--dry-run=server`` reports it without writing, and ``bulk-engine
undo`` restores it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from bulk_engine.persistence.keys import strip_key
from bulk_engine.planning.graph import Operation, OpKind

from .base import EngineLike, Issue, TaskEnv
from .csvinput import CsvError, CsvRow, count_rows, csv_issue, is_file, iter_rows
from .diff_log import DiffLog, ObjectPlan
from .reads import EdgeRead, read_edges, read_nodes
from .rules import RULES
from .specs import job_model_config
from .task import TaskBase, TaskReport

__all__ = ["OBJECT_ID", "Selector", "StatusTask", "check_transition", "select_objects", "source_issues"]

Status = Literal["ACTIVE", "PAUSED", "ARCHIVED", "DELETED"]
STATUSES = ("ACTIVE", "PAUSED", "ARCHIVED", "DELETED")
EffectiveStatus = Literal[
    "ACTIVE",
    "PAUSED",
    "PENDING_REVIEW",
    "DISAPPROVED",
    "PREAPPROVED",
    "PENDING_BILLING_INFO",
    "CAMPAIGN_PAUSED",
    "ARCHIVED",
    "ADSET_PAUSED",
    "IN_PROCESS",
    "WITH_ISSUES",
]
LIVE_FILTER = [
    "ACTIVE",
    "PAUSED",
    "PENDING_REVIEW",
    "DISAPPROVED",
    "PREAPPROVED",
    "PENDING_BILLING_INFO",
    "CAMPAIGN_PAUSED",
    "ADSET_PAUSED",
    "IN_PROCESS",
    "WITH_ISSUES",
]
OBJECT_ID = re.compile(r"^\d{1,32}$")
"""A Graph object id (campaign, ad set, ad, creative): digits only. Shared with the update task."""
EDGES = {"campaign": "campaigns", "adset": "adsets", "ad": "ads"}
READ_FIELDS = "id,name,status,effective_status"
PARENT_FIELDS = {"campaign": "", "adset": ",campaign_id", "ad": ",adset_id,campaign_id"}


def check_transition(current: str | None, target: str, *, effective: str | None = None) -> str | None:
    """Why ``current → target`` must not be sent (``None`` = send it). Pure; table-tested.

    ``current`` is the configured status, ``effective`` the effective one (inherited ARCHIVED / DELETED count).
    """
    if target not in STATUSES:
        return f"{target} is not a status that can be set (ACTIVE, PAUSED, ARCHIVED, DELETED)"
    seen = (current, effective)
    state = "DELETED" if "DELETED" in seen else "ARCHIVED" if "ARCHIVED" in seen else current
    if state is None:
        return None
    if state == "DELETED":
        via_parent = "" if current == "DELETED" else " (deleted with its parent)"
        if target == "DELETED":
            return "already DELETED" + via_parent
        return "DELETED is final: a deleted object's status cannot change" + via_parent
    if state == "ARCHIVED":
        via_parent = "" if current == "ARCHIVED" else " (archived with its parent)"
        if target == "ARCHIVED":
            return "already ARCHIVED" + via_parent
        if target != "DELETED":
            return "an ARCHIVED object can only become DELETED" + via_parent
        return None
    if state == target:
        return f"already {target}"
    return None


class Selector(BaseModel):
    """Which objects of the task's ad account to change: read first, filtered, then updated."""

    model_config = job_model_config("Selector")

    level: Literal["campaign", "adset", "ad"] = "campaign"
    campaign_ids: list[str] | None = Field(None, description="Only objects of these campaigns")
    name_prefix: str | None = None
    name_contains: str | None = None
    name_regex: str | None = None
    effective_status: list[EffectiveStatus] | None = Field(
        None,
        description="Server-side filter; DELETED is not allowed (deleted objects are not returned by edges)",
    )
    include_archived: bool = Field(False, description="Also select ARCHIVED objects (e.g. to delete them)")
    limit: int | None = Field(None, ge=1, description="Change at most this many objects")

    def issues(self, rule: str) -> Iterator[Issue]:
        """An invalid ``name_regex`` (paths relative to the task: ``selector.name_regex``)."""
        if self.name_regex is None:
            return
        try:
            re.compile(self.name_regex)
        except (re.error, RecursionError, OverflowError, ValueError) as err:  # too nested, {99999999999}
            yield Issue(
                ("selector", "name_regex"), f"invalid regular expression: {err}", self.name_regex, rule
            )

    def matches(self, name: str) -> bool:
        """Matched against the name as written: without the engine's idempotency key."""
        name = strip_key(name)
        if self.name_prefix is not None and not name.startswith(self.name_prefix):
            return False
        if self.name_contains is not None and self.name_contains not in name:
            return False
        return not (self.name_regex is not None and re.search(self.name_regex, name) is None)


def source_issues(task: Any, what: str, rule: str) -> Iterator[Issue]:
    """The one rule of tasks that choose objects (status, update): exactly one of ids, csv or selector."""
    sources = [k for k in ("ids", "csv", "selector") if getattr(task, k)]
    if len(sources) != 1:
        yield Issue(
            ("ids",),
            f"{what} needs exactly one of ids, csv or selector" + (f" - got {sources}" if sources else ""),
            None,
            rule,
            has_value=False,
        )


class StatusTask(TaskBase):
    """Set ACTIVE / PAUSED / ARCHIVED / DELETED on many objects (see the module docstring)."""

    model_config = job_model_config("StatusTask")

    type: Literal["status"]
    status: Status | None = Field(None, description="Target status (a CSV 'status' column may override it)")
    ids: list[str] = Field(default_factory=list)
    csv: str | None = Field(None, description="CSV of ids (header id[,status][,current_status] or bare ids)")
    selector: Selector | None = None
    read_current: bool = Field(False, description="Read each id's status first (costs one read per id)")
    level: Literal["campaign", "adset", "ad"] | None = Field(
        None, description="What the ids are (lets read_current read each id once; default: probe)"
    )
    use_hierarchy: bool = True
    archived_limit: int | None = Field(
        None,
        ge=0,
        description="Archive only while the account holds fewer archived objects of this level than this "
        "(documented cap 100,000 per type; one page says 5,000); the rest is skipped. Needs level or a selector",
    )

    @property
    def needs_reads(self) -> bool:
        return self.selector is not None or self.read_current or self._limits_archives

    @property
    def _limits_archives(self) -> bool:
        return self.archived_limit is not None and self.status == "ARCHIVED"

    def input_files(self) -> list[str]:
        return [self.csv] if self.csv else []

    # --- validation -------------------------------------------------------------------------------------
    def rule_issues(self) -> Iterator[Issue]:
        yield from source_issues(self, "a status task", "status.source")
        if self.status is None and not self.csv:
            yield Issue(
                ("status",),
                "status is required (ACTIVE, PAUSED, ARCHIVED or DELETED)",
                None,
                "status.required",
                has_value=False,
            )
        for i, object_id in enumerate(self.ids):
            if not OBJECT_ID.match(object_id):
                yield Issue(("ids", i), "must be a numeric object id", object_id, "status.id")
        if self.selector is not None:
            yield from self.selector.issues("status.regex")
        if self.archived_limit is not None and (self.csv or (self.level is None and self.selector is None)):
            yield Issue(
                ("archived_limit",),
                "archived_limit needs ids with a level, or a selector (it counts archived objects of one level)",
                self.archived_limit,
                "status.archived_limit",
            )
        if self.read_current and self.selector is not None:
            yield Issue(
                ("read_current",), "a selector always reads the current status", True, "status.read_current"
            )

    def input_issues(self, base_dir: Path) -> Iterator[Issue]:
        if not self.csv:
            return
        path = base_dir / self.csv if not Path(self.csv).is_absolute() else Path(self.csv)
        if not is_file(path):
            yield Issue(("csv",), f"CSV file not found: {path}", self.csv, "csv.missing")
            return
        found = 0
        try:
            for row in iter_rows(path, "id", columns=("status", "current_status")):
                for problem in self._row_problems(row):
                    yield Issue(("csv",), problem, row.values, "csv.row", file=str(path), line=row.line)
                    found += 1
                if found >= 20:
                    return
        except (CsvError, OSError) as err:
            yield csv_issue(err, path)

    def _row_problems(self, row: CsvRow) -> Iterator[str]:
        object_id = row.values.get("id", "")
        if not OBJECT_ID.match(object_id):
            yield f"id must be a numeric object id - got {object_id!r}"
        status = row.values.get("status") or self.status
        if status is None:
            yield "no status: give the task a status or the row a status column"
        elif status.upper() not in STATUSES:
            yield f"status must be one of {', '.join(STATUSES)} - got {status!r}"
        current = row.values.get("current_status")
        if current and current.upper() not in (*STATUSES, *LIVE_FILTER):
            yield f"current_status is not a known status - got {current!r}"

    # --- compile ------------------------------------------------------------------------------------------
    def compile(self, env: TaskEnv) -> Iterator[Operation]:
        if self.needs_reads:
            return  # planned after the reads (execute)
        if self.csv:
            for row in iter_rows(env.resolve(self.csv), "id", columns=("status", "current_status")):
                problem = next(self._row_problems(row), None)
                if problem is not None:  # the file changed after validation: never send a bad row
                    env.ctx.skip(
                        env.op_id(f"L{row.line}"),
                        env.account_id,
                        OpKind.UPDATE.value,
                        f"CSV line {row.line}: {problem}",
                    )
                    continue
                target = (row.values.get("status") or self.status or "").upper()
                current = (row.values.get("current_status") or "").upper() or None
                yield from self._update(
                    env, f"L{row.line}:{row.values['id']}", row.values["id"], target, current
                )
        else:
            for i, object_id in enumerate(self.ids):
                yield from self._update(env, f"{i}:{object_id}", object_id, str(self.status), None)

    def _update(
        self,
        env: TaskEnv,
        suffix: str,
        object_id: str,
        target: str,
        current: str | None,
        effective: str | None = None,
    ) -> Iterator[Operation]:
        op_id = env.op_id(suffix)
        reason = check_transition(current, target, effective=effective)
        if reason is not None:
            rule = RULES["status.transition"]
            if not reason.startswith("already"):
                reason = f"{reason} (rule status.transition, {rule.section})"
            env.ctx.skip(op_id, env.account_id, OpKind.UPDATE.value, f"{current} → {target}: {reason}")
            return
        params: dict[str, Any] = {"status": target}
        if env.ctx.validate_only:
            params["execution_options"] = ["validate_only"]
        yield Operation(
            op_id=op_id,
            method="POST",
            path=object_id,
            params=params,
            account_id=env.account_id,
            kind=OpKind.UPDATE,
        )

    def estimate(self, env: TaskEnv) -> dict[str, int]:
        if self.csv:
            return {OpKind.UPDATE.value: count_rows(env.resolve(self.csv), "id")}
        if self.selector is not None:
            return {}
        return {OpKind.UPDATE.value: len(self.ids)}

    # --- execute (reads first when needed) ---------------------------------------------------------------
    async def execute(self, engine: EngineLike, env: TaskEnv) -> TaskReport:
        if not self.needs_reads:
            return await super().execute(engine, env)
        report = TaskReport.for_env(env, "status")
        if self.selector is not None:
            objects = await self._select(engine, env, report, self.selector)
        elif self.read_current:
            objects = await self._read_current(engine, env, report)
        else:
            objects = [{"id": object_id} for object_id in self.ids]
        target = str(self.status)
        report.details["selected"] = len(objects)
        headroom = await self._archive_headroom(engine, env, report) if self._limits_archives else None
        ops = list(self._planned(env, objects, target, headroom))
        report.details["updates"] = len(ops)
        diff = self._diff(env, report, objects, ops, target)
        outcomes = await report.run(engine, ops, env.ctx)
        diff.settle(ops, outcomes, report.results[-1].unfinished if report.results else ())
        diff.finish()
        return report

    def _diff(
        self,
        env: TaskEnv,
        report: TaskReport,
        objects: list[dict[str, Any]],
        ops: list[Operation],
        target: str,
    ) -> DiffLog:
        """Each read object's status change (old → new), for the reports and an undo (``diff_log.py``).
        Objects whose status was not read (ids with ``archived_limit`` only) have no old value: no diff."""
        diff = DiffLog(report, env.account_id, dry_run=env.ctx.validate_only)
        planned = {op.op_id for op in ops}
        skipped = {o.op_id: str(o.reason) for o in env.ctx.skipped}
        # the level a probe found is not kept: status is a field of every level, so an undo needs none
        level = self.selector.level if self.selector is not None else str(self.level or "campaign")
        for obj in objects:
            old = _upper(obj.get("status"))
            if old is None:
                continue
            object_id = str(obj.get("id"))
            op_id = env.op_id(object_id)
            plan = ObjectPlan(object_id)
            if op_id in planned:
                plan.diff, plan.params = {"status": (old, target)}, {"status": target}
            elif skipped.get(op_id, "").split(": ", 1)[-1].startswith("already"):
                plan.unchanged = ["status"]
            else:
                plan.refused = skipped.get(op_id, "not changed")
            diff.add(op_id, plan, level)
        return diff

    async def _read_current(
        self, engine: EngineLike, env: TaskEnv, report: TaskReport
    ) -> list[dict[str, Any]]:
        """Current status (and parent ids, for the hierarchy) of every listed id.

        Reading a field a node type lacks is an error (code 100), so without ``level`` the reads probe: ad
        fields first, then ad-set fields for the ids that failed, then campaign fields.
        """
        levels = [self.level] if self.level is not None else ["ad", "adset", "campaign"]
        found: dict[str, dict[str, Any]] = {}
        remaining = list(dict.fromkeys(self.ids))
        errors: dict[str, str | None] = {}
        probes: set[str] = set()
        for level in levels:
            if not remaining:
                break
            read = await read_nodes(
                engine,
                remaining,
                READ_FIELDS + PARENT_FIELDS[level],
                env.account_id,
                report,
                op_prefix=env.op_id("read", level),
            )
            for object_id, nodes in read.items.items():
                found[object_id] = nodes[0]
            errors = {k: o.reason for k, o in read.errors.items()}
            remaining = [i for i in remaining if i not in found]
            probes.update(o.op_id for o in read.errors.values() if level != levels[-1])
        # a probe that failed because the id is of another type is not a failure of the job
        report.outcomes = [
            o for o in report.outcomes if o.op_id not in probes or o.op_id.rsplit("/", 1)[-1] in remaining
        ]
        report.details["unreadable_ids"] = errors
        return [found[i] for i in dict.fromkeys(self.ids) if i in found]

    async def _archive_headroom(self, engine: EngineLike, env: TaskEnv, report: TaskReport) -> int:
        """How many more objects of the level may be archived under ``archived_limit`` (S003 §Manage Your Ad
        Object's Status: 100,000 archived per type; over it Graph answers 100/1487990)."""
        level = self.selector.level if self.selector is not None else str(self.level)
        read = EdgeRead(
            "archived",
            f"{env.account_id}/{EDGES[level]}",
            env.account_id,
            {"fields": "id", "effective_status": ["ARCHIVED"], "summary": "total_count"},
            max_items=1,
        )
        result = await read_edges(engine, [read], report, op_prefix=env.op_id("read", "archived"))
        total = result.summaries.get("archived", {}).get("total_count")
        archived = int(total) if isinstance(total, int) else len(result.items.get("archived", []))
        limit = int(self.archived_limit or 0)
        report.details["archived_before"] = archived
        return max(0, limit - archived)

    def _planned(
        self, env: TaskEnv, objects: list[dict[str, Any]], target: str, headroom: int | None = None
    ) -> Iterator[Operation]:
        ids = {str(o.get("id")) for o in objects}
        for obj in objects:
            object_id = str(obj.get("id"))
            parent = next(
                (str(obj[k]) for k in ("adset_id", "campaign_id") if obj.get(k) and str(obj[k]) in ids), None
            )
            if self.use_hierarchy and parent is not None and target in ("PAUSED", "ARCHIVED", "DELETED"):
                env.ctx.skip(
                    env.op_id(object_id),
                    env.account_id,
                    OpKind.UPDATE.value,
                    f"hierarchy: its parent {parent} is set to {target} in this task and the child inherits it",
                )
                continue
            planned = list(
                self._update(
                    env,
                    object_id,
                    object_id,
                    target,
                    _upper(obj.get("status")),
                    _upper(obj.get("effective_status")),
                )
            )
            if planned and headroom is not None:
                if headroom <= 0:
                    env.ctx.skip(
                        env.op_id(object_id),
                        env.account_id,
                        OpKind.UPDATE.value,
                        f"archived-object limit {self.archived_limit} reached: delete archived objects before "
                        "archiving more (Graph would answer 100/1487990)",
                    )
                    continue
                headroom -= 1
            yield from planned

    async def _select(
        self, engine: EngineLike, env: TaskEnv, report: TaskReport, selector: Selector
    ) -> list[dict[str, Any]]:
        fields = READ_FIELDS + ("" if selector.level == "campaign" else ",campaign_id")
        return await select_objects(engine, env, report, selector, fields)


async def select_objects(
    engine: EngineLike, env: TaskEnv, report: TaskReport, selector: Selector, fields: str
) -> list[dict[str, Any]]:
    """The objects ``selector`` picks, read with ``fields`` (which must include ``id,name,effective_status``):
    edges of the account or of the listed campaigns, filtered by name, in read order, at most ``limit``.
    Shared by the status and update tasks."""
    params: dict[str, Any] = {"fields": fields}
    wanted = list(selector.effective_status or [])
    if selector.include_archived:
        wanted = [*(wanted or LIVE_FILTER), "ARCHIVED"]
    if wanted:
        params["effective_status"] = sorted(set(wanted))
    edge = EDGES[selector.level]
    if selector.campaign_ids and selector.level != "campaign":
        reads = [EdgeRead(c, f"{c}/{edge}", env.account_id, params) for c in selector.campaign_ids]
    elif selector.campaign_ids:
        reads = []
    else:
        reads = [EdgeRead("account", f"{env.account_id}/{edge}", env.account_id, params)]
    objects: list[dict[str, Any]] = []
    if reads:
        result = await read_edges(engine, reads, report, op_prefix=env.op_id("read"))
        report.details["read_errors"] = {k: o.reason for k, o in result.errors.items()}
        for read in reads:
            objects.extend(result.items.get(read.key, []))
    else:  # campaign level restricted to listed campaigns: read them by id
        nodes = await read_nodes(
            engine,
            selector.campaign_ids or [],
            fields,
            env.account_id,
            report,
            op_prefix=env.op_id("read"),
        )
        objects = [n[0] for c in selector.campaign_ids or [] if (n := nodes.items.get(c))]
        if not selector.include_archived:
            objects = [o for o in objects if _upper(o.get("effective_status")) != "ARCHIVED"]
    # Graph paging can list an object twice (on two pages, or two listed campaigns' edges): each object once,
    # as first read, or its op id would repeat (the engine refuses the job) and its diff entry be overwritten
    unique: dict[str, dict[str, Any]] = {}
    for obj in objects:
        unique.setdefault(str(obj.get("id")), obj)
    objects = list(unique.values())
    selected = [o for o in objects if selector.matches(str(o.get("name", "")))]
    if selector.limit is not None:
        selected = selected[: selector.limit]
    return selected


def _upper(value: Any) -> str | None:
    return str(value).upper() if value not in (None, "") else None
