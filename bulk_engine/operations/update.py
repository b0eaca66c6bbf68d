"""The ``update`` task: set fields on campaigns, ad sets and ads, read before write, exactly once.

Issue 16 item 1. Objects are chosen by ``ids``, a ``csv`` (header ``id`` plus one column per field; an empty
cell leaves the field alone) or a ``selector`` (the status task's: :func:`~.status.select_objects`). Values
are absolute or relative (``"+10%"``, ``"-50"``: :mod:`.relative_values`) with ``clamp`` bounds.

Flow, per round of ``batch_size`` objects (a CSV is streamed, so a 1,000,000-row file costs one round's
memory): one engine job reads the objects (``GET /<id>?fields=…``, batched 50 per request by the engine),
then :func:`~.update_fields.plan_object` turns each read into the **absolute** values to send; values the
object already has are dropped (an object left with nothing to change is ``skipped``, reason "unchanged",
and costs no call), and a change a documented rule forbids (ARCHIVED / DELETED objects, budget levels,
minimum budgets, status transitions) is ``skipped`` with the rule and the Graph code it mirrors; then one
engine job sends the writes (``POST /<id>``). Rules decidable from the job itself (fields per level, an
ad's creative, values, minimum budgets) are checked before any call (:meth:`UpdateTask.rule_issues`,
:meth:`UpdateTask.input_issues`): the CLI exits 2 naming file:line, field, value and rule.

Exactly once: the engine jobs are numbered ``<job id>/<task key>/<n>`` and the op ids are deterministic
(``read/<round>/<id>``, then ``<id>`` or ``L<line>:<id>``), so a resumed run (same job id, same journal)
answers the reads from the journal — the values read *before* the first run wrote — and computes the same
absolute targets; the writes that succeeded are answered from the journal, the rest are sent with the same
absolute values (an update is idempotent). A ``+10%`` is therefore applied once, however often the job is
killed and resumed. Without a journal a second run reads the new values: relative changes then apply again.

Dry run (``CompileContext.validate_only``, the CLI's ``--dry-run=server``): the reads run, the writes carry
``execution_options=["validate_only"]`` (Graph checks them, changes nothing) and the diff is reported.
Every object's diff (old → new per field) is in the task's ``details["diff"]`` (the JSON report), with the
prior values an undo needs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from bulk_engine.planning.graph import Operation, OpKind
from bulk_engine.protocol.catalog import MIN_DAILY_BUDGET

from .base import EngineLike, Issue, TaskEnv
from .csvinput import CsvError, count_rows, csv_issue, is_file, iter_rows
from .diff_log import DiffLog, ObjectPlan
from .reads import read_nodes
from .relative_values import Clamp, ValueSpec, parse_value
from .rules import issue
from .specs import job_model_config
from .status import OBJECT_ID, Selector, select_objects, source_issues
from .task import TaskBase, TaskReport
from .update_fields import (
    BUDGETS,
    CREATIVE_SPEC_FIELDS,
    NUMERIC,
    UPDATABLE,
    plan_object,
    read_fields,
)

__all__ = ["EXPECT", "FieldClamp", "UpdateTask"]

EXPECT = "expect."
"""CSV columns ``expect.<field>``: the value the object must still have for ``<field>`` to change (undo)."""
_ARTICLE = {"campaign": "a", "adset": "an", "ad": "an"}


class FieldClamp(BaseModel):
    """Bounds of a numeric field's new value (applied to relative and absolute values alike)."""

    model_config = job_model_config("FieldClamp")

    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=0)


@dataclass(frozen=True)
class _Target:
    """One object to update: its op-id suffix, its id and the values requested for it."""

    suffix: str
    object_id: str
    values: dict[str, ValueSpec]
    line: int | None = None
    expected: dict[str, str] | None = None  # CSV ``expect.<field>`` columns


class UpdateTask(TaskBase):
    """Set fields on many campaigns, ad sets or ads (see the module docstring)."""

    model_config = job_model_config("UpdateTask")

    type: Literal["update"]
    level: Literal["campaign", "adset", "ad"] | None = Field(
        None, description="What the ids are (required with ids or csv; a selector names its own level)"
    )
    ids: list[str] = Field(default_factory=list)
    csv: str | None = Field(
        None, description="CSV with header id plus one column per field (empty cell: unchanged)"
    )
    selector: Selector | None = None
    set: dict[str, Any] = Field(
        default_factory=dict,
        description='Field → value: absolute (1500, "Spring") or, for amounts, relative ("+10%", "-50")',
    )
    clamp: dict[str, FieldClamp] = Field(
        default_factory=dict, description="Field → {min, max}: bounds of the new value of an amount"
    )
    batch_size: int = Field(
        5000, ge=1, le=100_000, description="Objects read, then written, per round (memory per round)"
    )

    @property
    def needs_reads(self) -> bool:
        return True

    @property
    def task_level(self) -> str:
        if self.selector is not None:
            return self.selector.level
        return str(self.level or "campaign")

    def input_files(self) -> list[str]:
        return [self.csv] if self.csv else []

    # --- validation (before any call) --------------------------------------------------------------------
    def rule_issues(self) -> Iterator[Issue]:
        yield from source_issues(self, "an update task", "update.source")
        if self.selector is None and self.level is None and (self.ids or self.csv):
            yield Issue(
                ("level",),
                "level is required with ids or csv (campaign, adset or ad: the fields differ per level)",
                None,
                "update.level",
                has_value=False,
            )
        if self.selector is not None and self.level is not None and self.level != self.selector.level:
            yield Issue(
                ("level",), f"differs from selector.level {self.selector.level!r}", self.level, "update.level"
            )
        if self.selector is not None:
            yield from self.selector.issues("update.regex")
        if not self.set and not self.csv:
            yield Issue(
                ("set",), "nothing to change: give set (field: value)", None, "update.fields", has_value=False
            )
        seen: dict[str, int] = {}
        for i, object_id in enumerate(self.ids):
            if not OBJECT_ID.match(object_id):
                yield Issue(("ids", i), "must be a numeric object id", object_id, "update.id")
            elif object_id in seen:
                yield Issue(("ids", i), f"listed twice (also ids[{seen[object_id]}])", object_id, "update.id")
            seen.setdefault(object_id, i)
        level = self.task_level
        for name, raw in self.set.items():
            found = list(_field_issues(level, name, ("set", name), raw))
            yield from found
            if not found:
                yield from _value_issues(name, raw, ("set", name))
        for name, bounds in self.clamp.items():
            path = ("clamp", name)
            if name not in NUMERIC:
                yield Issue(path, "only amounts (budgets, bids, caps) can be clamped", name, "update.clamp")
            elif bounds.min is not None and bounds.max is not None and bounds.min > bounds.max:
                yield Issue(
                    path, f"min {bounds.min} is greater than max {bounds.max}", bounds.min, "update.clamp"
                )
            elif name in BUDGETS and bounds.max is not None and bounds.max < MIN_DAILY_BUDGET:
                yield issue(
                    "budget.too_low.update",
                    (*path, "max"),
                    f"a budget must be at least {MIN_DAILY_BUDGET}: this max leaves no valid value",
                    bounds.max,
                )

    def input_issues(self, base_dir: Path) -> Iterator[Issue]:
        if not self.csv:
            return
        path = base_dir / self.csv if not Path(self.csv).is_absolute() else Path(self.csv)
        if not is_file(path):
            yield Issue(("csv",), f"CSV file not found: {path}", self.csv, "csv.missing")
            return
        found = 0
        header_checked = False
        level = self.task_level
        try:
            for row in iter_rows(path, "id"):
                problems: list[Issue] = []
                if not header_checked:
                    header_checked = True
                    for name in row.values:
                        field_name = name.removeprefix(EXPECT)
                        if name != "id":
                            problems.extend(_field_issues(level, field_name, ("csv",), f"column {name}"))
                        if name.startswith(EXPECT) and field_name not in row.values:
                            problems.append(
                                Issue(
                                    ("csv",),
                                    f"column {name} without a {field_name} column",
                                    name,
                                    "update.expect",
                                )
                            )
                    if problems:  # the columns are wrong: every row would say so again
                        for problem in problems:
                            yield problem.located(str(path), 1)
                        return
                object_id = row.values.get("id", "")
                if not OBJECT_ID.match(object_id):
                    problems.append(
                        Issue(
                            ("csv",),
                            f"id must be a numeric object id - got {object_id!r}",
                            row.values,
                            "csv.row",
                        )
                    )
                for name, cell in row.values.items():
                    if name != "id" and cell != "" and not name.startswith(EXPECT):
                        problems.extend(_value_issues(name, cell, ("csv",), column=name))
                for problem in problems:
                    yield problem.located(str(path), row.line)
                    found += 1
                if found >= 20:
                    return
        except (CsvError, OSError) as err:
            yield csv_issue(err, path)

    # --- compile / estimate ------------------------------------------------------------------------------
    def compile(self, env: TaskEnv) -> Iterator[Operation]:
        return iter(())  # every write is planned from a read (execute)

    def estimate(self, env: TaskEnv) -> dict[str, int]:
        if self.csv:
            return {OpKind.UPDATE.value: count_rows(env.resolve(self.csv), "id")}
        return {OpKind.UPDATE.value: len(self.ids)} if self.ids else {}

    # --- execute: read, plan, write ---------------------------------------------------------------------
    async def execute(self, engine: EngineLike, env: TaskEnv) -> TaskReport:
        report = TaskReport.for_env(env, "update")
        diff = DiffLog(report, env.account_id, dry_run=env.ctx.validate_only)
        level = self.task_level
        if self.selector is not None:
            fields = set(self.set)
            objects = await select_objects(engine, env, report, self.selector, read_fields(level, fields))
            values = self._set_values()
            targets = [_Target(str(o.get("id")), str(o.get("id")), values) for o in objects]
            read = {str(o.get("id")): o for o in objects}
            await self._write(engine, env, report, diff, targets, read, {})
        else:
            fields = set(self.set) | self._csv_columns(env)
            for n, chunk in enumerate(self._rounds(env)):
                ids = [t.object_id for t in chunk]
                nodes = await read_nodes(
                    engine,
                    ids,
                    read_fields(level, fields),
                    env.account_id,
                    report,
                    op_prefix=env.op_id("read", n),
                )
                read = {i: items[0] for i, items in nodes.items.items()}
                errors = {i: o.op_id for i, o in nodes.errors.items()}
                await self._write(engine, env, report, diff, chunk, read, errors)
        for outcome in env.ctx.skipped:  # CSV rows refused after the last round was sent
            report.add(outcome)
        env.ctx.skipped.clear()
        diff.finish()
        return report

    async def _write(
        self,
        engine: EngineLike,
        env: TaskEnv,
        report: TaskReport,
        diff: DiffLog,
        targets: list[_Target],
        read: Mapping[str, Mapping[str, Any]],
        errors: Mapping[str, str],
    ) -> None:
        """Plan every target from its read, skip what needs no call, send the rest in one engine job."""
        clamps = {name: Clamp(b.min, b.max) for name, b in self.clamp.items()}
        level = self.task_level
        ops: list[Operation] = []
        for target in targets:
            op_id = env.op_id(target.suffix)
            current = read.get(target.object_id)
            if current is None:
                why = (
                    f"reading it failed (operation {errors[target.object_id]})"
                    if target.object_id in errors
                    else "not read"
                )
                env.ctx.skip(op_id, env.account_id, OpKind.UPDATE.value, f"not updated: {why}")
                diff.add(op_id, ObjectPlan(target.object_id, refused=why), level)
                continue
            plan = plan_object(level, current, target.values, clamps, target.expected)
            diff.add(op_id, plan, level)
            if plan.state == "unchanged":
                already = ", ".join(f"{name} already {_short(current.get(name))}" for name in plan.unchanged)
                env.ctx.skip(op_id, env.account_id, OpKind.UPDATE.value, f"unchanged: {already}")
                continue
            if plan.state == "skipped":
                env.ctx.skip(op_id, env.account_id, OpKind.UPDATE.value, str(plan.refused))
                continue
            params = dict(plan.params)
            if env.ctx.validate_only:
                params["execution_options"] = ["validate_only"]
            ops.append(
                Operation(
                    op_id=op_id,
                    method="POST",
                    path=target.object_id,
                    params=params,
                    account_id=env.account_id,
                    kind=OpKind.UPDATE,
                )
            )
        outcomes = await report.run(engine, ops, env.ctx)
        diff.settle(ops, outcomes, report.results[-1].unfinished if report.results else ())

    def _set_values(self) -> dict[str, ValueSpec]:
        values: dict[str, ValueSpec] = {}
        for name, raw in self.set.items():
            spec = parse_value(raw, numeric=name in NUMERIC)
            assert isinstance(spec, ValueSpec), spec  # checked by rule_issues before any call
            values[name] = spec
        return values

    def _csv_columns(self, env: TaskEnv) -> frozenset[str]:
        """The fields a CSV sets (its header): read with every object."""
        if not self.csv:
            return frozenset()
        for row in iter_rows(env.resolve(self.csv), "id"):
            return frozenset(name.removeprefix(EXPECT) for name in row.values if name != "id")
        return frozenset()

    def _rounds(self, env: TaskEnv) -> Iterator[list[_Target]]:
        """The targets in rounds of ``batch_size``: ids in order, or CSV rows streamed."""
        base = self._set_values()
        chunk: list[_Target] = []
        for target in self._targets(env, base):
            chunk.append(target)
            if len(chunk) >= self.batch_size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def _targets(self, env: TaskEnv, base: dict[str, ValueSpec]) -> Iterator[_Target]:
        if not self.csv:
            for object_id in dict.fromkeys(self.ids):
                yield _Target(object_id, object_id, base)
            return
        seen: dict[str, int] = {}
        for row in iter_rows(env.resolve(self.csv), "id"):
            object_id = row.values.get("id", "")
            suffix = f"L{row.line}:{object_id}"
            values = dict(base)
            expected = {
                name.removeprefix(EXPECT): cell
                for name, cell in row.values.items()
                if name.startswith(EXPECT)
            }
            problem = (
                None if OBJECT_ID.match(object_id) else f"id must be a numeric object id - got {object_id!r}"
            )
            for name, cell in row.values.items():
                if name == "id" or cell == "" or problem is not None or name.startswith(EXPECT):
                    continue
                spec = parse_value(cell, numeric=name in NUMERIC)
                if isinstance(spec, str):
                    problem = f"{name}: {spec}"
                else:
                    values[name] = spec
            if problem is None and object_id in seen:
                problem = f"id {object_id} is already changed by line {seen[object_id]}"
            if problem is not None:  # the file changed after validation: never send a bad row
                env.ctx.skip(
                    env.op_id(suffix), env.account_id, OpKind.UPDATE.value, f"CSV line {row.line}: {problem}"
                )
                continue
            seen[object_id] = row.line
            if not values:
                env.ctx.skip(
                    env.op_id(suffix),
                    env.account_id,
                    OpKind.UPDATE.value,
                    f"CSV line {row.line}: no value to set (every cell is empty)",
                )
                continue
            yield _Target(suffix, object_id, values, row.line, expected or None)


def _field_issues(level: str, name: str, path: tuple[str | int, ...], value: Any) -> Iterator[Issue]:
    """A field the level cannot update, or a creative's field on an ad (never edit a creative)."""
    if name in CREATIVE_SPEC_FIELDS:
        yield issue(
            "update.creative",
            path,
            f"{name} is a field of the ad's creative, and creatives cannot be edited after they are created: "
            "create the new creative (a create task) and set the ads' creative to its id",
            value,
        )
    elif name not in UPDATABLE.get(level, frozenset()):
        yield issue(
            "update.field",
            path,
            f"{name} cannot be updated on {_ARTICLE[level]} {level} (updatable: "
            f"{', '.join(sorted(UPDATABLE[level]))})",
            value,
        )


def _value_issues(
    name: str, raw: Any, path: tuple[str | int, ...], *, column: str | None = None
) -> Iterator[Issue]:
    where = f"column {column}: " if column else ""
    if name == "creative":
        creative_id = raw.get("creative_id") if isinstance(raw, Mapping) else raw
        if (isinstance(raw, Mapping) and set(raw) - {"creative_id"}) or not OBJECT_ID.match(str(creative_id)):
            yield issue(
                "update.creative",
                path,
                f"{where}an ad's creative is changed by pointing it at another creative: give its id "
                '(creative: "120…" or {creative_id: "120…"}), never a creative spec',
                raw,
            )
        return
    if name == "status" and str(raw).upper() not in ("ACTIVE", "PAUSED", "ARCHIVED", "DELETED"):
        yield Issue(path, f"{where}status must be ACTIVE, PAUSED, ARCHIVED or DELETED", raw, "update.value")
        return
    spec = parse_value(raw, numeric=name in NUMERIC)
    if isinstance(spec, str):
        yield Issue(path, f"{where}{name}: {spec}", raw, "update.value")
        return
    if name in BUDGETS and not spec.is_relative and int(spec.absolute) < MIN_DAILY_BUDGET:
        yield issue(
            "budget.too_low.update",
            path,
            f"{where}{name} must be at least {MIN_DAILY_BUDGET} (cents)",
            raw,
        )


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:59] + "…"
