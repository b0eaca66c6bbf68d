"""One job's run against a journal: admission, intents, outcomes and the reconciliation flags.

The engine builds a :class:`JournalSession` per run and hands it to the runner (which sees it only
through the small ``RunSession`` protocol of :mod:`bulk_engine.execution.runner`). What it does:

* **Admission** (:meth:`admit`, per window, before the operations reach the dependency graph): records
  each new operation's plan; refuses an operation whose plan differs from the journaled one
  (:class:`~bulk_engine.errors.JournalError`); answers operations that already succeeded from the journal
  (their results are registered with ``DependencyGraph.add_resolved`` so references to them resolve) and
  never sends them again; adds idempotency keys (:mod:`~bulk_engine.persistence.keys`); and *flags* the
  operations that must be reconciled with the server before they are sent: the journal says an earlier
  attempt's outcome is unknown, or — for a job id the journal does not know (lost disk, an Airflow retry
  on another worker) — a probe found objects of this job on the operation's edge.
* **Intents** (:meth:`before_send`): one transaction per HTTP batch, committed before it is sent.
* **Outcomes** (:meth:`record` + :meth:`flush`): buffered, written once per HTTP batch. Results and
  errors are scrubbed of the access token / app secret / ``appsecret_proof`` first.
* **Refusals** (:meth:`not_sent`): an op the answer proves was not run (throttled…) has its intent's
  ``unknown`` cleared at the next flush, as has one a lookup did not find: a later run sends it without a
  lookup. A newer intent of the op cancels the clear.
* **Unknown outcomes** (:meth:`unknown`): a keyed create is flagged and looked up by its key before it is
  sent again; an idempotent operation is simply retried; an unkeyed create (``/copies``…) is failed by
  the runner rather than risk a duplicate.
* **Run records** (:meth:`start_run`, :meth:`save_run`): this run's :class:`~.journal.RunRecord` — written
  as ``running`` when it starts, refreshed by the engine while it runs, rewritten once when it ends — and
  the totals over every run of the job (:class:`~bulk_engine.results.RunTotals`): the earlier runs' records,
  read once at the start (the job's lock keeps other runs from writing meanwhile), plus this run's figures.
  Figures are advice: a failed read or write is logged once and never stops the job.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

from bulk_engine.config import IdempotencyConfig
from bulk_engine.errors import JournalError
from bulk_engine.planning.graph import Operation
from bulk_engine.protocol.batch import BatchOp
from bulk_engine.results import RUN_COUNTERS, JobStats, Outcome, OutcomeState, RunTotals
from bulk_engine.scrub import Scrubber

from .codec import decode_plan, dumps, plan_text
from .journal import (
    AsyncSetRecord,
    Journal,
    JournalJob,
    JournalOp,
    OpStatus,
    OutcomeWrite,
    PlanWrite,
    RunRecord,
    RunState,
    refusal_advice,
)
from .keys import KeyCarrier, KeyScheme, Safety, keyed_by_content, path_text
from .lock import LockOwner

__all__ = ["JournalSession", "SessionStats", "load_operations"]

logger = logging.getLogger("bulk_engine.journal")

_STATUS = {
    OutcomeState.SUCCEEDED: OpStatus.SUCCEEDED,
    OutcomeState.FAILED: OpStatus.FAILED,
    OutcomeState.SKIPPED: OpStatus.SKIPPED,
}


@dataclass
class SessionStats:
    from_journal: int = 0  # operations answered from the journal (succeeded in an earlier run)
    flagged_at_start: int = 0  # operations to reconcile before their first send of this run
    probes: int = 0
    lookups: int = 0
    recovered: int = 0  # lookups that found the object: marked succeeded, not sent again
    not_found: int = 0  # lookups that found nothing: safe to send
    duplicates_seen: int = 0  # lookups that found more than one object with the same key
    # outcomes this run decided (recorded), per OutcomeState value: not those answered from the journal
    decided: dict[str, int] = field(default_factory=lambda: {state.value: 0 for state in OutcomeState})


class JournalSession:
    """The journal side of one run of one job (see the module docstring)."""

    def __init__(
        self,
        journal: Journal,
        job_id: str,
        *,
        fingerprint: str | None,
        idempotency: IdempotencyConfig,
        secrets: Sequence[str] = (),
        explicit_job_id: bool = True,
    ) -> None:
        self.journal = journal
        self.job_id = job_id
        self._scrub = Scrubber(secrets)
        # One job, one runner: the lock comes first, so a refused session (JobLockedError) has read and
        # changed nothing — open_job may create the job or record its fingerprint. Released by close().
        self.lock_owner: LockOwner | None = None
        owner = LockOwner.current()
        journal.acquire_lock(job_id, owner)
        self.lock_owner = owner
        try:
            existing = journal.get_job(job_id)
            options = {
                "keys": idempotency.keys,
                "key_prefix": idempotency.key_prefix,
                "rebuild": idempotency.rebuild if explicit_job_id else "never",
            }
            self.job: JournalJob = journal.open_job(job_id, fingerprint, options)
        except BaseException:  # e.g. another job under this id: give the lock back
            self.close()
            raise
        self.fresh = existing is None
        carrier: KeyCarrier = self.job.options.get("keys", idempotency.keys)
        prefix = str(self.job.options.get("key_prefix", idempotency.key_prefix))
        if carrier != idempotency.keys or prefix != idempotency.key_prefix:
            logger.info("job %s: keeping the key scheme it started with (%s, %s)", job_id, carrier, prefix)
        self.keys = KeyScheme(job_id, carrier, prefix)
        # Rebuild mode is decided when the job enters this journal and kept with it: a job first run with
        # an explicit id may have run elsewhere (a lost journal), so creates the journal has never seen
        # may exist on the server — in this run and in every later run of the job from this journal.
        rebuild = str(self.job.options.get("rebuild", "never"))
        self.rebuild_all = rebuild == "always" and carrier != "off"
        self.probing = rebuild == "auto" and carrier != "off"
        self._probed: dict[str, bool] = {}  # edge path -> objects of this job exist there
        self._candidates: dict[str, list[str]] = {}  # edge path not probed yet -> its admitted creates
        self._waiting: set[str] = set()  # op ids in _candidates
        self._flagged: set[str] = set()
        self._outcomes: list[OutcomeWrite] = []
        # ops proven not run since their last intent (refused, or a lookup found nothing): the journal's
        # unknown flag is cleared at the next flush, unless a new intent (before_send) supersedes it
        self._cleared: dict[str, None] = {}
        self._plans: list[PlanWrite] = []
        self.stats = SessionStats()
        self.run: RunRecord | None = None  # this run's record, once start_run() has read the earlier ones
        self._earlier = RunTotals()  # the job's earlier runs, as recorded when this one started
        self._run_write_failed = False

    def __repr__(self) -> str:
        return f"JournalSession(job_id={self.job_id!r}, journal={self.journal.location!r})"

    def close(self) -> None:
        """End the run: release the job's lock so the next run may start (idempotent, never raises)."""
        owner, self.lock_owner = self.lock_owner, None
        if owner is not None:
            self.journal.release_lock(self.job_id, owner)

    # --- run records ------------------------------------------------------------------------------
    @property
    def keeps_runs(self) -> bool:
        """Whether the journal records runs: one that stores nothing (ephemeral) keeps no runs either."""
        return self.journal.keeps_plans

    def start_run(self) -> None:
        """Number this run after the job's earlier ones, remember their totals, record it as ``running``."""
        if not self.keeps_runs or self.run is not None:
            return
        try:
            earlier = self.journal.load_runs(self.job_id)
        except Exception as err:  # the totals stay unknown (all_runs None); the job goes on
            logger.warning("job %s: cannot read its earlier runs from the journal: %s", self.job_id, err)
            return
        self._earlier = RunTotals.over(r.totals() for r in earlier)
        now = time.time()
        number = max((r.number for r in earlier), default=0) + 1
        self.run = RunRecord(self.job_id, uuid4().hex, number, RunState.RUNNING, now, now, None)
        self._write_run(self.run)

    def save_run(
        self, stats: JobStats, elapsed_s: float, state: RunState = RunState.RUNNING, error: str | None = None
    ) -> RunTotals | None:
        """Write this run's figures — a refresh while ``running``, else how it ended (the first ending
        stands: later calls write nothing) — and return the totals over every run of the job, this one
        included; ``None`` when they are unknown (no journal that keeps runs, or its runs were unreadable)."""
        run = self.run
        if run is None:
            return None
        if run.state is RunState.RUNNING:
            now = time.time()
            decided = self.stats.decided
            run = self.run = dataclasses.replace(
                run,
                state=state,
                updated_at=max(now, run.updated_at),
                ended_at=None if state is RunState.RUNNING else now,
                **{name: getattr(stats, name) for name in RUN_COUNTERS},
                elapsed_s=elapsed_s,
                succeeded=decided[OutcomeState.SUCCEEDED.value],
                failed=decided[OutcomeState.FAILED.value],
                skipped=decided[OutcomeState.SKIPPED.value],
                error=error,
            )
            self._write_run(run)
        return RunTotals.over([self._earlier, run.totals()])

    def _write_run(self, run: RunRecord) -> None:
        try:
            self.journal.save_run(run)
        except Exception as err:  # figures are advice: a journal that cannot take them must not stop a job
            if not self._run_write_failed:
                self._run_write_failed = True
                logger.warning(
                    "job %s: cannot record run %d in the journal: %s", self.job_id, run.number, err
                )

    # --- admission ------------------------------------------------------------------------------
    def probe_paths(self) -> list[str]:
        """Edges to probe before the operations admitted so far may be sent (rebuild mode only)."""
        return list(self._candidates)

    def probe_request(self, path: str) -> BatchOp:
        return self.keys.probe(path)

    def probe_result(self, path: str, hit: bool) -> None:
        """Record a probe: ``hit`` (or an unusable answer, conservatively) flags that edge's creates for a
        lookup; otherwise none of them can exist yet, and the journal is told so (one transaction)."""
        self.stats.probes += 1
        self._probed[path] = hit
        ids = self._candidates.pop(path, [])
        self._waiting.difference_update(ids)
        if hit:
            for op_id in ids:
                self._flag_at_start(op_id)
        else:
            self.journal.mark_unknown(self.job_id, ids, False)

    def _flag_at_start(self, op_id: str) -> None:
        self._flagged.add(op_id)
        self.stats.flagged_at_start += 1

    def admit(
        self,
        ops: Sequence[Operation],
        *,
        known: Callable[[str], bool],
        add_resolved: Callable[[str, Any], None],
        texts: Mapping[int, tuple[str, str]] | None = None,
    ) -> tuple[list[Operation], list[Outcome]]:
        """Admit a window: returns the operations to run (keyed) and the outcomes known already.

        Its new plans are journaled by :meth:`commit_plans` (after the window was validated). ``texts``:
        plan texts already computed (by ``id(op)``), e.g. for the job's fingerprint.
        """
        texts = texts or {}
        ids = [op.op_id for op in ops]
        existing = self.journal.get_ops(self.job_id, ids)
        in_window: set[str] = set()
        outside: dict[str, None] = {}
        for op in ops:
            for dep in op.dependencies:
                if dep not in in_window and not known(dep) and dep not in existing:
                    outside[dep] = None
            in_window.add(op.op_id)
        # References to operations of earlier runs (or forgotten beyond the horizon): from the journal.
        parents = self.journal.get_ops(self.job_id, [d for d in outside if d not in in_window])
        for dep, parent in parents.items():
            if parent.status is OpStatus.SUCCEEDED and not known(dep):
                add_resolved(dep, self._result(parent))

        run: list[Operation] = []
        done: list[Outcome] = []
        plans: list[PlanWrite] = []
        earlier: set[str] = set()
        keeps_plans = self.journal.keeps_plans
        for op in ops:
            if keeps_plans:
                text, digest = texts.get(id(op)) or plan_text(op, self._scrub)
            else:
                text = digest = ""  # an ephemeral journal stores no plans: skip their cost
            rec = existing.get(op.op_id)
            if rec is not None and rec.digest != digest:
                raise JournalError(
                    f"journal {self.journal.location}: operation {op.op_id!r} of job {self.job_id!r} differs "
                    f"from the one journaled (its plan changed since the job started); "
                    f"{refusal_advice(self.journal, self.job_id)}"
                )
            safety = self.keys.safety(op)
            if rec is None:
                backward = all(
                    d in earlier or known(d) or d in parents or d in existing for d in op.dependencies
                )
                # an upload is never probed: its task looked its content up in the library already
                may_exist = safety is Safety.KEYED and op.upload is None and self._may_exist(op)
                plans.append(
                    PlanWrite(op.op_id, text, digest, op.kind.value, op.account_id, backward, may_exist)
                )
                if may_exist and op.op_id not in self._waiting:
                    self._flag_at_start(op.op_id)
            elif rec.unknown and safety is not Safety.IDEMPOTENT and rec.status is not OpStatus.SUCCEEDED:
                if (
                    rec.status is OpStatus.PLANNED
                    and self.probing
                    and safety is Safety.KEYED
                    and not op.upload
                ):
                    # Never sent from this journal: it "may exist" only as a create of a job rebuilt without
                    # its journal whose edge a stopped run did not probe. Probe the edge, as the first run
                    # would have: one call per edge, not one lookup per create.
                    if not self._may_exist(op):
                        self._cleared[op.op_id] = None  # its edge was probed empty in this run
                    elif op.op_id not in self._waiting:
                        self._flag_at_start(op.op_id)
                else:
                    self._flag_at_start(op.op_id)  # an earlier attempt (or run) may have created it
            earlier.add(op.op_id)
            if rec is not None and rec.status is OpStatus.SUCCEEDED:
                result = self._result(rec)
                if not known(op.op_id):
                    add_resolved(op.op_id, result)
                done.append(
                    Outcome(
                        op.op_id,
                        OutcomeState.SUCCEEDED,
                        op.account_id,
                        op.kind.value,
                        result=result,
                        attempts=rec.attempts,
                    )
                )
                self.stats.from_journal += 1
                continue
            run.append(self.keys.apply(op) if safety is Safety.KEYED else op)
        self._plans.extend(plans)
        return run, done

    def commit_plans(self) -> None:
        """Journal the plans of the windows admitted since the last call (one transaction)."""
        if self._plans:
            plans, self._plans = self._plans, []
            self.journal.add_plans(self.job_id, plans)

    def discard_plans(self) -> None:
        """Forget admitted plans (the window was rejected before anything was sent)."""
        self._plans = []

    def _may_exist(self, op: Operation) -> bool:
        """Whether a keyed create the journal has never seen may exist already (a job rebuilt without
        its journal). Undecided ones wait for their edge's probe (:meth:`probe_result`)."""
        if self.rebuild_all:
            return True
        if not self.probing:
            return False
        path = _static_path(op)
        if path is None:
            return True
        if path in self._probed:
            return self._probed[path]
        self._candidates.setdefault(path, []).append(op.op_id)
        self._waiting.add(op.op_id)
        return True  # journaled as "may exist" until the probe says otherwise (a crash keeps it safe)

    def _result(self, rec: JournalOp) -> Any:
        if rec.result is None:
            return {"id": rec.graph_id} if rec.graph_id else None
        try:
            return json.loads(rec.result)
        except ValueError:
            raise JournalError(
                f"journal {self.journal.location}: the result of operation {rec.op_id!r} is unreadable"
            ) from None

    # --- the runner's hooks ---------------------------------------------------------------------
    def needs_lookup(self, op_id: str) -> bool:
        return op_id in self._flagged

    def safety(self, op: Operation) -> Safety:
        """Whether ``op`` may be sent again after an unknown outcome (see :mod:`.keys`)."""
        return self.keys.safety(op)

    def unknown(self, op: Operation) -> None:
        """An attempt of ``op`` ended with an unknown outcome (null entry, dropped connection…)."""
        if self.keys.safety(op) is not Safety.IDEMPOTENT:
            self._flagged.add(op.op_id)

    def lookup_request(self, op: Operation, resolve: Callable[[Any], Any]) -> BatchOp | str:
        """The GET that finds ``op``'s object by its key, or why ``op`` cannot be reconciled."""
        safety = self.keys.safety(op)
        if safety is not Safety.KEYED:
            return (
                "the outcome of an earlier attempt is unknown and this operation carries no idempotency key: "
                "not sent again so as not to create a duplicate (check the account, then re-run it)"
            )
        path = path_text(op, resolve)
        if path is None:
            return "cannot reconcile: the path of this operation does not resolve"
        self.stats.lookups += 1
        return self.keys.lookup(op, path)

    def lookup_answer(self, op: Operation, body: Any) -> str | dict[str, Any] | None:
        """The id found by a lookup — for an upload, the answer it would have had (``{"images": {name:
        {"hash"}}}``) — or ``None``: not found, safe to send. ``ValueError`` on a junk answer."""
        ids = self.keys.found_ids(op, body)
        if not ids:
            self.stats.not_found += 1
            self._flagged.discard(op.op_id)
            self._cleared[op.op_id] = None  # proven absent: a later run need not look again
            return None
        if len(ids) > 1:
            self.stats.duplicates_seen += 1
            logger.warning("operation %s: %d objects carry its key; keeping the oldest", op.op_id, len(ids))
        self.stats.recovered += 1
        if keyed_by_content(op) and op.upload is not None:
            return {"images": {op.upload.filename: {"hash": ids[0]}}}
        return ids[0]

    def before_send(self, ops: Sequence[Operation]) -> None:
        """The intent: one transaction, committed before the batch is sent."""
        ids = [op.op_id for op in ops]
        for op_id in ids:
            self._cleared.pop(op_id, None)  # the new intent stands, not a clear of the one before
        self.journal.mark_sent(self.job_id, ids)

    def not_sent(self, op_id: str) -> None:
        """The answer to ``op_id``'s send proves it did not run (throttled, refused as documented): its
        intent's "may have run" is cleared at the next flush, so the next run sends it without a lookup."""
        self._cleared[op_id] = None

    def record(self, outcome: Outcome) -> None:
        self._cleared.pop(outcome.op_id, None)  # the outcome carries its own unknown flag
        self.stats.decided[outcome.state.value] += 1
        unknown = outcome.op_id in self._flagged and outcome.state is not OutcomeState.SUCCEEDED
        self._flagged.discard(outcome.op_id)
        scrub = self._scrub
        self._outcomes.append(
            OutcomeWrite(
                op_id=outcome.op_id,
                status=_STATUS[outcome.state],
                attempts=outcome.attempts,
                unknown=unknown,
                result=scrub(dumps(outcome.result)) if outcome.result is not None else None,
                graph_id=outcome.graph_id,
                error=scrub(dumps(outcome.error.to_dict())) if outcome.error is not None else None,
                reason=scrub(outcome.reason) if outcome.reason else None,
            )
        )

    # --- async request sets (execution/async_backend.py) -------------------------------------------
    def pending_sets(self) -> list[AsyncSetRecord]:
        """The job's request sets submitted by an earlier run and not collected yet: polled, never re-sent."""
        return self.journal.load_async_sets(self.job_id)

    def set_submitted(self, record: AsyncSetRecord) -> None:
        """A set's id, journaled before it is first polled (the ops' intents were written before submit)."""
        self.journal.save_async_set(record)

    def set_collected(self, record: AsyncSetRecord) -> None:
        """Every result of the set is journaled (call after :meth:`flush`): a later run need not poll it."""
        self.journal.save_async_set(dataclasses.replace(record, done=True))

    def adopt(self, op_ids: Iterable[str]) -> None:
        """These ops are in a journaled set: its results settle them, so no lookup by key goes first."""
        self._flagged.difference_update(op_ids)

    def flush(self) -> None:
        """Write what this run learnt since the last flush: cleared intents, then outcomes (one transaction
        each)."""
        if self._cleared:
            cleared, self._cleared = list(self._cleared), {}
            self.journal.mark_unknown(self.job_id, cleared, False)
        if self._outcomes:
            batch, self._outcomes = self._outcomes, []
            self.journal.record_outcomes(self.job_id, batch)


def _static_path(op: Operation) -> str | None:
    if isinstance(op.path, str):
        return op.path.strip("/")
    if all(isinstance(part, str) for part in op.path_parts):
        return "/".join(str(part).strip("/") for part in op.path_parts)
    return None


def load_operations(journal: Journal, job_id: str) -> Iterable[Operation]:
    """The job's operations rebuilt from their journaled plans, in plan order (read lazily, in pages)."""
    for rec in journal.iter_ops(job_id):
        try:
            yield decode_plan(json.loads(rec.plan))
        except (ValueError, KeyError, TypeError) as err:
            raise JournalError(
                f"journal {journal.location}: the plan of operation {rec.op_id!r} is unreadable ({err})"
            ) from None
