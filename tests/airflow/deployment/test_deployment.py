"""The provider in a real Airflow deployment: deferral through the triggerer (on a park and on an async request
set), and a retry after a killed task.

One test, three phases on one deployment (``conftest.py``); the durations of the steps are printed (``-s``):

1. **Near its quota, deferred.** Another client has used 80 % of ``act_1000000001``'s hour; once the task
   has created part of its tree, that client takes the rest of the window. The engine's next batch is
   refused, the governor parks the account for the hour and the operator defers: the REST API shows the
   task ``deferred``. The simulator's virtual clock then passes the window, the trigger's usage read
   finds the account usable, and the task must resume on a worker and succeed without deferring again:
   every object once in the store, the summary's counts complete, its counters over every run
   (``all_runs``) equal to what the server saw.
2. **Killed mid-run.** On a slowed simulator the task process of a 60-operation job is SIGKILLed once part
   of the job exists; Airflow's retry (try 2) resumes from the engine's journal and ends with every object
   exactly once.
3. **An async request set.** A job on ``backend="async"`` submits its tree as one request set to Meta's async
   batch endpoint and defers on it, holding no worker slot while the server processes it; the triggerer's
   event resumes the task, which collects the set's results: one set submitted, every object once, the same
   try.

A failure of phase 1 or 3 is raised after the other phases have run, so one defect does not hide another.

Measured on 2 cores shared with other test runs (``pytest tests/airflow/deployment -s``): deployment start
(``db migrate`` + four components healthy) 12–15 s, phase 1 14–18 s, phase 2 13–19 s, stop ~5 s: 47–57 s
in all.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from bulk_engine.simulator import FaultConfig, SimulatorConfig
from bulk_engine.simulator.graph import GraphCore
from bulk_engine.simulator.server import SimulatorThread

from .harness import Deployment, processes_in, wait_for

pytestmark = pytest.mark.deployment

DEFER_DAG, KILL_DAG, ASYNC_DAG, TASK = "meta_deploy_defer", "meta_deploy_kill", "meta_deploy_async", "create"
ACCOUNTS = SimulatorConfig().ad_account_ids
BUC = "ads_management"
# Mirrors dags/meta_deploy_dags.py (importing a DAG file here would build its DAGs in this process).
DEFER_TREE, KILL_TREE, ASYNC_TREE = (4, 1), (20, 2), (12, 2)  # campaigns, ad sets per campaign
DEFER_OPS, KILL_OPS, ASYNC_OPS = 4 * (1 + 1), 20 * (1 + 2), 12 * (1 + 2)
NEAR_QUOTA = 0.8
FAST_POLL_S = 0.05  # how often the test looks at the in-process simulator while a task runs
DEADLINE_S = 90.0  # any single wait; the whole test stays far below the suite's budget
RESUME_DEADLINE_S = 60.0  # trigger fires, scheduler queues, worker starts, ~6 batches: ~15 s


class Phases:
    """Wall-clock durations of the test's steps, printed as they end (``pytest -s`` shows them)."""

    def __init__(self) -> None:
        self.started = self.last = time.monotonic()

    def done(self, name: str) -> None:
        now = time.monotonic()
        print(f"[deployment] {name}: {now - self.last:.1f} s (total {now - self.started:.1f} s)")
        self.last = now


# --- the simulator, read and steered in-process ---------------------------------------------------------
def objects(sim: SimulatorThread, prefix: str) -> Counter[str]:
    """Campaigns and ad sets whose name starts with ``prefix``, counted by name without the key suffix."""

    def names(core: GraphCore) -> list[str]:
        found = core.store.snapshot(["campaign", "adset"])
        return [str(o.get("name", "")).split(" [be:")[0] for o in found]

    return Counter(name for name in sim.run(names) if name.startswith(prefix))


def assert_exactly_once(sim: SimulatorThread, prefix: str, tree: tuple[int, int]) -> None:
    campaigns, adsets = tree
    expected = {f"{prefix}{n}" for n in range(campaigns)}
    expected |= {f"{prefix}{n}/as{j}" for n in range(campaigns) for j in range(adsets)}
    found = objects(sim, prefix)
    duplicates = {name: count for name, count in found.items() if count > 1}
    assert not duplicates, f"created more than once: {duplicates}"
    assert set(found) == expected, f"missing: {sorted(expected - set(found))}"


def fill_window(sim: SimulatorThread, account: str, calls: int) -> None:
    """Charge ``account``'s ads-management window up to ``calls`` calls, as another client's calls would."""

    def fill(core: GraphCore) -> None:
        used = core.rate_limiter.usage(account, BUC, core.clock.now()).calls
        if calls > used:
            core.rate_limiter.charge(account, BUC, calls - used, core.clock.now())

    sim.run(fill)


def engine_traffic(sim: SimulatorThread, since: int, account: str) -> tuple[int, int]:
    """(HTTP requests, Graph calls) the engine sent to ``account`` since request ``since``: its batches
    are the only POSTs (the pre-flight and the trigger read with GET; the test's own calls bypass HTTP)."""

    def count(core: GraphCore) -> tuple[int, int]:
        mine = {c.http_request for c in core.calls if c.account_id == account}
        posts = [r for r in core.http_requests[since:] if r["method"] == "POST" and r["seq"] in mine]
        return len(posts), sum(int(r["ops"]) for r in posts)

    return sim.run(count)


def requests_so_far(sim: SimulatorThread) -> int:
    """The simulator's HTTP request count: a bookmark for :func:`engine_traffic`."""
    return int(sim.run(lambda core: len(core.http_requests)))


def set_latency(sim: SimulatorThread, latency_ms: float) -> None:
    """Slow every HTTP answer down, so a task is still under way when the test acts."""
    sim.run(lambda core: core.set_faults(FaultConfig(latency_ms=latency_ms)))


# --- Airflow, through its REST API ------------------------------------------------------------------------
def ti_in(dep: Deployment, dag_id: str, run_id: str, *states: str) -> dict[str, Any] | None:
    """The task instance when it is in one of ``states``, else ``None`` (a probe for :func:`wait_for`)."""
    ti = dep.task_instance(dag_id, run_id, TASK)
    return ti if ti["state"] in states else None


def assert_run_succeeded(dep: Deployment, dag_id: str, run_id: str) -> None:
    """The DAG run ends ``success`` (the scheduler marks it a loop after its last task)."""

    def ended() -> dict[str, Any] | None:
        run = dep.dag_run(dag_id, run_id)
        return run if run["state"] in ("success", "failed") else None

    run = wait_for(f"{run_id} to end", ended, DEADLINE_S, lambda: dep.diagnostics(dag_id))
    assert run["state"] == "success", run


def deferral_phase(dep: Deployment, sim: SimulatorThread, report_dir: Path, phases: Phases) -> None:
    """Phase 1 (module docstring): quota runs out mid-run → deferred → the hour passes → resumed, exact."""
    run_id, account = "defer-1", ACCOUNTS[0]
    quota = int(sim.run(lambda core: core.rate_limiter.quota(account, BUC)))
    fill_window(sim, account, int(quota * NEAR_QUOTA))
    set_latency(sim, 400)  # each batch takes a while: the test acts between two of them
    since = requests_so_far(sim)
    dep.trigger(DEFER_DAG, run_id, {"report_dir": str(report_dir)})
    wait_for(
        "the first objects of defer-1",
        lambda: sum(objects(sim, "defer-").values()) > 0,
        DEADLINE_S,
        lambda: dep.diagnostics(DEFER_DAG),
        FAST_POLL_S,
    )
    fill_window(sim, account, quota)  # the other client takes what is left of the hour
    phases.done("defer-1 created its first objects; the window is full")

    deferred = wait_for(
        "defer-1 to defer",
        lambda: ti_in(dep, DEFER_DAG, run_id, "deferred", "success", "failed", "up_for_retry"),
        DEADLINE_S,
        lambda: dep.diagnostics(DEFER_DAG),
    )
    assert deferred["state"] == "deferred", f"the task did not defer: {deferred['state']}"
    at_deferral = sum(objects(sim, "defer-").values())
    assert 0 < at_deferral < DEFER_OPS, f"{at_deferral} objects when it deferred: not mid-run"
    usage = sim.run(lambda core: core.rate_limiter.usage(account, BUC, core.clock.now()))
    assert usage.blocked and usage.regain_s > 600  # the trigger waits for the hour, not the worker
    # Airflow 3.3 fails a resumed task when the trigger fires before the scheduler has processed the
    # deferred worker's exit (a stale "success" event of the same try; apache/airflow#72716: only the
    # SCHEDULED case is guarded). Let the scheduler see that exit before the block may end.
    exit_event = (
        f"Received executor event with state success for task instance TaskInstanceKey(dag_id='{DEFER_DAG}'"
    )
    wait_for(
        "the scheduler to process the deferred worker's exit",
        lambda: dep.component_log("scheduler", exit_event),
        DEADLINE_S,
        lambda: dep.diagnostics(DEFER_DAG),
    )
    phases.done(f"defer-1 deferred with {at_deferral} of {DEFER_OPS} objects")

    sim.run(lambda core: core.clock.advance(core.config.window_s + 60))  # the hour passes on the server

    def finished_without_deferring_again() -> dict[str, Any] | None:
        deferrals = dep.log_events(DEFER_DAG, run_id, "Pausing task as DEFERRED")  # Airflow's own line
        if len(deferrals) > 1:  # fail at once: a loop of cool-downs would only end at max_deferrals
            said = dep.log_events(DEFER_DAG, run_id, "deferring")[-2:]
            raise AssertionError(
                "defer-1 deferred again after the cool-down trigger had found the account usable "
                f"({len(deferrals)} deferrals so far); the operator said:\n" + "\n".join(said)
            )
        return ti_in(dep, DEFER_DAG, run_id, "success", "failed", "up_for_retry")

    done = wait_for(
        "defer-1 to finish after the cool-down (the trigger found the account usable)",
        finished_without_deferring_again,
        RESUME_DEADLINE_S,
        lambda: dep.diagnostics(DEFER_DAG),
    )
    assert done["state"] == "success", f"{done['state']}\n{dep.diagnostics(DEFER_DAG)}"
    assert done["try_number"] == 1  # a deferral is not a retry
    assert_run_succeeded(dep, DEFER_DAG, run_id)
    assert_exactly_once(sim, "defer-", DEFER_TREE)
    summary = dep.xcom(DEFER_DAG, run_id, TASK)
    assert summary["ok"] is True
    assert summary["counts"] == {"succeeded": DEFER_OPS, "failed": 0, "skipped": 0}
    assert summary["deferrals"] == 1
    # Counters over every run of the job (the run that met the throttle and the resumed one) are exactly
    # the server's count of the engine's requests and calls; the last run alone did not do it all.
    requests, calls = engine_traffic(sim, since, account)
    totals = summary["all_runs"]
    assert totals["runs"] == 2, totals
    assert (totals["http_requests"], totals["graph_calls"]) == (requests, calls), (totals, requests, calls)
    assert totals["graph_calls"] >= DEFER_OPS
    assert totals["throttle_events"] >= 1  # the refused batch of the first run
    assert summary["graph_calls"] < totals["graph_calls"]
    phases.done("defer-1 resumed and succeeded")


def kill_phase(dep: Deployment, sim: SimulatorThread, report_dir: Path, phases: Phases) -> None:
    """Phase 2 (module docstring): SIGKILL of the task process mid-run → try 2 finishes, exactly once."""
    run_id = "kill-1"
    set_latency(sim, 250)
    since = requests_so_far(sim)
    dep.trigger(KILL_DAG, run_id, {"report_dir": str(report_dir)})

    def under_way() -> dict[str, Any] | None:
        ti = dep.task_instance(KILL_DAG, run_id, TASK)
        made = sum(objects(sim, "kill-").values())
        return ti if ti["state"] == "running" and ti["pid"] and made >= 10 else None

    running = wait_for(
        "kill-1 to be under way", under_way, DEADLINE_S, lambda: dep.diagnostics(KILL_DAG), 0.2
    )
    pid = int(running["pid"])  # the task process (the supervisor's child), as Airflow records it
    assert pid in processes_in(dep.sessions()), f"pid {pid} is not a process this deployment started"
    os.kill(pid, signal.SIGKILL)
    killed_at = requests_so_far(sim)
    at_kill = sum(objects(sim, "kill-").values())
    assert at_kill < KILL_OPS, "the job was finished before the kill: slow the simulator down"
    phases.done(f"kill-1: task process {pid} killed with {at_kill} of {KILL_OPS} objects")

    def retried_and_finished() -> dict[str, Any] | None:
        ti = dep.task_instance(KILL_DAG, run_id, TASK)
        return ti if ti["try_number"] >= 2 and ti["state"] in ("success", "failed") else None

    done = wait_for(
        "kill-1 to be retried and finish", retried_and_finished, DEADLINE_S, lambda: dep.diagnostics(KILL_DAG)
    )
    assert done["state"] == "success", f"{done['state']}\n{dep.diagnostics(KILL_DAG)}"
    assert done["try_number"] == 2
    assert_run_succeeded(dep, KILL_DAG, run_id)
    assert_exactly_once(sim, "kill-", KILL_TREE)
    summary = dep.xcom(KILL_DAG, run_id, TASK)
    assert summary["ok"] is True
    assert summary["counts"] == {"succeeded": KILL_OPS, "failed": 0, "skipped": 0}
    # The killed run counts with its last refresh only, so the totals lie between the retry's own traffic
    # and everything the server saw.
    totals = summary["all_runs"]
    after_kill, _ = engine_traffic(sim, killed_at, ACCOUNTS[1])
    everything, _ = engine_traffic(sim, since, ACCOUNTS[1])
    assert totals["runs"] == 2, totals
    assert after_kill <= totals["http_requests"] <= everything, (totals, after_kill, everything)
    assert (report_dir / f"{KILL_DAG}-try2.json").is_file()
    phases.done("kill-1 retried and succeeded")


def async_phase(dep: Deployment, sim: SimulatorThread, report_dir: Path, phases: Phases) -> None:
    """Phase 3 (module docstring): one request set submitted → deferred while Meta works → collected."""
    run_id = "async-1"
    set_latency(sim, 0)

    def request_sets() -> int:
        return int(sim.run(lambda core: len(list(core.store.nodes("async_request_set")))))

    dep.trigger(ASYNC_DAG, run_id, {"report_dir": str(report_dir)})
    done = wait_for(
        "async-1 to finish",
        lambda: ti_in(dep, ASYNC_DAG, run_id, "success", "failed", "up_for_retry"),
        DEADLINE_S,
        lambda: dep.diagnostics(ASYNC_DAG),
    )
    assert done["state"] == "success", f"{done['state']}\n{dep.diagnostics(ASYNC_DAG)}"
    assert done["try_number"] == 1  # a deferral is not a retry
    deferrals = dep.log_events(ASYNC_DAG, run_id, "Pausing task as DEFERRED")  # Airflow's own line
    assert len(deferrals) == 1, f"{len(deferrals)} deferrals: the task held its slot while Meta worked"
    assert_run_succeeded(dep, ASYNC_DAG, run_id)
    assert_exactly_once(sim, "async-", ASYNC_TREE)
    assert request_sets() == 1  # submitted once, collected after the deferral: never submitted again
    summary = dep.xcom(ASYNC_DAG, run_id, TASK)
    assert summary["counts"] == {"succeeded": ASYNC_OPS, "failed": 0, "skipped": 0}
    assert summary["deferrals"] == 1
    phases.done("async-1 deferred on its request set and collected it")


def test_deferral_and_killed_task_in_a_real_deployment(
    deployment: Deployment, simulator: SimulatorThread, tmp_path: Path
) -> None:
    """Both phases on one deployment (start-up is the expensive part); see the module docstring."""
    phases = Phases()
    for dag_id in (DEFER_DAG, KILL_DAG, ASYNC_DAG):
        wait_for(
            f"{dag_id} to be parsed",
            partial(deployment.dag_is_parsed, dag_id),
            DEADLINE_S,
            deployment.diagnostics,
        )
    phases.done("DAGs parsed")
    failures: list[str] = []
    try:
        deferral_phase(deployment, simulator, tmp_path, phases)
    except AssertionError as err:  # reported after the kill phase, which runs on another account
        failures.append(f"deferral phase: {err}")
        phases.done("deferral phase FAILED")
    kill_phase(deployment, simulator, tmp_path, phases)
    try:
        async_phase(deployment, simulator, tmp_path, phases)
    except AssertionError as err:
        failures.append(f"async phase: {err}")
        phases.done("async phase FAILED")
    phases.done("all phases")
    assert not failures, "\n".join(failures)
