"""The library's ``run_job`` is as exactly-once as the CLI: the same job file run twice creates nothing twice.

``run_job`` names each engine job ``<job id>/<task key>/<n>`` from the job file's ``job_id``, so the second
run recomputes the same idempotency keys, probes for what the first run created and answers it (with a
journal: from the journal; without one: from the server, by key).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ops_support import ids_by_op, simple_tree, tree_job

from bulk_engine import JournalError
from bulk_engine.operations import run_job
from bulk_engine.operations.jobfile import parse_job
from bulk_engine.persistence import MemoryJournal, SqliteJournal


@pytest.mark.parametrize("journaled", [False, True], ids=["no-journal", "journal"])
async def test_run_job_twice_creates_nothing_the_second_time(start_sim: Any, journaled: bool) -> None:
    sim = await start_sim()
    spec = parse_job(
        {"job_id": "spring", "account_id": sim.act, **tree_job([simple_tree("A"), simple_tree("B")])}
    )
    journal = MemoryJournal() if journaled else None
    reports = []
    for _ in range(2):
        engine = sim.engine()
        engine.journal = journal
        async with engine:
            reports.append(await run_job(engine, spec))
    first, second = reports
    assert first.ok and second.ok
    created = first.counts["succeeded"]
    assert len(sim.nodes("campaign")) == 2 and len(sim.nodes("ad")) == 4  # nothing twice
    assert sum(len(sim.nodes(t)) for t in ("campaign", "adset", "adcreative", "ad")) == created
    again = second.to_result()
    assert again.recovered + again.from_journal == created  # answered, not re-created
    assert first.to_dict()["engine_jobs"] == second.to_dict()["engine_jobs"] == ["spring/t0/0"]


def _task(kind: str, sim: Any, ids: dict[str, str | None]) -> dict[str, Any]:
    """One task of each verb, on the objects of ``simple_tree("A")`` (a source, a selection, a campaign)."""
    source = str(ids["t0/c0"])
    if kind == "clone":
        options = {"rename_strategy": "DEEP_RENAME", "rename_suffix": " - EU"}
        return {
            "type": "copy",
            "source_ids": [source],
            "target_account_id": sim.accounts[1],
            "rename_options": options,
        }
    if kind == "copy":  # within the synchronous deep-copy limit: one /copies call
        return {"type": "copy", "source_ids": [source], "deep_copy": False}
    if kind == "status":
        return {
            "type": "status",
            "status": "PAUSED",
            "selector": {"name_regex": "^A", "effective_status": ["ACTIVE"]},
        }
    if kind == "migrate":
        # not an ASC campaign: read, classified and reported, nothing to migrate
        return {"type": "migrate", "campaign_ids": [source]}
    campaign = {"name": "Sale", "page_id": sim.pages[0], "daily_budget": 1000}
    return {
        "type": "messages",
        "campaign": campaign,
        "message": "Hi",
        "subscription_tokens": ["tok-1", "tok-2"],
    }


def _store(sim: Any) -> dict[str, list[tuple[str, str]]]:
    return {
        t: sorted((n.id, n.status) for n in sim.nodes(t))
        for t in ("campaign", "adset", "adcreative", "ad", "message_campaign")
    }


@pytest.mark.parametrize("kind", ["clone", "copy", "status", "migrate", "messages"])
async def test_a_finished_job_run_again_on_its_journal_sends_nothing(
    start_sim: Any, tmp_path: Path, kind: str
) -> None:
    """Issue "defect 7": re-running a finished job (same job id, same journal) re-creates, updates and sends
    nothing — reads included, so the flows take the same decisions — and says so (``from_journal``)."""
    sim = await start_sim()
    ids = ids_by_op(await sim.run(tree_job([simple_tree("A")])))
    spec = parse_job({"job_id": "rerun", "account_id": sim.act, "tasks": [_task(kind, sim, ids)]})
    reports, stores = [], []
    with SqliteJournal(tmp_path / "jobs.sqlite") as journal:
        for _ in range(2):
            engine = sim.engine()
            engine.journal = journal
            async with engine:
                reports.append(await run_job(engine, spec))
            stores.append(_store(sim))
    first, second = (report.to_dict() for report in reports)
    assert (
        first["counts"] == second["counts"] and first["counts"]["failed"] == 0 and first["http_requests"] > 0
    )
    assert second["http_requests"] == 0 and second["from_journal"] == second["counts"]["succeeded"] > 0
    assert stores[0] == stores[1]
    assert second["tasks"][0]["details"] == first["tasks"][0]["details"]  # the same copies, sends, records


async def test_a_changed_job_under_a_finished_job_id_is_refused_with_what_to_do(
    start_sim: Any, tmp_path: Path
) -> None:
    """An upstream step handed the job other ids: it is another job under the same id, and the journal
    refuses it before anything is sent — naming the job id to change and the journal file to delete."""
    sim = await start_sim()
    a = ids_by_op(await sim.run(tree_job([simple_tree("A")])))
    b = ids_by_op(await sim.run(tree_job([simple_tree("B")])))
    path = tmp_path / "jobs.sqlite"

    def clone(source: Any, job_id: str = "eu-clone") -> Any:
        task = {"type": "copy", "source_ids": [str(source)], "target_account_id": sim.accounts[1]}
        return parse_job({"job_id": job_id, "account_id": sim.act, "tasks": [task]})

    with SqliteJournal(path) as journal:
        engine = sim.engine()
        engine.journal = journal
        async with engine:
            assert (await run_job(engine, clone(a["t0/c0"]))).ok
            sent = len(sim.server.core.http_requests)
            with pytest.raises(JournalError) as refused:
                await run_job(engine, clone(b["t0/c0"]))
            assert len(sim.server.core.http_requests) == sent  # refused before any call
            assert (await run_job(engine, clone(b["t0/c0"], job_id="eu-clone-2"))).ok  # the advice works
    message = str(refused.value)
    assert "job 'eu-clone/t0/0' was started with a different job" in message
    assert "change the job id 'eu-clone'" in message
    assert f"delete {path} (it holds no other job)" in message
