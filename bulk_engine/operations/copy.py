"""Copy campaigns, ad sets and ads through the ``/copies`` edges, with the chunked deep-copy fallback.

``POST /<id>/copies`` (SPEC-DIGEST §6.1, [supplemental] parameters): ``deep_copy``, ``status_option``
(ACTIVE | PAUSED | INHERITED_FROM_SOURCE), ``rename_options`` ({rename_strategy: DEEP_RENAME |
ONLY_TOP_LEVEL_RENAME | NO_RENAME, rename_prefix, rename_suffix}), ``campaign_id`` (target campaign of an
ad-set copy), ``adset_id`` (target ad set of an ad copy), ``start_time``/``end_time`` (copied ad sets). The
answer is ``{"copied_<type>_id", "ad_object_ids": [{ad_object_type, source_id, copied_id}]}``.

A synchronous deep copy is capped (code 100 / subcode ``1885194`` "too large for a synchronous request").
The fallback copies the same tree in pieces, each piece one object (``deep_copy=false``), linked by
references so the engine orders them and packs them into batches: the shell (with the requested top-level
rename and target), then every live ad set into the new campaign (``campaign_id`` = the shell's
``copied_campaign_id``), then every live ad into its new ad set. Children keep their names unless the rename
strategy is ``DEEP_RENAME`` (then each child copy is renamed like Graph would), and ``status_option`` applies
to every piece, so the result is the tree a synchronous deep copy would have made. The refused ``/copies``
op then ends ``succeeded`` with the answer a synchronous copy would have given (``copied_<type>_id``,
``ad_object_ids``) and ``completed_by: "chunked copy"`` — the work is done, so ``bulk-engine run`` exits 0 and
the Airflow task succeeds — or, when a piece failed, ``skipped`` naming the chunked copy
(:func:`settle_fallback`). Children are copied in
creation order (edges list newest first; the order is reversed).

A dry run (``validate_only``; ``/copies`` has none in Graph) reads each source and its live tree and reports
its plan (sync, chunked fallback, refused, unreadable) as the reason of its ``skipped`` copy; nothing is
written.

Op ids: ``<task>/copy/<source>`` (the synchronous copy), ``<task>/chunk/<source>`` (the shell),
``<task>/chunk/<source>/<adset>`` and ``…/<adset>/<ad>`` (children), reads ``<task>/read/…``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

from bulk_engine.planning.graph import Operation, OpKind
from bulk_engine.protocol.refs import Ref
from bulk_engine.results import Outcome, OutcomeState

from .base import EngineLike, Issue, TaskEnv
from .clone import clone_campaigns
from .reads import EdgeRead, read_edges, read_nodes
from .specs import GraphTime, job_model_config
from .task import TaskBase, TaskReport

__all__ = [
    "SUBCODE_SYNC_COPY_LIMIT",
    "CopyPlan",
    "CopyTask",
    "RenameOptions",
    "chunked_copy",
    "settle_fallback",
]

SUBCODE_SYNC_COPY_LIMIT = 1885194
# Dry runs only (a real run asks Graph): "You can copy a maximum of 3 entities between campaign, ad sets and
# ads" synchronously (SPEC-DIGEST §6.1 [supplemental], also the simulator's default ``sync_copy_limit``).
SYNC_COPY_LIMIT_ESTIMATE = 3
FALLBACK_DONE = (
    "completed by chunked copy {op}: the synchronous deep copy answered 100/1885194 (too large), the tree was "
    "copied piece by piece ({n} objects created)"
)
FALLBACK_INCOMPLETE = (
    "replaced by chunked copy {op} (the synchronous deep copy answered 100/1885194), which is incomplete: "
    "{failed} of {n} pieces did not succeed (their outcomes say why)"
)
Level = Literal["campaign", "adset", "ad"]
COPIED_KEY = {"campaign": "copied_campaign_id", "adset": "copied_adset_id", "ad": "copied_ad_id"}
KIND = {"campaign": OpKind.COPY, "adset": OpKind.COPY_ADSET, "ad": OpKind.COPY_AD}


class RenameOptions(BaseModel):
    model_config = job_model_config("RenameOptions")

    rename_strategy: Literal["DEEP_RENAME", "ONLY_TOP_LEVEL_RENAME", "NO_RENAME"] = "ONLY_TOP_LEVEL_RENAME"
    rename_prefix: str | None = None
    rename_suffix: str | None = None

    def for_children(self) -> RenameOptions:
        """The options of a child piece in a chunked copy (each piece is 'top level' in its own call)."""
        if self.rename_strategy == "DEEP_RENAME":
            return RenameOptions(
                rename_strategy="ONLY_TOP_LEVEL_RENAME",
                rename_prefix=self.rename_prefix,
                rename_suffix=self.rename_suffix,
            )
        return RenameOptions(rename_strategy="NO_RENAME")


class CopyTask(TaskBase):
    """Copy objects with ``/copies`` (see the module docstring); deep copies fall back to chunked copies."""

    model_config = job_model_config("CopyTask")

    type: Literal["copy"]
    level: Level = "campaign"
    source_ids: list[str] = Field(min_length=1)
    deep_copy: bool = True
    status_option: Literal["ACTIVE", "PAUSED", "INHERITED_FROM_SOURCE"] = "PAUSED"
    rename_options: RenameOptions | None = None
    target_campaign_id: str | None = Field(None, description="Ad-set copies: the campaign to copy into")
    target_adset_id: str | None = Field(None, description="Ad copies: the ad set to copy into")
    start_time: GraphTime | None = None
    end_time: GraphTime | None = None
    target_account_id: str | None = Field(
        None,
        pattern=r"^act_\d+$",
        description="Cross-account clone: re-create the campaign trees in this ad account (ids remapped)",
    )
    fallback: Literal["chunked", "none"] = Field(
        "chunked", description="What to do when a deep copy exceeds the synchronous limit (100/1885194)"
    )
    video_map: dict[str, str] | None = Field(
        None,
        description="Cross-account clone: source video id → the same video in the target account "
        "(videos belong to their ad account; Graph documents no cross-account video copy)",
    )

    @property
    def needs_reads(self) -> bool:
        return True  # the fallback reads the source tree

    @property
    def supports_validate_only(self) -> bool:
        return False

    def rule_issues(self) -> Iterator[Issue]:
        for i, source in enumerate(self.source_ids):
            if not source.isdigit():
                yield Issue(("source_ids", i), "must be a numeric object id", source, "copy.id")
        if self.target_campaign_id is not None and self.level != "adset":
            yield Issue(
                ("target_campaign_id",),
                "only ad-set copies take a target campaign",
                self.target_campaign_id,
                "copy.target",
            )
        if self.target_adset_id is not None and self.level != "ad":
            yield Issue(
                ("target_adset_id",),
                "only ad copies take a target ad set",
                self.target_adset_id,
                "copy.target",
            )
        if self.target_account_id is not None and self.level != "campaign":
            yield Issue(
                ("target_account_id",),
                "cross-account clones copy campaigns",
                self.target_account_id,
                "copy.clone",
            )
        if self.video_map is not None and self.target_account_id is None:
            yield Issue(
                ("video_map",), "only cross-account clones remap videos", self.video_map, "copy.clone"
            )
        if (self.start_time is not None or self.end_time is not None) and self.level == "ad":
            yield Issue(
                ("start_time",), "start_time/end_time apply to copied ad sets", self.start_time, "copy.times"
            )

    def copy_params(self, *, deep: bool | None = None, rename: RenameOptions | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {
            "deep_copy": self.deep_copy if deep is None else deep,
            "status_option": self.status_option,
        }
        options = rename or self.rename_options
        if options is not None:
            params["rename_options"] = options.model_dump(exclude_none=True)
        if self.level == "adset" and self.target_campaign_id:
            params["campaign_id"] = self.target_campaign_id
        if self.level == "ad" and self.target_adset_id:
            params["adset_id"] = self.target_adset_id
        for key in ("start_time", "end_time"):
            if getattr(self, key) is not None and self.level != "ad":
                params[key] = getattr(self, key)
        return params

    def compile(self, env: TaskEnv) -> Iterator[Operation]:
        """The synchronous copies (the fallback is planned by :meth:`execute` after reading the sources)."""
        for source in self.source_ids:
            yield Operation(
                op_id=env.op_id("copy", source),
                method="POST",
                path=(source, "copies"),
                params=self.copy_params(),
                account_id=env.account_id,
                kind=KIND[self.level],
                campaign_key=self.target_campaign_id if self.level == "adset" else None,
            )

    def estimate(self, env: TaskEnv) -> dict[str, int]:
        return {KIND[self.level].value: len(self.source_ids)}

    async def execute(self, engine: EngineLike, env: TaskEnv) -> TaskReport:
        report = TaskReport.for_env(env, "copy")
        if self.target_account_id is not None:
            rename = self.rename_options.model_dump(exclude_none=True) if self.rename_options else None
            report.details["copies"] = await clone_campaigns(
                engine,
                env,
                report,
                self.source_ids,
                self.target_account_id,
                status_option=self.status_option,
                rename=rename,
                video_map=self.video_map,
            )
            if env.ctx.validate_only:
                report.details["validate_only"] = "source trees read, clone planned; nothing written"
            return report
        if env.ctx.validate_only:
            await self._dry_run(engine, env, report)
            return report
        outcomes = await report.run(engine, list(self.compile(env)), env.ctx)
        copies: dict[str, dict[str, Any]] = {}
        too_large: list[str] = []
        for source in self.source_ids:
            outcome = outcomes.get(env.op_id("copy", source))
            if outcome is None:
                continue
            if outcome.state is OutcomeState.SUCCEEDED:
                copies[source] = _mapping_from_result(outcome.result, self.level, source, "sync")
            elif _is_sync_limit(outcome) and self.fallback == "chunked" and self.deep_copy:
                too_large.append(source)
            else:
                copies[source] = {"mode": "failed", "reason": outcome.reason, "new_id": None, "objects": []}
        if too_large:
            plans = await chunked_copy(engine, env, report, self, too_large)
            for plan in plans:
                copies[plan.source_id] = plan.summary()
                settle_fallback(report, env.op_id("copy", plan.source_id), plan)
        report.details["copies"] = copies
        return report

    async def _dry_run(self, engine: EngineLike, env: TaskEnv, report: TaskReport) -> None:
        """``/copies`` has no ``validate_only``: read each source and its live tree, compare its size with the
        synchronous deep-copy limit and report the plan (sync copy, chunked fallback, or refusal) per source,
        each planned copy ``skipped`` with that plan as its reason. Nothing is written."""
        found = await read_nodes(
            engine, self.source_ids, "id,name", env.account_id, report, op_prefix=env.op_id("read", "src")
        )
        readable = [s for s in self.source_ids if s in found.items]
        trees: dict[str, list[tuple[str, list[str]]]] = {s: [] for s in readable}
        if self.deep_copy and self.level != "ad" and readable:
            trees = await _read_trees(engine, env, report, self.level, readable)
        plans: dict[str, dict[str, Any]] = {}
        for source in self.source_ids:
            op_id = env.op_id("copy", source)
            if source not in readable:
                error = found.errors.get(source)
                reason = f"dry run: the source cannot be read ({error.reason if error else 'not found'})"
                plans[source] = {"plan": "unreadable", "reason": reason}
            else:
                if self.level == "campaign":
                    objects = 1 + sum(1 + len(ads) for _, ads in trees[source])
                else:  # an ad set's tree is [(itself, its ads)]; an ad has none
                    objects = 1 + sum(len(ads) for _, ads in trees[source])
                over = self.deep_copy and objects > SYNC_COPY_LIMIT_ESTIMATE
                plan = "sync" if not over else ("chunked" if self.fallback == "chunked" else "refused")
                reason = {
                    "sync": f"dry run: one /copies call would copy {objects} object(s)",
                    "chunked": f"dry run: {objects} objects exceed the synchronous deep-copy limit (about "
                    f"{SYNC_COPY_LIMIT_ESTIMATE}); expect 100/1885194, then a chunked copy of {objects} pieces",
                    "refused": f"dry run: {objects} objects exceed the synchronous deep-copy limit; expect "
                    "100/1885194 (fallback: none)",
                }[plan]
                plans[source] = {"plan": plan, "objects": objects, "reason": reason}
            env.ctx.skip(op_id, env.account_id, KIND[self.level].value, plans[source]["reason"])
        for outcome in env.ctx.skipped:
            report.add(outcome)
        env.ctx.skipped.clear()
        report.details["copies"] = plans
        report.details["validate_only"] = (
            "sources read, copies planned; /copies has no dry run, nothing written"
        )


def settle_fallback(report: TaskReport, op_id: str, plan: CopyPlan) -> None:
    """The synchronous copy ``op_id`` that ``plan`` replaced ends ``succeeded`` — its result is the copy's
    answer as Graph would have given it, marked ``completed_by: chunked copy`` — when every piece succeeded;
    else ``skipped`` naming the chunked copy (the failed pieces carry the errors). Either way the work is
    counted once, so a complete copy exits 0 (``bulk-engine run``) and succeeds in Airflow."""
    if plan.new_id is not None and not plan.failed:
        reason = FALLBACK_DONE.format(op=plan.shell_op, n=len(plan.copied))
        report.complete(op_id, plan.result(), reason)
    else:
        reason = FALLBACK_INCOMPLETE.format(op=plan.shell_op, failed=len(plan.failed), n=len(plan.pieces))
        report.supersede(op_id, reason)


def _is_sync_limit(outcome: Outcome) -> bool:
    error = outcome.error
    return error is not None and error.code == 100 and error.error_subcode == SUBCODE_SYNC_COPY_LIMIT


def _mapping_from_result(result: Any, level: str, source: str, mode: str) -> dict[str, Any]:
    body = result if isinstance(result, dict) else {}
    objects = [
        {
            "type": o.get("ad_object_type"),
            "source_id": str(o.get("source_id")),
            "copied_id": str(o.get("copied_id")),
        }
        for o in body.get("ad_object_ids") or []
        if isinstance(o, dict)
    ]
    return {"mode": mode, "new_id": body.get(COPIED_KEY[level]), "objects": objects}


@dataclass
class CopyPlan:
    """The chunked copy of one source: its pieces (op ids → source ids) and, after the run, the mapping."""

    source_id: str
    level: str
    shell_op: str
    pieces: list[tuple[str, str, str]] = field(default_factory=list)  # (op_id, type, source id)
    copied: dict[str, str] = field(default_factory=dict)  # source id → copy id
    failed: dict[str, str] = field(default_factory=dict)  # source id → reason

    @property
    def new_id(self) -> str | None:
        return self.copied.get(self.source_id)

    def result(self) -> dict[str, Any]:
        """What a synchronous deep copy would have answered (``copied_<level>_id``, ``ad_object_ids``), plus
        ``completed_by``: the replaced ``/copies`` op's result."""
        return {
            COPIED_KEY[self.level]: self.new_id,
            "ad_object_ids": [
                {"ad_object_type": kind, "source_id": source, "copied_id": self.copied.get(source)}
                for _, kind, source in self.pieces
            ],
            "completed_by": "chunked copy",
            "chunked_copy_op": self.shell_op,
        }

    def summary(self) -> dict[str, Any]:
        return {
            "mode": "chunked",
            "new_id": self.new_id,
            "objects": [
                {"type": kind, "source_id": source, "copied_id": self.copied.get(source)}
                for _, kind, source in self.pieces
            ],
            "failed": dict(self.failed),
        }


async def chunked_copy(
    engine: EngineLike,
    env: TaskEnv,
    report: TaskReport,
    task: CopyTask,
    sources: Sequence[str],
    *,
    prefix: str = "chunk",
    shell_params: dict[str, Any] | None = None,
) -> list[CopyPlan]:
    """Copy each source tree piece by piece (see the module docstring); returns one plan per source."""
    if task.level == "ad":
        trees: dict[str, list[tuple[str, list[str]]]] = {s: [] for s in sources}
    else:
        trees = await _read_trees(engine, env, report, task.level, sources)
    ops: list[Operation] = []
    plans: list[CopyPlan] = []
    child_rename = (task.rename_options or RenameOptions()).for_children()
    for source in sources:
        shell = env.op_id(prefix, source)
        plan = CopyPlan(source, task.level, shell, [(shell, task.level, source)])
        plans.append(plan)
        ops.append(
            Operation(
                op_id=shell,
                method="POST",
                path=(source, "copies"),
                params={**task.copy_params(deep=False), **(shell_params or {})},
                account_id=env.account_id,
                kind=KIND[task.level],
                campaign_key=task.target_campaign_id if task.level == "adset" else None,
            )
        )
        for adset, ads in trees[source]:
            if task.level == "campaign":
                piece = f"{shell}/{adset}"
                plan.pieces.append((piece, "adset", adset))
                params: dict[str, Any] = {
                    "deep_copy": False,
                    "status_option": task.status_option,
                    "rename_options": child_rename.model_dump(exclude_none=True),
                    "campaign_id": Ref(shell, "$.copied_campaign_id"),
                }
                for key in ("start_time", "end_time"):
                    if getattr(task, key) is not None:
                        params[key] = getattr(task, key)
                ops.append(
                    Operation(
                        op_id=piece,
                        method="POST",
                        path=(adset, "copies"),
                        params=params,
                        account_id=env.account_id,
                        kind=OpKind.COPY_ADSET,
                    )
                )
                parent_op, parent_path = piece, "$.copied_adset_id"
            else:
                parent_op, parent_path = shell, "$.copied_adset_id"
            for ad in ads:
                piece_ad = f"{parent_op}/{ad}"
                plan.pieces.append((piece_ad, "ad", ad))
                ops.append(
                    Operation(
                        op_id=piece_ad,
                        method="POST",
                        path=(ad, "copies"),
                        params={
                            "deep_copy": False,
                            "status_option": task.status_option,
                            "rename_options": child_rename.model_dump(exclude_none=True),
                            "adset_id": Ref(parent_op, parent_path),
                        },
                        account_id=env.account_id,
                        kind=OpKind.COPY_AD,
                    )
                )
    outcomes = await report.run(engine, ops, env.ctx)
    for plan in plans:
        for op_id, kind, source in plan.pieces:
            outcome = outcomes.get(op_id)
            if (
                outcome is not None
                and outcome.state is OutcomeState.SUCCEEDED
                and isinstance(outcome.result, dict)
            ):
                copied = outcome.result.get(COPIED_KEY[kind])
                if copied is not None:
                    plan.copied[source] = str(copied)
                    continue
            plan.failed[source] = (outcome.reason if outcome is not None else None) or "not run"
    return plans


async def _read_trees(
    engine: EngineLike, env: TaskEnv, report: TaskReport, level: str, sources: Sequence[str]
) -> dict[str, list[tuple[str, list[str]]]]:
    """Live children of each source, in creation order: campaign → [(ad set, [ads])]; ad set → [(itself, ads)]."""
    fields = {"fields": "id,name,status"}
    trees: dict[str, list[tuple[str, list[str]]]] = {}
    if level == "campaign":
        first = await read_edges(
            engine,
            [EdgeRead(s, f"{s}/adsets", env.account_id, fields) for s in sources],
            report,
            op_prefix=env.op_id("read", "adsets"),
        )
        adsets = {s: [str(a["id"]) for a in reversed(first.items.get(s, []))] for s in sources}
        flat = [a for s in sources for a in adsets[s]]
        second = await read_edges(
            engine,
            [EdgeRead(a, f"{a}/ads", env.account_id, fields) for a in flat],
            report,
            op_prefix=env.op_id("read", "ads"),
        )
        for s in sources:
            trees[s] = [(a, [str(ad["id"]) for ad in reversed(second.items.get(a, []))]) for a in adsets[s]]
    else:
        result = await read_edges(
            engine,
            [EdgeRead(s, f"{s}/ads", env.account_id, fields) for s in sources],
            report,
            op_prefix=env.op_id("read", "ads"),
        )
        for s in sources:
            trees[s] = [(s, [str(ad["id"]) for ad in reversed(result.items.get(s, []))])]
    return trees
