"""The plan of a job before anything is sent: operations per type and account, and a batch estimate.

Batches are estimated per ad account from the packing rules (at most 50 calls a batch, at most 10 ad
creates a batch); dependency chains that do not fit one batch and the one-ad-set-per-campaign rule can add a
few. Tasks that must read Graph first (status selectors, copy, migrate) are counted as far as the job file
tells; their reads and the writes that follow from them are known only at run time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from bulk_engine.operations import CompileContext, JobSpec

__all__ = ["JobPlan", "plan_job"]

AD_KINDS = ("create_ad", "copy_ad")


@dataclass
class JobPlan:
    job_id: str
    source: str
    fingerprint: str
    tasks: list[dict[str, Any]] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)
    accounts: dict[str, dict[str, int]] = field(default_factory=dict)
    needs_reads: list[str] = field(default_factory=list)
    max_batch_ops: int = 50
    max_ads_per_batch: int = 10

    @property
    def operations(self) -> int:
        return sum(self.kinds.values())

    def batches(self, account_id: str) -> int:
        kinds = self.accounts.get(account_id, {})
        total = sum(kinds.values())
        ads = sum(kinds.get(k, 0) for k in AD_KINDS)
        if total == 0:
            return 0
        return max(math.ceil(total / self.max_batch_ops), math.ceil(ads / self.max_ads_per_batch))

    @property
    def batches_total(self) -> int:
        return sum(self.batches(a) for a in self.accounts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "source": self.source,
            "fingerprint": self.fingerprint,
            "operations": self.operations,
            "batches_estimate": self.batches_total,
            "kinds": dict(self.kinds),
            "accounts": {
                a: {"operations": sum(k.values()), "batches_estimate": self.batches(a), "kinds": dict(k)}
                for a, k in self.accounts.items()
            },
            "tasks": self.tasks,
            "reads_first": self.needs_reads,
        }

    def lines(self) -> list[str]:
        """The plan as text lines for a person."""
        out = [
            f"Job {self.job_id} ({self.source}): {len(self.tasks)} task(s), {self.operations:,} operation(s), "
            f"about {self.batches_total:,} batch request(s)"
        ]
        for task in self.tasks:
            kinds = ", ".join(f"{k} × {n:,}" for k, n in task["kinds"].items()) or "no writes known yet"
            reads = (
                " (reads Graph first; more operations are planned at run time)" if task["reads_first"] else ""
            )
            out.append(f"  task {task['key']} [{task['type']}] on {task['account_id']}: {kinds}{reads}")
        out.append("Operations per type:")
        for kind, n in sorted(self.kinds.items()):
            out.append(f"  {kind:<18} {n:>8,}")
        out.append("Per ad account:")
        for account, per_kind in sorted(self.accounts.items()):
            calls = sum(per_kind.values())
            out.append(f"  {account:<18} {calls:>8,} calls in about {self.batches(account):,} batch(es)")
        return out


def plan_job(spec: JobSpec, ctx: CompileContext, job_id: str) -> JobPlan:
    """Raises :class:`~bulk_engine.operations.JobFileError` when a task has no ad account."""
    plan = JobPlan(job_id, spec.source, spec.fingerprint())
    for index, task in enumerate(spec.tasks):
        env = spec.task_env(index, ctx)
        kinds = task.estimate(env)
        plan.tasks.append(
            {
                "key": env.key,
                "type": task.task_type,
                "account_id": env.account_id,
                "kinds": dict(kinds),
                "reads_first": task.needs_reads,
            }
        )
        if task.needs_reads:
            plan.needs_reads.append(env.key)
        account = plan.accounts.setdefault(env.account_id, {})
        for kind, n in kinds.items():
            plan.kinds[kind] = plan.kinds.get(kind, 0) + n
            account[kind] = account.get(kind, 0) + n
    return plan
