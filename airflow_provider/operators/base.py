"""What every Meta operator shares: connection, job id, progress store, pre-flight read and deferral.

:class:`MetaOperatorBase` holds the arguments common to :class:`~airflow_provider.operators.MetaBulkOperator`
(a list of operations) and :class:`~airflow_provider.operators.job.MetaJobOperator` (a job file run with
``run_job``, and the per-verb operators built on it), so both defer the same way: when every ad account with
work left is blocked for at least ``defer_after_s``, the task saves its bookkeeping and defers with the
wait-only :class:`~airflow_provider.triggers.ThrottleCooldownTrigger` until the earliest regain time.

Secrets: :meth:`MetaOperatorBase._output_scrubber` makes the task's one
:class:`~bulk_engine.scrub.Scrubber` (token, app secret, ``appsecret_proof``); XComs, the report file, the
engine's log records (:func:`~bulk_engine.scrub.scrubbing_logs` while it runs) and the task's messages go
through it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException

from bulk_engine import EngineConfig
from bulk_engine.scrub import Scrubber

from .._graph import GraphReadError, graph_get
from ..hooks.meta_graph import DEFAULT_CONN_ID, MetaGraphHook
from ..progress import MemoryProgressStore, Progress, ProgressStore, TaskStateProgressStore, job_id_for
from ..triggers.throttle import ThrottleCooldownTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context

PREFLIGHT_CONCURRENCY = 8

__all__ = ["MetaOperatorBase", "Preflight", "blocked_accounts", "preflight"]


class MetaOperatorBase(BaseOperator):
    """Common arguments (see :class:`~airflow_provider.operators.MetaBulkOperator` for their meaning)."""

    _scrubber: Scrubber | None = None

    def __init__(
        self,
        *,
        meta_conn_id: str = DEFAULT_CONN_ID,
        report_path: str | None = None,
        report_conn_id: str | None = None,
        deferrable: bool = True,
        defer_after_s: float = 120.0,
        cooldown_poll_s: float | None = None,
        max_deferrals: int = 48,
        preflight: bool = True,
        fail_on_errors: bool = True,
        validate_only: bool = False,
        engine_overrides: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if defer_after_s < 0:
            raise ValueError("defer_after_s must be >= 0")
        self.meta_conn_id = meta_conn_id
        self.report_path = report_path
        self.report_conn_id = report_conn_id
        self.deferrable = deferrable
        self.defer_after_s = defer_after_s
        self.cooldown_poll_s = cooldown_poll_s
        self.max_deferrals = max_deferrals
        self.preflight = preflight
        self.fail_on_errors = fail_on_errors
        self.validate_only = validate_only
        self.engine_overrides = engine_overrides

    def hook(self) -> MetaGraphHook:
        return MetaGraphHook(self.meta_conn_id, engine_overrides=self.engine_overrides)

    def _output_scrubber(self, config: EngineConfig) -> Scrubber:
        """The scrubber of this task's outputs, kept for :attr:`scrubber`.

        The secrets also go to Airflow's own masker, for the task log lines this operator does not write
        (a failure's traceback…): Airflow masks the connection's password and secret extras by itself but
        has never seen the ``appsecret_proof``.
        """
        secrets = config.credentials.secrets()
        try:
            from airflow.sdk.log import mask_secret
        except ImportError:  # pragma: no cover - an Airflow without it: our own outputs are scrubbed anyway
            pass
        else:
            for secret in secrets:
                mask_secret(secret)
        self._scrubber = Scrubber(secrets)
        return self._scrubber

    @property
    def scrubber(self) -> Scrubber:
        """What every XCom value, report and message of the task goes through (see :meth:`_output_scrubber`)."""
        return self._scrubber if self._scrubber is not None else Scrubber(())

    @staticmethod
    def _job_id(context: Context) -> str:
        ti = context["ti"]
        map_index = getattr(ti, "map_index", -1)
        return job_id_for(ti.dag_id, ti.run_id, ti.task_id, -1 if map_index is None else int(map_index))

    def _store(self, context: Context) -> ProgressStore:
        accessor = context.get("task_state_store")
        if accessor is None:
            self.log.warning("no task state store: progress lives in memory, deferral is disabled")
            return MemoryProgressStore()
        return TaskStateProgressStore(accessor)

    def _can_defer(self, store: ProgressStore) -> bool:
        return self.deferrable and not isinstance(store, MemoryProgressStore)

    def _defer_if_stalled(
        self,
        progress: Progress,
        store: ProgressStore,
        accounts: Sequence[str],
        blocked: Mapping[str, float],
        *,
        left: str,
        required: bool = False,
    ) -> None:
        """Defer until the earliest regain time when every account of ``accounts`` is blocked long enough.

        ``blocked`` maps account → wall-clock resume time; ``left`` says what is left (for messages).
        ``required``: the engine stopped with work left, so the task must defer (or fail) rather than
        report a partial job as finished.
        """
        now = time.time()
        waits = {a: blocked[a] - now for a in accounts if a in blocked}
        stalled = bool(accounts) and len(waits) == len(accounts)
        stalled = stalled and all(w >= self.defer_after_s for w in waits.values())
        if not stalled and not required:
            return
        if not waits:
            raise AirflowException(f"job {progress.job_id}: the engine stopped with {left} left")
        if progress.deferrals >= self.max_deferrals:
            store.save(progress)
            raise AirflowException(
                f"job {progress.job_id}: still throttled after {progress.deferrals} cool-downs; "
                f"{left} left (they resume on the next try)"
            )
        account = min(waits, key=lambda a: waits[a])
        progress.deferred_at = now
        store.save(progress)
        self.log.info(
            "job %s: %s blocked for %.0f s (%s left): deferring",
            progress.job_id,
            account,
            waits[account],
            left,
        )
        self.defer(
            trigger=ThrottleCooldownTrigger(
                account_id=account,
                resume_at_epoch=blocked[account],
                conn_id=self.meta_conn_id if self.cooldown_poll_s else None,
                poll_s=self.cooldown_poll_s,
            ),
            method_name="execute_complete",
        )

    @staticmethod
    def _resumed(progress: Progress) -> None:
        """Count a finished cool-down into ``progress`` (called by ``execute_complete``)."""
        progress.deferrals += 1
        if progress.deferred_at is not None:
            progress.waited_s += max(0.0, time.time() - progress.deferred_at)
            progress.deferred_at = None


@dataclass(frozen=True)
class Preflight:
    """What one read of each account said just now."""

    blocked: dict[str, float]  # account → wall-clock regain time
    usable: frozenset[str]  # accounts the read found not blocked (fresher than a park a journal remembers)


async def preflight(config: EngineConfig, accounts: Sequence[str]) -> Preflight:
    """Read each account once (``?fields=id``): which are blocked and until when, which are usable."""
    limiter = anyio.CapacityLimiter(PREFLIGHT_CONCURRENCY)
    blocked: dict[str, float] = {}
    usable: set[str] = set()

    async def check(account: str) -> None:
        async with limiter:
            try:
                read = await graph_get(config, account, {"fields": "id"}, account_id=account)
            except GraphReadError:
                return  # the engine will meet the same problem and report it per operation
            regain = read.regain_after_s(account)
            if regain > 0:
                blocked[account] = time.time() + regain
            else:
                usable.add(account)

    async with anyio.create_task_group() as tg:
        for account in accounts:
            tg.start_soon(check, account)
    return Preflight(blocked, frozenset(usable))


async def blocked_accounts(config: EngineConfig, accounts: Sequence[str]) -> dict[str, float]:
    """Account → wall-clock regain time for the accounts a read reports as blocked (pre-flight)."""
    return (await preflight(config, accounts)).blocked
