"""The per-verb operators and their example DAGs inside real DAG runs (``dag.test()``) against the simulator:
create from a job file, status sweep by selector, cross-account copy, Advantage+ migration behind a gate,
marketing messages; retries without duplicates; deferral forced by simulator throttling."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from af_helpers import (
    RunDag,
    graph_post,
    lift_block_when_polled,
    store,
    ti_states,
    xcom,
)

from bulk_engine.persistence.keys import strip_key
from bulk_engine.simulator import FaultConfig

OK = {"failed": 0, "skipped": 0}
FAULTS = FaultConfig(transient_rate=0.3)


def _base(name: str) -> str:
    """A created object's name without the idempotency key the engine appends (`` [be:…]``)."""
    return strip_key(name)


def _counts(summary: dict[str, Any], succeeded: int) -> None:
    assert summary["counts"] == {"succeeded": succeeded, **OK}


def test_bulk_create_from_job_file_example(meta_conn: Any, run_dag: RunDag, airflow_db: Path) -> None:
    run = run_dag("meta_bulk_create_from_file")

    assert str(run.state) == "success"
    summary = xcom(run, "create_from_file")
    _counts(summary, 9)
    assert summary["created"] == {
        "create_creative": 1,
        "create_campaign": 2,
        "create_adset": 3,
        "create_ad": 3,
    }
    text = Path(summary["report_path"]).read_text()
    token = meta_conn.info()["access_token"]
    assert token not in text and token not in json.dumps(summary)
    assert token.encode() not in Path(json.loads(text)["journal"]).read_bytes()
    report = json.loads(text)
    assert report["journal"].startswith(str(airflow_db / "meta_bulk" / "journals"))
    assert Path(report["journal"]).is_file()
    assert sorted(_base(c["name"]) for c in store(meta_conn, "campaign")) == [
        "spring-launch-ca",
        "spring-launch-us",
    ]
    assert len(store(meta_conn, "adset")) == 3 and len(store(meta_conn, "ad")) == 3


def test_status_sweep_example_pauses_matching_active_campaigns(meta_conn: Any, run_dag: RunDag) -> None:
    act = meta_conn.info()["ad_account_ids"][0]
    ids = {
        name: graph_post(
            meta_conn,
            f"{act}/campaigns",
            name=name,
            objective="OUTCOME_TRAFFIC",
            special_ad_categories=[],
            status=status,
        )["id"]
        for name, status in (
            ("promo-a", "ACTIVE"),
            ("promo-b", "ACTIVE"),
            ("keep", "ACTIVE"),
            ("promo-c", "PAUSED"),
        )
    }

    run = run_dag("meta_status_sweep", name_prefix="promo-")

    assert str(run.state) == "success"
    summary = xcom(run, "sweep")
    assert summary["selected"] == 2 and summary["updates"] == 2
    status = {c["id"]: c["status"] for c in store(meta_conn, "campaign")}
    assert status == {
        ids["promo-a"]: "PAUSED",
        ids["promo-b"]: "PAUSED",
        ids["keep"]: "ACTIVE",
        ids["promo-c"]: "PAUSED",
    }

    again = run_dag("meta_status_sweep", name_prefix="promo-")  # nothing left to pause
    assert str(again.state) == "success" and xcom(again, "sweep")["updates"] == 0


def test_copy_example_clones_a_campaign_tree_into_another_account(meta_conn: Any, run_dag: RunDag) -> None:
    source_act, target_act = meta_conn.info()["ad_account_ids"][:2]

    run = run_dag("meta_copy_to_account", target_account_id=target_act, rename_suffix=" - EU")

    assert str(run.state) == "success"
    summary = xcom(run, "clone")
    ((source, copy),) = summary["copies"].items()
    campaigns = {c["id"]: c for c in store(meta_conn, "campaign")}
    assert f"act_{campaigns[source]['account_id']}" == source_act
    clone = campaigns[copy]
    assert f"act_{clone['account_id']}" == target_act
    assert _base(clone["name"]) == "copy-demo-0 traffic - EU" and clone["status"] == "PAUSED"
    by_account: dict[str, int] = {}
    for node in store(meta_conn, "campaign", "adset", "ad", "adcreative"):
        by_account[f"act_{node['account_id']}"] = by_account.get(f"act_{node['account_id']}", 0) + 1
    assert by_account == {source_act: 4, target_act: 4}  # campaign, ad set, ad, creative on each side


def test_migration_example_preflights_then_migrates(meta_conn: Any, run_dag: RunDag) -> None:
    run = run_dag("meta_advantage_plus_migration")

    assert str(run.state) == "success"
    steps = ("campaigns", "plan", "review", "migrate", "verify", "switch_over")
    rollback = dict.fromkeys(("undo_target", "roll_back"), "skipped")  # only after a failed migrate/verify
    assert ti_states(run) == {**dict.fromkeys(steps, "success"), **rollback}
    plan = xcom(run, "plan")
    assert plan["classes"] == {"eligible": 2} and plan["blocked"] == [] and plan["migrated"] == {}
    migrated = xcom(run, "migrate")["migrated"]
    assert len(migrated) == 2
    campaigns = {c["id"]: c for c in store(meta_conn, "campaign")}
    assert all(
        campaigns[new]["smart_promotion_type"] == "GUIDED_CREATION"
        and campaigns[old]["smart_promotion_type"] == "AUTOMATED_SHOPPING_ADS"
        for old, new in migrated.items()
    )
    # switched over: each source paused after its copy verified, the copies deliver
    assert {campaigns[old]["status"] for old in migrated} == {"PAUSED"}
    assert {campaigns[new]["status"] for new in migrated.values()} == {"ACTIVE"}


def test_migration_example_review_stops_a_blocked_set(meta_conn: Any, run_dag: RunDag) -> None:
    run = run_dag("meta_advantage_plus_migration", demo_blocked=True)

    assert str(run.state) == "success"
    states = ti_states(run)
    assert states["plan"] == "success" and states["migrate"] == "skipped"
    blocked = xcom(run, "plan")["blocked"]
    assert [b["name"] for b in blocked] == ["asc-demo-2 asc_blocked"]
    assert "existing_customer_budget_percentage" in blocked[0]["reason"] and blocked[0]["manual_path"]
    assert {c["smart_promotion_type"] for c in store(meta_conn, "campaign")} == {"AUTOMATED_SHOPPING_ADS"}


def test_migration_operator_gate_fails_without_migrating(meta_conn: Any, run_dag: RunDag) -> None:
    run = run_dag("meta_test_migrate_gate")

    assert str(run.state) == "failed"
    assert ti_states(run)["migrate"] == "failed"
    summary = xcom(run, "migrate")
    assert summary["gate"] == "stopped" and len(summary["blocked"]) == 1 and summary["migrated"] == {}
    assert {c["smart_promotion_type"] for c in store(meta_conn, "campaign")} == {"AUTOMATED_SHOPPING_ADS"}


def test_marketing_messages_example(meta_conn: Any, run_dag: RunDag) -> None:
    run = run_dag("meta_marketing_messages")

    assert str(run.state) == "success"
    summary = xcom(run, "send")
    _counts(summary, 4)
    assert summary["sent"] == 3
    (campaign,) = store(meta_conn, "message_campaign")
    assert campaign["id"] == summary["message_campaign_id"]
    messages = store(meta_conn, "ad")
    assert sorted(m["messenger_delivery_data"]["subscription_token"] for m in messages) == [
        "sub-token-0001",
        "sub-token-0002",
        "sub-token-0003",
    ]


@pytest.mark.parametrize(
    "dag_id",
    [
        pytest.param("meta_test_job_retry", marks=pytest.mark.graph_simulator(seed=5, faults=FAULTS)),
        pytest.param(
            "meta_test_job_retry_no_journal", marks=pytest.mark.graph_simulator(seed=6, faults=FAULTS)
        ),
    ],
)
def test_retried_create_task_makes_no_duplicates(
    meta_conn: Any, run_dag: RunDag, tmp_path: Path, dag_id: str
) -> None:
    """With the journal, a retry answers earlier successes from it; without one (a retry on a worker that
    cannot see it), the engine finds them on the server by the keys in their names."""
    run = run_dag(dag_id)

    assert str(run.state) == "success"
    report = json.loads((tmp_path / "create.json").read_text())
    assert report["airflow"]["try_number"] > 1, "the seeded faults should have failed the first try"
    assert report["counts"] == {"succeeded": 12, **OK}
    campaigns = {_base(c["name"]): c["id"] for c in store(meta_conn, "campaign")}
    assert sorted(campaigns) == ["c0", "c1", "c2", "c3"]
    adsets = store(meta_conn, "adset")
    assert len(adsets) == 8
    assert all(a["campaign_id"] == campaigns[_base(a["name"]).split("/")[0]] for a in adsets)


@pytest.mark.graph_simulator(seed=3, faults=FaultConfig(transient_rate=0.4))
def test_retried_copy_task_copies_each_source_once(meta_conn: Any, run_dag: RunDag, tmp_path: Path) -> None:
    """``/copies`` carries no idempotency key: the journal is what keeps a retry from copying twice."""
    run = run_dag("meta_test_copy_retry")

    assert str(run.state) == "success"
    report = json.loads((tmp_path / "copy.json").read_text())
    assert report["airflow"]["try_number"] > 1, "the seeded faults should have failed the first try"
    copies = xcom(run, "copy")["copies"]
    assert len(copies) == 3 and all(copies.values())
    campaigns = store(meta_conn, "campaign")
    assert len(campaigns) == 6  # 3 sources + exactly one copy each
    assert sorted(c["id"] for c in campaigns if c.get("source_campaign_id")) == sorted(copies.values())


def test_throttled_status_task_defers_then_resumes(meta_conn: Any, run_dag: RunDag, tmp_path: Path) -> None:
    """The account is blocked: the status task defers on the triggerer instead of holding the worker, the
    cool-down trigger polls until the block is lifted, and the updates go out once."""
    act = meta_conn.info()["ad_account_ids"][0]
    ids = [
        graph_post(
            meta_conn,
            f"{act}/campaigns",
            name=f"s{n}",
            objective="OUTCOME_TRAFFIC",
            special_ad_categories=[],
            status="ACTIVE",
        )["id"]
        for n in range(3)
    ]
    meta_conn.run(lambda core: core.rate_limiter.force_block(act, "ads_management", 600.0, core.clock.now()))

    # refused reads: 1 = the operator's pre-flight, 2 = the trigger's first poll (the task is deferred)
    with lift_block_when_polled(meta_conn, act, refused_reads=2, advance_s=601):
        run = run_dag("meta_test_status_defer", ids=ids)

    assert str(run.state) == "success"
    summary = xcom(run, "status")
    assert summary["deferrals"] == 1
    _counts(summary, 3)
    assert json.loads((tmp_path / "status.json").read_text())["waited_s"] > 0
    assert {c["status"] for c in store(meta_conn, "campaign")} == {"PAUSED"}


def test_mid_job_park_defers_and_resumes_from_the_journal(meta_conn: Any, run_dag: RunDag) -> None:
    """The job's second ad account is throttled: its first batch is refused, the governor parks it, the
    operator stops it (the first account's task is done by then) and defers; after the cool-down the job
    runs again — the first task is answered from the journal, not sent again — and finishes."""
    first, second = meta_conn.info()["ad_account_ids"][:2]
    meta_conn.run(
        lambda core: core.rate_limiter.force_block(second, "ads_management", 600.0, core.clock.now())
    )

    # refused reads of the second account: 1 = the operator's pre-flight, 2 = the cool-down trigger's first
    # poll (the task has deferred). Watching the task's DEFERRED state instead raced: dag.test() sets it and
    # at once moves the task back to QUEUED before running the trigger inline, so a 10 ms poll could miss it.
    with lift_block_when_polled(meta_conn, second, refused_reads=2, advance_s=700):
        run = run_dag("meta_test_create_park")

    assert str(run.state) == "success"
    summary = xcom(run, "create")
    assert summary["deferrals"] == 1
    assert [t["counts"] for t in summary["tasks"]] == [{"succeeded": 3, **OK}] * 2
    by_account = sorted((f"act_{c['account_id']}", _base(c["name"])) for c in store(meta_conn, "campaign"))
    assert by_account == [(first, "a0"), (second, "b0")]
    assert len(store(meta_conn, "adset")) == 4
    posts = meta_conn.run(
        lambda core: [c.path for c in core.calls if c.method == "POST" and c.error_code is None]
    )
    assert sum(first in path for path in posts) == 3  # the first account's creates went out once


def test_a_park_the_journal_remembers_defers_the_task_before_anything_is_sent(
    meta_conn: Any, run_dag: RunDag, tmp_path: Path
) -> None:
    """An earlier try was throttled and wrote the park to the journal; the next try's engine starts parked,
    so the operator defers at once — no batch, no probe — and the cool-down trigger's read (the account is
    usable again) lets the resumed try lift the park and run."""
    import time

    from bulk_engine.persistence.journal import PacingRecord
    from bulk_engine.persistence.sqlite import SqliteJournal

    act = meta_conn.info()["ad_account_ids"][0]
    journal = SqliteJournal(tmp_path / "parked.sqlite")
    now = time.time()
    record = PacingRecord(f"pair:{act}:ads_management", now + 3600, "throttled (code 80004)", 100.0, {}, now)
    journal.save_pacing([record])
    journal.close()

    run = run_dag("meta_test_create_parked_at_start")

    assert str(run.state) == "success"
    summary = xcom(run, "create")
    assert summary["deferrals"] == 1
    assert summary["counts"] == {"succeeded": 2, **OK}
    requests = meta_conn.run(lambda core: [(r["method"], r["path"]) for r in core.http_requests])
    assert requests[0] == ("GET", f"/v24.0/{act}"), requests[:3]  # the trigger's read came first


def test_a_deep_copy_completed_by_the_chunked_fallback_succeeds(meta_conn: Any, run_dag: RunDag) -> None:
    """Issue 17 item 6: the refused synchronous /copies op counts as succeeded once the chunked copy is
    complete, so the task succeeds (it failed before, and again on every retry)."""
    act = meta_conn.info()["ad_account_ids"][0]
    camp = graph_post(
        meta_conn, f"{act}/campaigns", name="big", objective="OUTCOME_TRAFFIC", special_ad_categories=[]
    )["id"]
    adset = graph_post(
        meta_conn, f"{act}/adsets", name="set", campaign_id=camp, billing_event="IMPRESSIONS",
        optimization_goal="LINK_CLICKS", daily_budget=1000, targeting={"geo_locations": {"countries": ["US"]}},
    )["id"]  # fmt: skip
    creative = graph_post(
        meta_conn, f"{act}/adcreatives", name="c",
        object_story_spec={"page_id": "2000000001", "link_data": {"link": "https://example.com"}},
    )["id"]  # fmt: skip
    for i in range(3):  # campaign + ad set + 3 ads: 5 objects > the synchronous limit of 3
        graph_post(
            meta_conn, f"{act}/ads", name=f"ad {i}", adset_id=adset, creative={"creative_id": creative}
        )

    run = run_dag("meta_test_copy_fallback", source_ids=[camp])

    assert str(run.state) == "success"
    summary = xcom(run, "copy")
    assert summary["counts"]["failed"] == summary["counts"]["skipped"] == 0
    copy = summary["copies"][camp]
    assert copy and len([a for a in store(meta_conn, "ad") if a["adset_id"] != adset]) == 3
